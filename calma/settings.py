"""CALMA Workshops settings: one module, driven by environment variables.

With no variables set the app runs on the embedded defaults (SQLite, in-memory channel
layer, Celery tasks inline, local cache). DATABASE_URL and REDIS_URL switch to Postgres and
Redis. Every variable is listed in README.md ("Configuration").
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from calma.env import env_bool, env_choice, env_float, env_int, env_list, env_rate, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
# Production is any run with DEBUG off; it refuses to start without a real secret key.
_INSECURE_KEY = "insecure-dev-key-only-for-DEBUG-and-tests-0123456789abcdef"
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG or env_bool("CALMA_TESTING", False):
        SECRET_KEY = _INSECURE_KEY
    else:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it to a long random string (python -c 'import secrets;"
            " print(secrets.token_urlsafe(50))'), or set DEBUG=1 for local development."
        )
elif len(SECRET_KEY) < 32 or SECRET_KEY == _INSECURE_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters and not the development key.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "template_partials",
    "axes",
    "csp",
    "workshops",
    "llm_gateway",
    "coding",
    "discussion",
    "evaluation",
    "studies",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
    # Last and sync-only: the whole chain then runs in one thread under ASGI (calma/middleware.py).
    "calma.middleware.PrivateCacheMiddleware",
]

ROOT_URLCONF = "calma.urls"
ASGI_APPLICATION = "calma.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "workshops.context_processors.workshop_context",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    }
]

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_url("DATABASE_URL", schemes=("postgres", "postgresql", "sqlite"))
DB_POOL_MAX_SIZE = env_int("DB_POOL_MAX_SIZE", 10, minimum=0, maximum=200)
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
    if DB_POOL_MAX_SIZE and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # A connection pool per process (psycopg_pool): opening a Postgres connection per
        # request dominated the cost of a chat send, and 50 simultaneous page loads ran
        # Postgres out of connections. Persistent connections (CONN_MAX_AGE) do not suit ASGI.
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": DB_POOL_MAX_SIZE,
            "timeout": env_float("DB_POOL_TIMEOUT", 20.0, minimum=1),
        }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, Celery broker, cache (rate limits) ---------------------------
REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss"))
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # No socket timeout: channels-redis waits up to 5 s for messages itself, and a
                # client-side timeout of the same length kills idle consumers.
                "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
                "prefix": env_str("CHANNEL_PREFIX", "calma"),
                "capacity": 1500,
                "expiry": 30,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_PREFIX", "calma"),
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def _pubsub_layer(name: str) -> dict:
    """A Redis pub/sub channel layer of its own prefix (one PUBLISH per group send), or the
    default layer's kind without Redis."""
    if not REDIS_URL:
        return dict(CHANNEL_LAYERS["default"])
    return {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL}], "prefix": f"{env_str('CHANNEL_PREFIX', 'calma')}.{name}."}}


# The live board's own layer (alias "board", discussion/): with Redis, "pubsub" (one PUBLISH
# per board change, fanned out inside each server process; docs/discussion.md "Benchmarks")
# or "redis" (the default layer's kind: one Redis list entry per receiving socket).
DISCUSSION_BOARD_LAYER = env_choice("DISCUSSION_BOARD_LAYER", "pubsub", ("pubsub", "redis"))
CHANNEL_LAYERS["board"] = _pubsub_layer("board") if DISCUSSION_BOARD_LAYER == "pubsub" else dict(CHANNEL_LAYERS["default"])
# The chat's answers stream on their own pub/sub layer (alias "chat", llm_gateway/runner.py):
# every delta of every answer is a group send, and the default layer's took several Redis
# round trips each (ZRANGE of the group, a Lua script per send, a BRPOP per socket); under
# fifty simultaneous answers they were a fifth of the server's interpreter time
# (benchmarks/gateway_concurrency.py, docs/llm_gateway.md). Deltas carry their offset and the
# page re-reads the thread after a gap or a reconnect, so pub/sub's at-most-once is enough.
CHANNEL_LAYERS["chat"] = _pubsub_layer("chat")

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not bool(REDIS_URL))
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 600, minimum=10)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 5

