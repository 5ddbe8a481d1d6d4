"""Settings for the fan-out benchmark's comparison runs: the app's settings, with
BENCH_CONN_MAX_AGE=<seconds>: persistent database connections instead of the app's
per-process connection pool (only when the pool is off, DB_POOL_MAX_SIZE=0).

The board's channel layer is chosen by the app's own DISCUSSION_BOARD_LAYER variable
(pubsub|redis), which `--layer pubsub|core` sets for the server.

  .venv/bin/python -m benchmarks.discussion_fanout --conn-max-age 60
"""

import os

from calma.settings import *  # noqa: F401,F403
from calma.settings import DATABASES

if os.environ.get("BENCH_CONN_MAX_AGE", "0") != "0" and "pool" not in DATABASES["default"].get("OPTIONS", {}):
    DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ["BENCH_CONN_MAX_AGE"])
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
