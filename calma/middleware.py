"""Cross-cutting HTTP middleware (no domain code)."""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.utils.cache import patch_cache_control


class PrivateCacheMiddleware:
    """Pages for a logged-in person carry `Cache-Control: private, no-store`.

    A participant's pages hold their own text (chats, codes, a return code); on a shared
    computer neither the back button nor a proxy cache may show them to the next person.
    "Logged in" is read from the session cookie (sent by the browser, or set by this very
    response), so the check costs no database query and works the same in sync and async
    handling (no thread hop under ASGI).
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        return self._patch(request, self.get_response(request))

    async def __acall__(self, request):
        return self._patch(request, await self.get_response(request))

    @staticmethod
    def _patch(request, response):
        name = settings.SESSION_COOKIE_NAME
        has_session = name in request.COOKIES or (name in response.cookies and response.cookies[name].value)
        if has_session and not request.path.startswith(settings.STATIC_URL):
            patch_cache_control(response, private=True, no_store=True, no_cache=True, max_age=0)
            response.headers.pop("Expires", None)
        return response