# Long work a person waits on (workshops/jobs.py): the running task writes a heartbeat every
# JOB_HEARTBEAT_SECONDS; a job silent for JOB_STALE_SECONDS is re-queued by the sweeper (every
# JOB_SWEEP_SECONDS) until JOB_MAX_ATTEMPTS attempts are used, then failed; a queued job no
# worker takes within JOB_QUEUE_TIMEOUT_SECONDS is failed. So a job ends within about
# attempts x (its time limit + JOB_STALE_SECONDS + JOB_SWEEP_SECONDS).
JOB_HEARTBEAT_SECONDS = env_float("JOB_HEARTBEAT_SECONDS", 10.0, minimum=0.1)
JOB_STALE_SECONDS = env_float("JOB_STALE_SECONDS", 60.0, minimum=0.5)
JOB_SWEEP_SECONDS = env_float("JOB_SWEEP_SECONDS", 30.0, minimum=0.5)
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 3, minimum=1, maximum=20)
JOB_QUEUE_TIMEOUT_SECONDS = env_float("JOB_QUEUE_TIMEOUT_SECONDS", 1800.0, minimum=1)
if JOB_STALE_SECONDS < 2 * JOB_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        f"JOB_STALE_SECONDS={JOB_STALE_SECONDS:g} must be at least twice JOB_HEARTBEAT_SECONDS="
        f"{JOB_HEARTBEAT_SECONDS:g}, or live jobs would be taken for dead ones."
    )
# Tests only: a running job pauses this long at 50 % on its first attempt (a window to kill the worker).
CALMA_FAULT_JOB_SLEEP = env_float("CALMA_FAULT_JOB_SLEEP", 0.0, minimum=0) if env_bool("CALMA_TESTING", False) else 0.0
# How often the answers left pending by a process that died are ended (llm_gateway).
LLM_SWEEP_SECONDS = env_float("LLM_SWEEP_SECONDS", 30.0, minimum=0.5)

# Periodic work: ONE schedule, run by `celery -A calma beat` (docker-compose.yml service `beat`)
# and, in the embedded mode without a broker, by `manage.py run_periodic` (scripts/run_local.sh).
CELERY_BEAT_SCHEDULE = {
    "sweep-jobs": {"task": "workshops.tasks.sweep_jobs", "schedule": JOB_SWEEP_SECONDS,
                   "options": {"expires": JOB_SWEEP_SECONDS}},
    "sweep-answers": {"task": "llm_gateway.tasks.sweep_answers", "schedule": LLM_SWEEP_SECONDS,
                      "options": {"expires": LLM_SWEEP_SECONDS}},
}

# --- Auth, sessions, security -------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "workshops.auth.ReturnCodeBackend",  # personal return codes of people who joined by link
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Login throttling (django-axes; workshops/auth.py). Failures are counted per username and
# address (LOGIN_FAILURE_LIMIT) and per address alone (LOGIN_ADDRESS_FAILURE_LIMIT, higher:
# a classroom behind one NAT address must survive ordinary typos, password spraying must
# not). Wrong return codes count against the address. Both windows: LOGIN_COOLOFF_HOURS.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 30, minimum=1)
AXES_COOLOFF_TIME = env_float("LOGIN_COOLOFF_HOURS", 0.25, minimum=0)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_HANDLER = "workshops.auth.LoginThrottleHandler"
AXES_USERNAME_CALLABLE = "workshops.auth.throttle_username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "code"]  # "code": a return code typed in
AXES_ENABLED = env_bool("AXES_ENABLED", True)
# The client address: the socket's (REMOTE_ADDR) unless the deployment says it is behind
# proxies. TRUSTED_PROXY_HOPS=N: N proxies of ours stand in front, each appending the address
# it saw to TRUSTED_PROXY_HEADER; the client is the N-th entry from the right, and anything
# further left (which a client can write itself) is ignored. Parsed by django-ipware.
TRUSTED_PROXY_HOPS = env_int("TRUSTED_PROXY_HOPS", 0, minimum=0, maximum=10)
TRUSTED_PROXY_HEADER = env_str("TRUSTED_PROXY_HEADER", "X-Forwarded-For")
if TRUSTED_PROXY_HOPS:
    try:
        import ipware  # noqa: F401
    except ImportError:  # pragma: no cover
        raise ImproperlyConfigured("TRUSTED_PROXY_HOPS needs django-ipware (pip install django-ipware).") from None
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_" + TRUSTED_PROXY_HEADER.upper().replace("-", "_"),)
    AXES_IPWARE_PROXY_COUNT = TRUSTED_PROXY_HOPS - 1  # ipware counts the proxies listed in the header
    AXES_IPWARE_PROXY_ORDER = "left-most"
    IPWARE_STRICT = False  # entries a client wrote left of our proxies' are ignored, not fatal
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
    AXES_IPWARE_PROXY_COUNT = None

