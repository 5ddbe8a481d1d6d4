"""Benchmark-only settings: the app's settings with persistent database connections
(CONN_MAX_AGE=60 and health checks) instead of one new connection per request, to measure
what connection set-up costs the gateway. Used by `python -m benchmarks.gateway_overhead
--persistent`; never by the app itself. (A psycopg connection pool would be the production
form of this; psycopg_pool is not installed.)"""

from calma.settings import *  # noqa: F401,F403
from calma.settings import DATABASES

DATABASES["default"]["CONN_MAX_AGE"] = 60
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
