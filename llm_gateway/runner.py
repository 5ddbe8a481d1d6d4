"""Server-side generation: independent of any browser being connected.

`start(message_id)` is called after the participant's message and a pending answer are
committed. In the ASGI server it schedules `generate` as an asyncio task on the server's
event loop (from a sync view's thread, through asgiref's record of that loop); with no
server loop (management commands, the sync test client) it runs the generation to the end
in place.

`generate` streams from the endpoint, pushes each delta to the Channels group
`chat.<conversation id>`, persists the partial text every LLM_PERSIST_INTERVAL seconds and
a heartbeat every LLM_HEARTBEAT_SECONDS (the sweeper ends answers whose heartbeat stopped),
then stores the final state with usage. Every ORM call runs in a small dedicated thread pool
(`db_call`), never on the event loop: its threads keep their database connections (retried
once if a connection went bad), and partial-text saves are coalesced in the background, so
neither the database nor the channel layer slows down reading the endpoint.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import logging
import os
import threading
import time

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from llm_gateway import client, registry, services
from llm_gateway.models import MessageStatus

log = logging.getLogger(__name__)

_running: set = set()


def chat_group(conversation_id: int) -> str:
    return f"chat.{conversation_id}"


def utf16_len(text: str) -> int:
    """Length as browsers count it (offsets in delta events use this unit)."""
    return len(text.encode("utf-16-le")) // 2


def _persist_interval() -> float:
    return float(getattr(settings, "LLM_PERSIST_INTERVAL", 0.5))


def _heartbeat_interval() -> float:
    return float(getattr(settings, "LLM_HEARTBEAT_SECONDS", 10.0))


def _server_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    pid = getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None)
    if loop is not None and pid == os.getpid() and loop.is_running() and not loop.is_closed():
        return loop
    return None


def start(message_id: int, *, messages: list[dict] | None = None, max_tokens: int | None = None,
          endpoint_key: str | None = None, conversation_id: int | None = None):
    """Generate the answer `message_id` in the background if a server loop runs, else now."""
    coro = generate(message_id, messages=messages, max_tokens=max_tokens, endpoint_key=endpoint_key,
                    conversation_id=conversation_id)
    loop = _server_loop()
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
                max_workers=int(getattr(settings, "LLM_DB_THREADS", 8)), thread_name_prefix="llm-db")
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


async def db_call(func, **kwargs):
    """Run an ORM function off the event loop, in the generator's own thread pool."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(), functools.partial(_run_db, func, kwargs, _inline.get()))


async def _claim(*, message_id):
    return await db_call(services.answer_claim, message_id=message_id)


async def _progress(**kwargs):
    return await db_call(services.answer_progress, **kwargs)


async def _finish(**kwargs):
    return await db_call(services.answer_finish, **kwargs)


def _history_sync(*, message):
    return services.history_for_model(message.conversation, upto_position=message.position)


async def _history(message):
    return await db_call(_history_sync, message=message)