SECURE = not DEBUG and env_bool("SECURE_COOKIES", True)
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
BEHIND_TLS = env_bool("BEHIND_TLS_PROXY", False) or SECURE_SSL_REDIRECT
# HSTS is on by default when the deployment says it is served over TLS (one year).
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if BEHIND_TLS and not DEBUG else 0, minimum=0)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# How many HTTP requests one server process runs inside Django at once (ASGI); the rest wait
# their turn in arrival order (calma/asgi.py). 0: no limit.
HTTP_CONCURRENCY = env_int("HTTP_CONCURRENCY", 8, minimum=0, maximum=1000)

# Content-Security-Policy: no inline script anywhere; styles from our own files only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],  # plotly.js injects <style>; scripts stay strict
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        # 'self' covers ws:/wss: of the page's own host (CSP Level 3; Chromium, Firefox, Safari).
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# --- i18n -----------------------------------------------------------------------------------
LANGUAGE_CODE = env_str("LANGUAGE_CODE", "en")
# Every language here ships a complete catalogue under locale/ (tests/workshops/test_i18n.py
# checks it): a participant may choose any of them for their own interface.
LANGUAGES = [
    ("en", _("English")),
    ("hi", _("Hindi")),
    ("sw", _("Swahili")),
    ("ar", _("Arabic")),
    ("es", _("Spanish")),
]
# Each language's name in itself, for the language picker (read by people who do not read the
# current interface language).
LANGUAGE_NATIVE_NAMES = {"en": "English", "hi": "हिन्दी", "sw": "Kiswahili", "ar": "العربية", "es": "Español"}
LANGUAGE_COOKIE_NAME = "calma_language"
LANGUAGE_COOKIE_SAMESITE = "Lax"
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_TZ = True

# --- Static files -----------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]  # plotly.js is vendored as static/plotly/plotly.min.js (no CDN)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG and not env_bool("CALMA_TESTING", False)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG or env_bool("CALMA_TESTING", False)

# --- Product settings -------------------------------------------------------------------------
# LLM endpoints: a JSON file or JSON in LLM_ENDPOINTS; see llm_gateway/registry.py and README.
LLM_ENDPOINTS = env_str("LLM_ENDPOINTS", "")
LLM_ENDPOINTS_FILE = env_str("LLM_ENDPOINTS_FILE", "")
LLM_CONNECT_TIMEOUT = env_float("LLM_CONNECT_TIMEOUT", 5.0, minimum=0.1)
LLM_FIRST_TOKEN_TIMEOUT = env_float("LLM_FIRST_TOKEN_TIMEOUT", 60.0, minimum=0.1)
LLM_TOTAL_TIMEOUT = env_float("LLM_TOTAL_TIMEOUT", 180.0, minimum=0.1)
LLM_RETRY_BUDGET_SECONDS = env_float("LLM_RETRY_BUDGET_SECONDS", 20.0, minimum=0)
# A model judge has nobody waiting on each answer: its calls may wait longer for the first token
# (a long rubric prompt on a small CPU server) than a participant's chat does.
EVALUATION_JUDGE_BUDGET_SECONDS = env_float("EVALUATION_JUDGE_BUDGET_SECONDS", 120.0, minimum=0.0)
LLM_MAX_RETRIES = env_int("LLM_MAX_RETRIES", 3, minimum=0, maximum=10)
CHAT_MESSAGE_MAX_CHARS = env_int("CHAT_MESSAGE_MAX_CHARS", 4000, minimum=100)
CHAT_RATE_LIMIT = env_rate("CHAT_RATE_LIMIT", "20/m")
LLM_PERSIST_INTERVAL = env_float("LLM_PERSIST_INTERVAL", 0.5, minimum=0.05)
LLM_HEARTBEAT_SECONDS = env_float("LLM_HEARTBEAT_SECONDS", 10.0, minimum=1)
LLM_STALE_SECONDS = env_float("LLM_STALE_SECONDS", 45.0, minimum=5)
LLM_DB_THREADS = env_int("LLM_DB_THREADS", 8, minimum=1, maximum=64)
LLM_STREAM_BATCH_SECONDS = env_float("LLM_STREAM_BATCH_SECONDS", 0.1, minimum=0)

