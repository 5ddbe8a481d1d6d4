"""Settings for coding_load's comparison run `--sync-middleware`: the app's settings with every
middleware marked sync-only (same classes, same order).

Under ASGI, Django runs a sync-and-async-capable middleware in async mode and each of its
hooks (process_request, process_view, process_response) in the sync thread, one hop between
the event loop and the thread per hook; WhiteNoise (second in the chain) is sync-only, which
adds a hop back. Marked sync-only, the whole chain and the view run in the thread in one go.
This measures what those hops cost; the app's settings are not changed by it.

  .venv/bin/python -m benchmarks.coding_load --workers 2 --sync-middleware
"""

from calma.settings import *  # noqa: F401,F403
from calma.settings import MIDDLEWARE as APP_MIDDLEWARE

MIDDLEWARE = [f"{__name__}.SyncOnly{i}" for i in range(len(APP_MIDDLEWARE))]


def __getattr__(name):
    # Built when Django imports the middleware (settings are configured by then).
    if name.startswith("SyncOnly"):
        from django.utils.module_loading import import_string

        original = import_string(APP_MIDDLEWARE[int(name.removeprefix("SyncOnly"))])
        cls = type(original.__name__, (original,), {"sync_capable": True, "async_capable": False,
                                                    "__module__": __name__})
        globals()[name] = cls
        return cls
    raise AttributeError(name)
