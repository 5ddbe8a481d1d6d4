"""Settings for coding_load's comparison variants "before" and "mixed-middleware": the app's
settings with the middleware chain as it was before it was made sync in one go.

Under ASGI, Django runs a middleware that can do both in the mode of the handler below it.
The app's last middleware (calma.middleware.PrivateCacheMiddleware) is sync-only, so the whole
chain runs in the request's thread in one go. Here it is replaced by the same class able to
run async too (as it was): every middleware then runs in async mode and each of its hooks
(process_request, process_view, process_response) in the sync thread, one hop between the event
loop and the thread per hook, about twenty per request; WhiteNoise (sync-only, second in the
chain) adds a hop back. This measures what those hops cost; the app's settings are not changed.

  .venv/bin/python -m benchmarks.coding_load --compare before --compare mixed-middleware
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from calma.middleware import PrivateCacheMiddleware as _Sync
from calma.settings import *  # noqa: F401,F403
from calma.settings import MIDDLEWARE as APP_MIDDLEWARE


class PrivateCacheMiddleware(_Sync):
    async_capable = True

    def __init__(self, get_response):
        super().__init__(get_response)
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request):
        return self._patch(request, await self.get_response(request))


MIDDLEWARE = [f"{__name__}.PrivateCacheMiddleware" if m == "calma.middleware.PrivateCacheMiddleware" else m
              for m in APP_MIDDLEWARE]
