"""Settings for the fan-out benchmark's comparison runs: the app's settings, with
- BENCH_LAYER=pubsub: Channels' Redis pub/sub layer (one PUBLISH per group message, fanned
  out inside each server process) instead of the list-based RedisChannelLayer (one Redis pop
  per receiving socket);
- BENCH_CONN_MAX_AGE=<seconds>: persistent database connections (the app's settings close
  the connection after every request/socket message: CONN_MAX_AGE 0).

  .venv/bin/python -m benchmarks.discussion_fanout --layer pubsub --conn-max-age 60
"""

import os

from calma.settings import *  # noqa: F401,F403
from calma.settings import CHANNEL_LAYERS, DATABASES, REDIS_URL

if REDIS_URL and os.environ.get("BENCH_LAYER") == "pubsub":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]},
        }
    }
if os.environ.get("BENCH_CONN_MAX_AGE", "0") != "0" and "pool" not in DATABASES["default"].get("OPTIONS", {}):
    DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ["BENCH_CONN_MAX_AGE"])
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
