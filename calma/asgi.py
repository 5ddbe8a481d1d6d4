"""ASGI entry point: HTTP through Django, websockets through Channels' URL router."""

import asyncio
import contextvars
import gc
import os
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calma.settings")

_held: contextvars.ContextVar = contextvars.ContextVar("calma_http_lane", default=None)


class LimitedASGIHandler(ASGIHandler):
    """Django's ASGI handler, with the sync work of at most HTTP_CONCURRENCY requests of this
    process running at once, on that many long-lived threads ("lanes"); the other requests
    wait their turn, first come first served, in the event loop. Like a threaded WSGI server.

    Why (docs/coding.md "Benchmarks", py-spy of 100 simultaneous annotation creates): Django's
    own handler gives every request a new thread (and, in it, a new database connection
    object), so a burst of 100 requests became 100 threads taking turns on one interpreter
    lock and ten pooled database connections. Every request progressed a little at a time and
    all of them finished near the end of the burst; starting, joining and switching between so
    many threads, and setting up each thread's connection object, took about a fifth of the
    interpreter's time. With a few lanes, requests finish in arrival order and the threads and
    their connection objects are reused.

    A request takes its lane after its body has been read (a slow upload holds none) and keeps
    it to the end of its response (a streamed download advances its database cursor in its
    lane's thread). Websockets are not affected (Channels runs them).
    """

    def __init__(self):
        super().__init__()
        self.limit = settings.HTTP_CONCURRENCY
        self._executors = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"http-lane-{i}")
                           for i in range(self.limit)]
        self._free: dict = {}  # event loop -> queue of free lanes (tests run several loops)

    def _lanes(self) -> asyncio.Queue:
        loop = asyncio.get_running_loop()
        queue = self._free.get(loop)
        if queue is None:
            for old in [lp for lp in self._free if lp.is_closed()]:
                del self._free[old]
            queue = self._free[loop] = asyncio.Queue()
            for executor in self._executors:
                queue.put_nowait(executor)
        return queue

    async def __call__(self, scope, receive, send):
        if self.limit <= 0 or scope["type"] != "http":
            return await super().__call__(scope, receive, send)
        _held.set(None)
        try:
            await self.handle(scope, receive, send)  # read_body() below takes the lane
        finally:
            held = _held.get()
            if held is not None:
                context, executor = held
                await context.__aexit__(None, None, None)
                self._lanes().put_nowait(executor)

    async def read_body(self, receive):
        body = await super().read_body(receive)
        if self.limit > 0:
            executor = await self._lanes().get()
            # asgiref's documented way to run a block's thread-sensitive work on a given
            # executor; entered here and left in __call__ (the same task and context).
            context = ThreadSensitiveContext(executor=executor)
            await context.__aenter__()
            _held.set((context, executor))
        return body


django.setup(set_prefix=False)  # as django.core.asgi.get_asgi_application() does
django_asgi_app = LimitedASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from calma.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# What the first requests would build (the URL conf and its views, the template engines and
# this project's templates, the translation catalogues): built now, under the freeze below
# (calma/warmup.py says what it cost when it was left to them).
from calma.warmup import warm_up  # noqa: E402

warm_up()

# What the process has built by now (Django, the apps, the URL and template machinery: about
# 110,000 objects) lives as long as the process: leave it out of the cycle collector's full
# passes, which walked all of it (170 ms each on this machine under load) and landed as the
# tail of a board change or a Send whenever one ran in between (the workers' own garbage is
# still collected).
gc.collect()
gc.freeze()
