"""The web handler (calma/asgi.py): a request's middleware chain and view run in its lane's
thread in one hop from the event loop."""

import asyncio

import pytest
from asgiref.sync import AsyncToSync
from asgiref.testing import ApplicationCommunicator


@pytest.mark.django_db(transaction=True)
def test_a_request_is_not_handed_back_to_the_event_loop_inside_django(monkeypatch):
    """Django's own ASGI handler builds the chain for async: its innermost step was called back
    on the event loop (async_to_sync) only to hand the sync view to a thread again."""
    from calma.asgi import LimitedASGIHandler

    handler = LimitedASGIHandler()
    calls = []
    real = AsyncToSync.__call__
    monkeypatch.setattr(AsyncToSync, "__call__", lambda self, *a, **k: calls.append(self) or real(self, *a, **k))

    async def get(path):
        scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
                 "headers": [(b"host", b"testserver")], "http_version": "1.1", "scheme": "http",
                 "server": ("testserver", 80), "client": ("127.0.0.1", 50000), "root_path": ""}
        app = ApplicationCommunicator(handler, scope)
        await app.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await app.receive_output(20)
        body = await app.receive_output(20)
        await app.wait(5)
        return start["status"], body.get("body", b"")

    status, body = asyncio.run(get("/login/"))
    assert status == 200 and b"<form" in body
    assert calls == []
