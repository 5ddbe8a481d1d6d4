"""One answer being generated: reading the endpoint, pushing deltas live, saving, finishing.

`Generation(message_id, ...).run()` is what `llm_gateway.runner` schedules on the server's
event loop. It is a small object instead of nested coroutines sharing state; its parts:

- `_stream`: reads `client.stream_reply` and appends each delta to the answer's text; it never
  waits for the database or the channel layer (the other parts do, in their own tasks);
- `_pump`: pushes deltas to the Channels group `chat.<conversation id>`: the first at once,
  later ones merged while a push is in flight and for `push_interval()` after it
  (LLM_STREAM_BATCH_SECONDS, longer when many streams run in the process);
- `_saver`: saves the newest partial text whenever the previous save has finished, at most
  every `persist_interval()` seconds (LLM_PERSIST_INTERVAL, longer when many streams run in
  the process; the first save, which marks the answer streaming, is never delayed);
- `_heartbeat`: touches the answer every LLM_HEARTBEAT_SECONDS (the sweeper ends answers
  whose heartbeat stopped: their server died);
- `_finish`: stores the final state with usage and timings, then tells the page.

The generator's own writes are the functions below the class (`answer_claim`,
`answer_progress`, `answer_finish`); they run in the runner's database threads (`db_call`).

From the send view the history and endpoint come along, so the upstream call starts at once
and the claim (pending -> ours) runs alongside it; it is settled before anything is stored
or shown. Without them (a management command, a test) the claim comes first.
"""

from __future__ import annotations

import asyncio
import logging
import time

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from llm_gateway import client, registry
from llm_gateway.models import Message, MessageStatus
from llm_gateway.runner import CHAT_LAYER, chat_group, db_call, running_count, utf16_len
from workshops.events import broadcast

log = logging.getLogger(__name__)

ACTIVE = (MessageStatus.PENDING, MessageStatus.STREAMING)


