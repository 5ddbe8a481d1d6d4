"""Benchmark-only settings (`--tuned`): the app's settings plus the channel-layer change
proposed to the lead, to measure what it is worth. Never used by the app itself.

redis-py 8 gives every connection a 5 s socket timeout, the same as channels_redis' 5 s
BZPOPMIN, so a consumer that waits for messages can die with "Timeout reading from
127.0.0.1:6379". Here the layer's connections get no socket timeout.

(Persistent database connections, CONN_MAX_AGE > 0, were tried too: under ASGI they gave
HTTP 500s — Django's own advice is CONN_MAX_AGE=0 under ASGI; a psycopg pool is the way.)
"""

from calma.settings import *  # noqa: F401,F403
from calma.settings import CHANNEL_LAYERS, REDIS_URL

if REDIS_URL:
    CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [{"address": REDIS_URL, "socket_timeout": None}]

import os as _os  # noqa: E402

# Live-delta batching interval to try (the app's default is 0.1 s).
LLM_STREAM_BATCH_SECONDS = float(_os.environ.get("BENCH_STREAM_BATCH_SECONDS", "0.1"))