async def generate(message_id: int, *, messages: list[dict] | None = None, max_tokens: int | None = None,
                   endpoint_key: str | None = None, conversation_id: int | None = None) -> str | None:
    """Generate one answer; returns its final status (None if it was not pending).

    From the send view, `messages` and `endpoint_key` come along, so the upstream call
    starts at once and the claim (pending -> ours) runs alongside it; it is settled before
    anything is stored or shown.
    """
    began = time.monotonic()
    claim = None
    owned: bool | None = True  # None: the claim runs alongside the upstream call
    if messages is None or endpoint_key is None:
        message = await _claim(message_id=message_id)
        if message is None:
            return None
        if messages is None:
            messages = await _history(message)
        endpoint_key = message.endpoint_key or message.conversation.endpoint_key
        conversation_id = message.conversation_id
    else:
        claim = asyncio.ensure_future(_claim_pending(message_id))
        owned = None
    endpoint = registry.get(endpoint_key)

    parts: list[str] = []
    length = 0  # UTF-16 units streamed so far
    chunks = 0
    usage: client.Usage | None = None
    finish: client.Finish | None = None
    error: client.UpstreamError | None = None
    internal_error = False
    attempts = 0
    used = endpoint
    ttft_ms: int | None = None
    persist_every = _persist_interval()
    status = MessageStatus.FAILED
    layer = get_channel_layer()
    group = None

    async def send(event: dict) -> None:
        if layer is None or group is None:
            return
        try:
            await layer.group_send(group, event)
        except Exception:  # live updates are best effort; the stored state is the truth
            log.warning("could not push to %s", group, exc_info=True)

    # Deltas go out through a pump: the first is sent at once; later ones are merged while a
    # send is in flight and for LLM_STREAM_BATCH_SECONDS after it, so neither a slow channel
    # layer nor many simultaneous streams slow reading the upstream.
    outbox: list[str] = []
    outbox_offset = 0
    batch_every = float(getattr(settings, "LLM_STREAM_BATCH_SECONDS", 0.1))
    wake = asyncio.Event()
    ended = asyncio.Event()
    closing = False

    async def pump() -> None:
        nonlocal outbox_offset
        while True:
            if not outbox:
                if closing:
                    return
                await wake.wait()
                wake.clear()
                continue
            text, offset = "".join(outbox), outbox_offset
            outbox.clear()
            outbox_offset = offset + utf16_len(text)
            await send({"type": "chat.delta", "id": message_id, "o": offset, "x": text})
            if not closing and batch_every > 0:
                # After the first delta, at most one push per interval (cut short when the
                # answer ends): the same text at the endpoint's rate, in fewer messages.
                try:
                    await asyncio.wait_for(ended.wait(), timeout=batch_every)
                except asyncio.TimeoutError:
                    pass

    # Partial text is saved by a saver task too: the newest text, whenever the previous
    # save has finished (at most every LLM_PERSIST_INTERVAL seconds).
    save_wake = asyncio.Event()

    async def saver() -> None:
        saved = 0
        while True:
            await save_wake.wait()
            save_wake.clear()
            if len(parts) != saved:
                first = saved == 0
                saved = len(parts)
                await _progress(message_id=message_id, content="".join(parts), streaming=first)
            await asyncio.sleep(persist_every)

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(_heartbeat_interval())
            await _progress(message_id=message_id)

    beat = asyncio.ensure_future(heartbeat())
    pumping = asyncio.ensure_future(pump())
    saving = asyncio.ensure_future(saver())
    try:
        if conversation_id is None:
            conversation_id = await _conversation_of(message_id)
        group = chat_group(conversation_id)
        if endpoint is None:
            raise client.UpstreamError("bad_request", f"endpoint {endpoint_key!r} is not in the registry")
        async for event in client.stream_reply(endpoint, messages, max_tokens=max_tokens):
            if isinstance(event, client.Delta):
                if ttft_ms is None:
                    ttft_ms = int((time.monotonic() - began) * 1000)
                    if owned is None:
                        owned = await claim
                    if not owned:
                        log.info("answer %s was not pending any more; dropped", message_id)
                        return None
                parts.append(event.text)
                outbox.append(event.text)
                length += utf16_len(event.text)
                chunks += 1
                wake.set()
                save_wake.set()
            elif isinstance(event, client.Attempt):
                attempts = event.number
                used = event.endpoint
                if attempts > 1:
                    await send({"type": "chat.status", "id": message_id, "status": "retrying"})
            elif isinstance(event, client.Usage):
                usage = event
            elif isinstance(event, client.Finish):
                finish = event
        status = MessageStatus.COMPLETE
    except client.UpstreamError as exc:
        error = exc
        status = MessageStatus.INTERRUPTED if parts else MessageStatus.FAILED
        log.warning("answer %s ended %s after %s attempt(s): %s", message_id, status, attempts, exc)
    except asyncio.CancelledError:
        status = MessageStatus.INTERRUPTED if parts else MessageStatus.FAILED
        internal_error = True
        raise
    except Exception:
        log.exception("answer %s failed in the gateway", message_id)
        internal_error = True
        status = MessageStatus.INTERRUPTED if parts else MessageStatus.FAILED
    finally:
        beat.cancel()
        saving.cancel()
        closing = True
        wake.set()
        ended.set()
        if owned is None:
            try:
                owned = await claim
            except BaseException:
                owned = False
        if owned:
            try:
                await asyncio.wait_for(asyncio.shield(pumping), timeout=10)
            except Exception:
                pumping.cancel()
            total_ms = int((time.monotonic() - began) * 1000)
            if error is not None:
                detail, kind = error.message, error.kind
            elif internal_error:
                detail, kind = "the gateway stopped while answering", "internal"
            elif finish is not None and finish.malformed_events:
                detail, kind = f"{finish.malformed_events} malformed event(s) from the endpoint were skipped", "malformed"
            else:
                detail, kind = "", ""
            if finish is not None and finish.reason == "length" and not detail:
                kind = "length"
            try:
                await asyncio.shield(_finish(
                    message_id=message_id, status=status, content="".join(parts),
                    endpoint_key=used.key if used else endpoint_key, model_id=used.model if used else "",
                    prompt_tokens=usage.prompt_tokens if usage else None,
                    completion_tokens=usage.completion_tokens if usage else None,
                    ttft_ms=ttft_ms, total_ms=total_ms, attempts=attempts, stream_chunks=chunks,
                    error=detail, error_kind=kind,
                ))
            except Exception:
                log.exception("could not store the final state of answer %s", message_id)
            await send({"type": "chat.status", "id": message_id, "status": str(status)})
        else:
            pumping.cancel()
    return str(status)


def _claim_pending_sync(*, message_id: int) -> bool:
    from django.utils import timezone

    from llm_gateway.models import Message

    return bool(Message.objects.filter(pk=message_id, status=MessageStatus.PENDING).update(updated_at=timezone.now()))


async def _claim_pending(message_id: int) -> bool:
    return await db_call(_claim_pending_sync, message_id=message_id)


def _conversation_of_sync(*, message_id: int) -> int:
    from llm_gateway.models import Message

    return Message.objects.filter(pk=message_id).values_list("conversation_id", flat=True).get()


async def _conversation_of(message_id: int) -> int:
    return await db_call(_conversation_of_sync, message_id=message_id)