class Generation:
    def __init__(self, message_id: int, *, messages: list[dict] | None = None, max_tokens: int | None = None,
                 endpoint_key: str | None = None, conversation_id: int | None = None):
        self.message_id = message_id
        self.messages = messages
        self.max_tokens = max_tokens
        self.endpoint_key = endpoint_key
        self.conversation_id = conversation_id
        self.began = 0.0  # set when the task starts on the loop: ttft_ms and total_ms count from there
        # What the endpoint sent.
        self.parts: list[str] = []
        self.chunks = 0
        self.usage: client.Usage | None = None
        self.finish: client.Finish | None = None
        self.error: client.UpstreamError | None = None
        self.internal_error = False
        self.attempts = 0
        self.used: registry.Endpoint | None = None
        self.ttft_ms: int | None = None
        self.status = MessageStatus.FAILED
        # The claim: True (ours), False (not pending any more), None (running alongside).
        self.owned: bool | None = True
        self._claim: asyncio.Future | None = None
        # Live pushes.
        self.layer = None
        self.group: str | None = None
        self._outbox: list[str] = []
        self._outbox_offset = 0  # UTF-16 units already pushed
        self._wake = asyncio.Event()
        self._ended = asyncio.Event()
        self._closing = False
        self._save_wake = asyncio.Event()

    # --- The whole generation ---------------------------------------------------------------

    async def run(self) -> str | None:
        """Generate the answer; its final status, or None if it was not pending (any more)."""
        self.began = time.monotonic()
        self.layer = get_channel_layer(CHAT_LAYER)
        if self.messages is None or self.endpoint_key is None:
            if not await db_call(answer_claim, message_id=self.message_id):
                return None
            message = await db_call(_answer_to_generate, message_id=self.message_id)
            if self.messages is None:
                self.messages = await db_call(_history, message=message)
            self.endpoint_key = message.endpoint_key or message.conversation.endpoint_key
            self.conversation_id = message.conversation_id
        else:
            self._claim = asyncio.ensure_future(db_call(answer_claim, message_id=self.message_id))
            self.owned = None
        endpoint = registry.get(self.endpoint_key)
        self.used = endpoint
        helpers = [asyncio.ensure_future(self._heartbeat()), asyncio.ensure_future(self._saver())]
        pumping = asyncio.ensure_future(self._pump())
        dropped = False
        try:
            if self.conversation_id is None:
                self.conversation_id = await db_call(_conversation_of, message_id=self.message_id)
            self.group = chat_group(self.conversation_id)
            if endpoint is None:
                raise client.UpstreamError("bad_request", f"endpoint {self.endpoint_key!r} is not in the registry")
            dropped = not await self._stream(endpoint)
            if not dropped:
                self.status = MessageStatus.COMPLETE
        except client.UpstreamError as exc:
            self.error = exc
            self.status = self._cut_short()
            log.warning("answer %s ended %s after %s attempt(s): %s", self.message_id, self.status, self.attempts, exc)
        except asyncio.CancelledError:
            self.status = self._cut_short()
            self.internal_error = True
            raise
        except Exception:
            log.exception("answer %s failed in the gateway", self.message_id)
            self.internal_error = True
            self.status = self._cut_short()
        finally:
            for task in helpers:
                task.cancel()
            self._closing = True
            self._wake.set()
            self._ended.set()
            await self._settle_claim()
            if self.owned:
                await self._finish(pumping)
            else:
                pumping.cancel()
        return None if dropped else str(self.status)

    def _cut_short(self) -> str:
        return MessageStatus.INTERRUPTED if self.parts else MessageStatus.FAILED

    async def _settle_claim(self) -> None:
        if self.owned is None:
            try:
                self.owned = await self._claim
            except BaseException:
                self.owned = False

    # --- Reading the endpoint ---------------------------------------------------------------

    async def _stream(self, endpoint: registry.Endpoint) -> bool:
        """Read the endpoint to the end; False if the answer turned out not to be ours."""
        async for event in client.stream_reply(endpoint, self.messages, max_tokens=self.max_tokens):
            if isinstance(event, client.Delta):
                if self.ttft_ms is None:
                    self.ttft_ms = int((time.monotonic() - self.began) * 1000)
                    await self._settle_claim()
                    if not self.owned:
                        log.info("answer %s was not pending any more; dropped", self.message_id)
                        return False
                self.parts.append(event.text)
                self._outbox.append(event.text)
                self.chunks += 1
                self._wake.set()
                self._save_wake.set()
            elif isinstance(event, client.Attempt):
                self.attempts = event.number
                self.used = event.endpoint
                if self.attempts > 1:
                    await self._send({"type": "chat.status", "id": self.message_id, "status": "retrying"})
            elif isinstance(event, client.Usage):
                self.usage = event
            elif isinstance(event, client.Finish):
                self.finish = event
        return True

    # --- Live pushes, saves, heartbeat ----------------------------------------------------------

    async def _send(self, event: dict) -> None:
        if self.layer is None or self.group is None:
            return
        try:
            await self.layer.group_send(self.group, event)
        except Exception:  # live updates are best effort; the stored state is the truth
            log.warning("could not push to %s", self.group, exc_info=True)

    async def _pump(self) -> None:
        """Deltas out: the first at once; later ones merged while a push is in flight and for
        `push_interval()` after it, so neither a slow channel layer nor many simultaneous
        streams slow reading the upstream."""
        while True:
            if not self._outbox:
                if self._closing:
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            text, offset = "".join(self._outbox), self._outbox_offset
            self._outbox.clear()
            self._outbox_offset = offset + utf16_len(text)
            await self._send({"type": "chat.delta", "id": self.message_id, "o": offset, "x": text})
            batch_every = push_interval()
            if not self._closing and batch_every > 0:
                # At most one push per interval (cut short when the answer ends): the same
                # text at the endpoint's rate, in fewer messages.
                try:
                    await asyncio.wait_for(self._ended.wait(), timeout=batch_every)
                except asyncio.TimeoutError:
                    pass

    async def _saver(self) -> None:
        saved = 0
        while True:
            await self._save_wake.wait()
            self._save_wake.clear()
            if len(self.parts) != saved:
                first = saved == 0
                saved = len(self.parts)
                await db_call(answer_progress, message_id=self.message_id, content="".join(self.parts),
                              streaming=first)
            await asyncio.sleep(persist_interval())

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(settings.LLM_HEARTBEAT_SECONDS)
            await db_call(answer_progress, message_id=self.message_id)

    # --- The end ------------------------------------------------------------------------------

    async def _finish(self, pumping: asyncio.Future) -> None:
        """Every delta pushed, the final state stored, the page told."""
        try:
            await asyncio.wait_for(asyncio.shield(pumping), timeout=10)
        except Exception:
            pumping.cancel()
        detail, kind = self._error_detail()
        used = self.used
        try:
            await asyncio.shield(db_call(
                answer_finish, message_id=self.message_id, status=self.status, content="".join(self.parts),
                endpoint_key=used.key if used else self.endpoint_key, model_id=used.model if used else "",
                prompt_tokens=self.usage.prompt_tokens if self.usage else None,
                completion_tokens=self.usage.completion_tokens if self.usage else None,
                ttft_ms=self.ttft_ms, total_ms=int((time.monotonic() - self.began) * 1000), attempts=self.attempts,
                stream_chunks=self.chunks, error=detail, error_kind=kind,
                finish_reason=self.finish.reason if self.finish is not None else "",
            ))
        except Exception:
            log.exception("could not store the final state of answer %s", self.message_id)
        await self._send({"type": "chat.status", "id": self.message_id, "status": str(self.status)})

    def _error_detail(self) -> tuple[str, str]:
        finish = self.finish
        if self.error is not None:
            detail, kind = self.error.message, self.error.kind
        elif self.internal_error:
            detail, kind = "the gateway stopped while answering", "internal"
        elif finish is not None and finish.malformed_events:
            detail, kind = f"{finish.malformed_events} malformed event(s) from the endpoint were skipped", "malformed"
        else:
            detail, kind = "", ""
        if finish is not None and finish.reason == "length" and not detail:
            kind = "length"
        return detail, kind


