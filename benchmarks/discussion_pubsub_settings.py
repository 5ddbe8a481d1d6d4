"""Settings for the fan-out benchmark's comparison run: the app's settings with Channels'
Redis *pub/sub* layer (one PUBLISH per group message, fanned out inside each server process)
instead of the default list-based RedisChannelLayer (one Redis pop per receiving socket).

  .venv/bin/python -m benchmarks.discussion_fanout --layer pubsub
"""

from calma.settings import *  # noqa: F401,F403
from calma.settings import CHANNEL_LAYERS, REDIS_URL

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]},
        }
    }