# The live board (docs/discussion.md "Limits"): commands per member across all their sockets
# and server processes (counted in Redis), and how many cards may be on the board at once
# per participant and in all. The board state stays fast at the cap (constant query count).
DISCUSSION_MEMBER_RATE = env_rate("DISCUSSION_MEMBER_RATE", "60/m")
# The read-only JSON API (docs/api.md): requests per personal token (or per logged-in user).
API_RATE_LIMIT = env_rate("API_RATE_LIMIT", "600/m")
DISCUSSION_CARDS_PER_MEMBER = env_int("DISCUSSION_CARDS_PER_MEMBER", 30, minimum=1, maximum=10000)
DISCUSSION_CARDS_PER_BOARD = env_int("DISCUSSION_CARDS_PER_BOARD", 300, minimum=1, maximum=10000)

EMBEDDING_MODEL_PATH = env_str("EMBEDDING_MODEL_PATH", "")
# A worker loads the embedding model and compiles UMAP at start (discussion/tasks.py); off for
# workers that serve no map jobs.
MAP_WARM_UP = env_bool("MAP_WARM_UP", True)
EMBEDDING_BATCH_SIZE = env_int("EMBEDDING_BATCH_SIZE", 64, minimum=1)
# The affinity map and the board's sockets (read through discussion/conf.py; README "Configuration").
DISCUSSION_EMBED_TEXT_CHOICES = ("label", "label_definition", "label_excerpts")
DISCUSSION_EMBED_TEXT = env_choice("DISCUSSION_EMBED_TEXT", "label_definition", DISCUSSION_EMBED_TEXT_CHOICES)
DISCUSSION_MAP_INCREMENTAL_MAX = env_int("DISCUSSION_MAP_INCREMENTAL_MAX", 50, minimum=0)
DISCUSSION_SOCKET_RATE = env_int("DISCUSSION_SOCKET_RATE", 20, minimum=1)
DISCUSSION_SOCKET_WINDOW = env_float("DISCUSSION_SOCKET_WINDOW", 5.0, minimum=0.1)
DISCUSSION_SOCKET_MAX_FRAME = env_int("DISCUSSION_SOCKET_MAX_FRAME", 16384, minimum=256)
# Embedding vectors a worker keeps in memory in front of the Embedding table (discussion/mapping.py).
MAP_VECTOR_MEMORY = env_int("MAP_VECTOR_MEMORY", 20000, minimum=0, maximum=10_000_000)
# Batches the numpy embedding engine runs at once, each on one BLAS thread (discussion/bert_numpy.py).
MAP_EMBED_PARALLEL = env_int("MAP_EMBED_PARALLEL", 2, minimum=1, maximum=64)
DISCUSSION_TORCH_THREADS = env_int("DISCUSSION_TORCH_THREADS", 1, minimum=1, maximum=64)
DISCUSSION_UMAP_EPOCHS = env_int("DISCUSSION_UMAP_EPOCHS", 200, minimum=10, maximum=2000)
# The map's embedding (docs/discussion.md, "Languages on the map"): auto = all-MiniLM-L6-v2 for
# English labels, the multilingual model for labels in several languages or a non-English workshop.
DISCUSSION_EMBEDDING_CHOICES = ("auto", "minilm", "e5", "gateway")
DISCUSSION_EMBEDDING = env_choice("DISCUSSION_EMBEDDING", "auto", DISCUSSION_EMBEDDING_CHOICES)
# An OpenAI-compatible /v1/embeddings endpoint for multilingual labels (optional).
DISCUSSION_EMBEDDING_GATEWAY_URL = env_str("DISCUSSION_EMBEDDING_GATEWAY_URL", "")
DISCUSSION_EMBEDDING_GATEWAY_MODEL = env_str("DISCUSSION_EMBEDDING_GATEWAY_MODEL", "multilingual-e5-small")
DISCUSSION_EMBEDDING_GATEWAY_KEY = env_str("DISCUSSION_EMBEDDING_GATEWAY_KEY", "")
if DISCUSSION_EMBEDDING == "gateway" and not DISCUSSION_EMBEDDING_GATEWAY_URL:
    raise ImproperlyConfigured("DISCUSSION_EMBEDDING=gateway needs DISCUSSION_EMBEDDING_GATEWAY_URL.")
# Where numba keeps UMAP's compiled code between worker processes (must be writable by the worker).
NUMBA_CACHE_DIR = env_str("NUMBA_CACHE_DIR", str(BASE_DIR / "run" / "numba-cache"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}