# Pushes (channel layer round trips) and partial saves (UPDATEs) per second one server process
# aims to stay under, all its streams together.
PUSH_BUDGET_PER_SECOND = 100
SAVE_BUDGET_PER_SECOND = 40


def _paced(base: float, budget: float) -> float:
    """`base` seconds between two of a stream's pushes or saves, stretched so that the streams
    running in this process together stay near `budget` a second."""
    return max(base, running_count() / budget)


def push_interval() -> float:
    """Seconds between two pushes of one stream after its first: LLM_STREAM_BATCH_SECONDS, made
    longer when many streams run in this process so that together they stay near
    PUSH_BUDGET_PER_SECOND pushes (10 streams: 0.1 s; 50 streams: 0.5 s). Every push is a round
    trip through the channel layer and a websocket frame; under a burst of 50 simultaneous
    sends, 10 pushes a second per stream queued the first deltas of new answers behind the
    later deltas of others (the participant's first token came seconds after the server's). A
    stream's first delta is never delayed; the same text arrives in fewer, larger pieces."""
    base = settings.LLM_STREAM_BATCH_SECONDS
    if base <= 0:
        return 0.0
    return _paced(base, PUSH_BUDGET_PER_SECOND)


def persist_interval() -> float:
    """Seconds between two saves of a stream's partial text: LLM_PERSIST_INTERVAL, longer when
    many streams run in this process (40 streams: 1 s; 50: 1.25 s). Under a burst of 50 sends
    the partial saves were a tenth of the server's database time, taken from the next Sends; the
    final text is always saved whole, and a server that dies loses at most one interval of a
    partial answer, which is then shown as interrupted either way."""
    return _paced(settings.LLM_PERSIST_INTERVAL, SAVE_BUDGET_PER_SECOND)


# --- The generator's writes (run in the runner's database threads) -----------------------------


def answer_claim(*, message_id: int) -> bool:
    """Take the pending answer `message_id` for generation: False if it is not pending any more
    (another process took it, the sweeper ended it, the conversation was deleted)."""
    return bool(Message.objects.filter(pk=message_id, status=MessageStatus.PENDING).update(updated_at=timezone.now()))


def answer_progress(*, message_id: int, content: str | None = None, streaming: bool = False) -> None:
    """Persist partial text (and/or a heartbeat) while the answer streams."""
    fields: dict = {"updated_at": timezone.now()}
    if content is not None:
        fields["content"] = content
    if streaming:
        fields["status"] = MessageStatus.STREAMING
    Message.objects.filter(pk=message_id, status__in=ACTIVE).update(**fields)


def answer_finish(*, message_id: int, status: str, content: str, endpoint_key: str, model_id: str,
                  prompt_tokens: int | None, completion_tokens: int | None, ttft_ms: int | None,
                  total_ms: int | None, attempts: int, stream_chunks: int, error: str = "",
                  error_kind: str = "", finish_reason: str = "") -> bool:
    """Store the final state; False if the message was no longer active (e.g. swept)."""
    now = timezone.now()
    with transaction.atomic():
        updated = Message.objects.filter(pk=message_id, status__in=ACTIVE).update(
            status=status, content=content, endpoint_key=endpoint_key, model_id=model_id,
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, ttft_ms=ttft_ms,
            total_ms=total_ms, attempts=attempts, stream_chunks=stream_chunks, error=error[:500],
            error_kind=error_kind[:40], finish_reason=(finish_reason or "")[:20], completed_at=now, updated_at=now,
        )
        if updated:
            workshop_id = Message.objects.filter(pk=message_id).values_list("conversation__workshop_id", flat=True).first()
            broadcast(workshop_id, "interact", {"message": message_id, "status": status})
    return bool(updated)


# --- The generator's reads ---------------------------------------------------------------------


def _answer_to_generate(*, message_id: int) -> Message:
    return Message.objects.select_related("conversation__workshop").get(pk=message_id)


def _history(*, message: Message) -> list[dict]:
    from llm_gateway import services

    return services.history_for_model(message.conversation, upto_position=message.position)


def _conversation_of(*, message_id: int) -> int:
    return Message.objects.filter(pk=message_id).values_list("conversation_id", flat=True).get()
