"""The app as benchmarks.coding_load serves it: calma.asgi plus the server-side time of each
HTTP request in an `x-server-ms` response header.

The time runs from the moment uvicorn hands the request to the app to the moment the app
starts its response (Django sends the start only when the view has finished), so it covers
middleware, the view, the database and any queueing for the process's sync thread, but not
the client, the socket or uvicorn's own parsing. On a 2-core machine where the load generator
shares the cores, it shows what the server itself takes.
"""

from __future__ import annotations

import time

from calma.asgi import application as _app

HEADER = b"x-server-ms"


async def application(scope, receive, send):
    if scope["type"] != "http":
        return await _app(scope, receive, send)
    t0 = time.perf_counter()

    async def timed_send(message):
        if message["type"] == "http.response.start":
            ms = (time.perf_counter() - t0) * 1000
            message = {**message, "headers": [*message.get("headers", []), (HEADER, f"{ms:.2f}".encode())]}
        await send(message)

    await _app(scope, receive, timed_send)
