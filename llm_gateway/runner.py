"""Scheduling server-side generation: independent of any browser being connected.

`start(message_id)` is called after the participant's message and a pending answer are
committed. In the ASGI server it schedules a `generation.Generation` as an asyncio task on
the server's event loop (from a sync view's thread, through asgiref's record of that loop);
with no server loop (management commands, the sync test client) it runs the generation to
the end in place. What one generation does is in `llm_gateway/generation.py`.

Every ORM call of a generation runs in a small dedicated thread pool (`db_call`), never on
the event loop (retried once if a connection went bad). With the connection pool (Postgres,
DB_POOL_MAX_SIZE > 0) each call hands its connection back to the pool when it is done: a
thread that kept one would pin it, and LLM_DB_THREADS pinned connections out of a pool of
DB_POOL_MAX_SIZE left the requests (the next Send, the next socket handshake) waiting for
the rest (the profile of 50 simultaneous sends: 20% of the server's samples in
`ConnectionPool.getconn`). Without a pool the threads keep their connections.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import logging
import threading

from asgiref.sync import async_to_sync
from django.conf import settings

from llm_gateway import client
from workshops.events import server_loop

log = logging.getLogger(__name__)

_running: set = set()


# The channel layer alias the chat's live events travel on (calma/settings.py: Redis pub/sub).
CHAT_LAYER = "chat"


def chat_group(conversation_id: int) -> str:
    """The group of a conversation's open sockets, on the CHAT_LAYER layer."""
    return f"chat.{conversation_id}"


def utf16_len(text: str) -> int:
    """Length as browsers count it (offsets in delta events use this unit)."""
    return len(text.encode("utf-16-le")) // 2


def start(message_id: int, *, messages: list[dict] | None = None, max_tokens: int | None = None,
          endpoint_key: str | None = None, conversation_id: int | None = None):
    """Generate the answer `message_id` in the background if a server loop runs, else now."""
    from llm_gateway.generation import Generation

    coro = Generation(message_id, messages=messages, max_tokens=max_tokens, endpoint_key=endpoint_key,
                      conversation_id=conversation_id).run()
    loop = server_loop()
    if loop is None:
        async_to_sync(_run_inline)(coro)
        return None
    loop.call_soon_threadsafe(_spawn, loop, coro)
    return None


def _spawn(loop: asyncio.AbstractEventLoop, coro) -> None:
    # A fresh context: the task must not inherit the request's thread-sensitive executor
    # (asgiref), which is gone once the response is sent.
    task = loop.create_task(coro, context=contextvars.Context())
    _running.add(task)
    task.add_done_callback(_running.discard)


async def _run_inline(coro):
    _inline.set(True)
    try:
        await coro
    finally:
        await client.close_client()


def running_count() -> int:
    return len(_running)


async def wait_all(timeout: float = 30.0) -> None:
    """Wait for background generations (tests and shutdown)."""
    pending = list(_running)
    if pending:
        await asyncio.wait(pending, timeout=timeout)


_db_pool: concurrent.futures.ThreadPoolExecutor | None = None
_db_pool_lock = threading.Lock()


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    global _db_pool
    with _db_pool_lock:
        if _db_pool is None:
            _db_pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=settings.LLM_DB_THREADS, thread_name_prefix="llm-db")
        return _db_pool


def _run_db(func, kwargs, close_after):
    from django.db import InterfaceError, OperationalError, connection

    try:
        try:
            return func(**kwargs)
        except (InterfaceError, OperationalError):
            if connection.in_atomic_block:
                raise
            connection.close()  # a dropped connection: reconnect once
            return func(**kwargs)
    finally:
        if close_after:
            connection.close()


# Generations run in place (no server loop: management commands, tests) close their
# connections after each call, so no pool thread holds one open afterwards.
_inline = contextvars.ContextVar("llm_gateway_inline", default=False)


def _pooled() -> bool:
    """True when the database has a connection pool: closing a connection returns it there."""
    from django.db import connections

    return bool(connections.settings["default"].get("OPTIONS", {}).get("pool"))


async def db_call(func, **kwargs):
    """Run an ORM function off the event loop, in the generator's own thread pool."""
    loop = asyncio.get_running_loop()
    close_after = _inline.get() or _pooled()
    return await loop.run_in_executor(_pool(), functools.partial(_run_db, func, kwargs, close_after))


