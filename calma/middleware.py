"""Cross-cutting HTTP middleware (no domain code)."""

from __future__ import annotations

from django.conf import settings
from django.utils.cache import patch_cache_control


class PrivateCacheMiddleware:
    """Pages for a logged-in person carry `Cache-Control: private, no-store`.

    A participant's pages hold their own text (chats, codes, a return code); on a shared
    computer neither the back button nor a proxy cache may show them to the next person.
    "Logged in" is read from the session cookie (sent by the browser, or set by this very
    response), so the check costs no database query.

    Sync-only on purpose, and last in MIDDLEWARE: Django runs a middleware that can do both in
    the mode of the handler below it, so with this one sync the whole chain above it runs in
    the request's thread in one go (under ASGI: one hop from the event loop for the chain). Mixed, each hook
    of each middleware (process_request, process_view, process_response) was a hop between the
    event loop and a thread, about twenty per request (docs/coding.md "Benchmarks").
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self._patch(request, self.get_response(request))

    @staticmethod
    def _patch(request, response):
        name = settings.SESSION_COOKIE_NAME
        has_session = name in request.COOKIES or (name in response.cookies and response.cookies[name].value)
        if has_session and not request.path.startswith(settings.STATIC_URL):
            patch_cache_control(response, private=True, no_store=True, no_cache=True, max_age=0)
            response.headers.pop("Expires", None)
        return response

