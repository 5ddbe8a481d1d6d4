"""Live change notifications for a workshop.

Services call `broadcast` inside their transaction; the message is sent after commit to the
Channels group `workshop.<id>`. Events carry only what changed (kind and ids), never private
content: every client re-fetches what it may see over HTTP, with its own permissions.

In the ASGI server a request does not wait for the channel layer: the event is handed to the
server's event loop, where one task per process sends the events in the order they were made
(a Redis round trip through `async_to_sync` in every Send and every annotation was a visible
share of both under a burst of 50 or 100 at once). Elsewhere (management commands, workers,
tests without a server loop) it is sent in place, as before. `deliver` is that one way of
sending after a change, for every layer: the board's events (discussion/events.py) use it too.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import weakref

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)

OUTBOX_LIMIT = 5000  # events waiting while the layer is unreachable; older ones are dropped beyond it


def server_loop() -> asyncio.AbstractEventLoop | None:
    """The ASGI server's event loop, from its own thread or from a sync view's thread (through
    asgiref's record of the loop that called it); None where no server loop runs."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    pid = getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None)
    if loop is not None and pid == os.getpid() and loop.is_running() and not loop.is_closed():
        return loop
    return None


_outboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Queue] = weakref.WeakKeyDictionary()
_senders: set = set()


def _enqueue(loop: asyncio.AbstractEventLoop, layer, group: str, message: dict, done=None) -> None:
    """On the loop: queue one event for the loop's sender task (started on first use)."""
    queue = _outboxes.get(loop)
    if queue is None:
        queue = _outboxes[loop] = asyncio.Queue()
        task = loop.create_task(_send_queued(queue), context=contextvars.Context())
        _senders.add(task)
        task.add_done_callback(_senders.discard)
    if queue.qsize() >= OUTBOX_LIMIT:
        queue.get_nowait()
        log.warning("live events are not getting through; the oldest waiting one was dropped")
    queue.put_nowait((layer, group, message, done))


async def _send_queued(queue: asyncio.Queue) -> None:
    while True:
        layer, group, message, done = await queue.get()
        try:
            await layer.group_send(group, message)
        except Exception:  # best-effort, as below; the page also refreshes on reconnect
            _failed(group, message, done)
        else:
            _report(done, True)


def _failed(group: str, message: dict, done) -> None:
    if done is None:
        log.warning("could not broadcast %s to %s", message.get("kind") or message.get("type"), group, exc_info=True)
    else:
        _report(done, False)


def _report(done, ok: bool) -> None:
    if done is not None:
        try:
            done(ok)
        except Exception:  # a reporting bug must not stop the sender task
            log.exception("event delivery callback failed")


def deliver(layer, group: str, message: dict, *, done=None) -> None:
    """Send `message` to `group` on `layer` without making the caller wait where a server loop
    runs (queued in order for the loop's sender task), else in place. Best effort: a failure is
    logged, or, with `done`, reported as `done(False)` (inside `except`, so it may log the
    traceback) and a success as `done(True)` (the board logs an outage once, not per event)."""
    loop = server_loop()
    if loop is not None and not _on_loop(loop):
        loop.call_soon_threadsafe(_enqueue, loop, layer, group, message, done)
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:
        _failed(group, message, done)
    else:
        _report(done, True)


def group_name(workshop_id: int) -> str:
    return f"workshop.{workshop_id}"


def send_now(workshop_id: int, kind: str, payload: dict | None = None) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    deliver(layer, group_name(workshop_id), {"type": "workshop.event", "kind": kind, "payload": payload or {}})


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def broadcast(workshop_id: int, kind: str, payload: dict | None = None) -> None:
    transaction.on_commit(lambda: send_now(workshop_id, kind, payload))
