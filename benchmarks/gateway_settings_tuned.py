"""Benchmark-only settings (`--tuned`): the app's settings plus two changes proposed to the
lead, to measure what they are worth. Never used by the app itself.

1. Channel layer: redis-py 8 gives every connection a 5 s socket timeout, the same as
   channels_redis' 5 s BZPOPMIN, so an idle consumer can die with "Timeout reading from
   127.0.0.1:6379". Here the layer's connections get no socket timeout.
2. Database: persistent connections (CONN_MAX_AGE=60 with health checks) instead of a new
   connection per request (a psycopg pool would be the production form; not installed).
"""

from calma.settings import *  # noqa: F401,F403
from calma.settings import CHANNEL_LAYERS, DATABASES, REDIS_URL

DATABASES["default"]["CONN_MAX_AGE"] = 60
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if REDIS_URL:
    CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [{"address": REDIS_URL, "socket_timeout": None}]
