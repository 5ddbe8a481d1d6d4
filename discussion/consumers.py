"""The live board socket: /ws/w/<slug>/board/, one Channels group per workshop (`board.<id>`).

The page loads the full state over HTTP (board_state); this socket carries changes. The
group's events reach the sockets through one receiver per board and process
(discussion/relay.py), not through each consumer's own channel. Clients
send small JSON commands; each is size-checked, rate-limited per connection (every frame) and
per member across all their sockets and processes (every command, counted in Redis through
llm_gateway.limits.hit), validated and handed to a service (which checks the member's rights
and the card caps, and broadcasts after commit). Refusals are answered to the sender only as
{"kind": "error", "payload": {"reason": ...}} and logged in one line; nothing is written for
them, and the socket stays open. Only an unexpected error logs a traceback.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DataError
from django.utils import translation

from discussion import commands, conf, events, relay, services
from discussion.events import BOARD_LAYER, board_group
from discussion.selectors import board_seq, card_data
from llm_gateway import limits
from workshops import i18n
from workshops.models import Membership
from workshops.consumers import has_unpaired_surrogate
from workshops.selectors import socket_membership
from workshops.services import membership_seen

log = logging.getLogger(__name__)


_membership = database_sync_to_async(socket_membership)


def _refusal(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(error.messages)
    return str(error)


def _run_acked(workshop_id: int, membership_id: int, channel_name: str, action: str, data: dict) -> dict:
    """Run one command; the reply (an "ack" if the command has none) carries the board's
    sequence number after it, so the sender learns of changes whose events it did not get:
    the number its own change took (no second read), else the board's current one. A later
    change by someone else shows in its own event or in the next heartbeat's answer."""
    with events.seq_taken() as taken:
        reply = _run(membership_id, channel_name, action, data) or {"kind": "ack"}
    reply["seq"] = max(taken) if taken else board_seq(workshop_id)
    return reply


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


def _run(membership_id: int, channel_name: str, action: str, data: dict) -> dict | None:
    """Run one command synchronously (in a worker thread). Returns a reply for the sender."""
    if action not in ("ping", "editing"):  # one budget per member across sockets and processes (presence is free)
        wait = limits.hit("board", membership_id, settings.DISCUSSION_MEMBER_RATE)
        if wait is not None:
            raise RateLimited(wait)
    # The workshop's session comes with it (services.session_get uses it): one round trip.
    membership = Membership.objects.select_related("workshop", "workshop__discussion").get(pk=membership_id)
    # What the command answers (errors included) is in the member's language.
    with translation.override(i18n.language_for(membership)):
        return _command(membership, channel_name, action, data)


def _command(membership: Membership, channel_name: str, action: str, data: dict) -> dict | None:
    if membership.is_withdrawn:
        raise services.NotAllowed("withdrawn")
    workshop = membership.workshop
    if action == "ping":  # the client's heartbeat: the board's sequence number tells it whether it missed events
        services.presence_touch(channel_name=channel_name)
        return {"kind": "pong"}
    if membership.is_participant:  # a command is activity (a heartbeat ping is not): the dashboard's "last active"
        membership_seen(membership=membership)
    if action == "editing":
        services.presence_editing(membership=membership, channel_name=channel_name, axis_id=data.get("id"))
        return None
    if action == "card.create":
        axis = services.axis_create(membership=membership, name=data.get("name"), definition=data.get("definition", ""),
                                    pick_id=data.get("pick"))
        # The reply carries the card as broadcast (its JSON and its HTML, rendered once).
        return {"kind": "created", "payload": {"id": axis.pk, "ref": data.get("ref"),
                                               "card": getattr(axis, "board_card", None) or card_data(axis),
                                               "html": getattr(axis, "board_html", None)}}
    if action == "card.update":
        axis = services.axis_update(membership=membership, axis_id=data.get("id"), name=data.get("name"),
                                    definition=data.get("definition", ""), version=data.get("version"))
        # The saved text comes back with the ack: the author's screen shows what was saved
        # even when the broadcast of the change does not arrive.
        return {"kind": "saved", "payload": {"id": axis.pk, "version": axis.version, "card": {
            "id": axis.pk, "name": axis.name, "definition": axis.definition, "version": axis.version,
            "edited_by": membership.pseudonym}, "html": axis.board_html}}
    if action == "card.comment":
        services.axis_comment(membership=membership, axis_id=data.get("id"), text=data.get("text"))
        return None
    if action == "card.merge":
        # A merge takes a card off the board: the client asks first (naming both cards) and says so.
        if data.get("confirm") is not True:
            raise ValidationError("confirm the merge first")
        services.axis_merge(membership=membership, axis_ids=data.get("ids"), into_id=data.get("into"))
        return {"kind": "merged", "payload": {"into": data.get("into")}}
    if action == "card.unmerge":
        restored = services.axis_unmerge(membership=membership, merge_event_id=data.get("event"))
        return {"kind": "unmerged", "payload": {"id": restored.pk}}
    if action == "card.split":
        services.axis_split(membership=membership, axis_id=data.get("id"), parts=data.get("parts"))
        return None
    if action == "card.remove":
        services.axis_archive(membership=membership, axis_id=data.get("id"))
        return None
    if action == "card.attach":
        services.axis_attach_label(membership=membership, axis_id=data.get("id"), key=str(data.get("key", ""))[:200])
        return None
    if action == "card.example":
        example = services.axis_add_example(membership=membership, axis_id=data.get("id"),
                                            annotation_id=data.get("annotation"), message_id=data.get("message"),
                                            excerpt=data.get("excerpt", ""), start=data.get("start"), end=data.get("end"))
        return {"kind": "example_added", "payload": {"id": example.axis_id, "example": example.pk}}
    if action == "vote":
        services.vote_set(membership=membership, axis_ids=data.get("ids"))
        return {"kind": "voted"}
    if action in commands.FACILITATOR:  # the services refuse anyone but a facilitator
        commands.run_facilitator(action, workshop=workshop, by=membership, data=data)
        return None
    raise ValidationError("unknown action")


class BoardConsumer(AsyncWebsocketConsumer):
    # No channel of its own (an alias that names no layer: Channels then gives the consumer
    # none). The board's events reach the socket through the relay, and nothing is ever sent
    # to one socket's channel; with the pub/sub layer each socket's channel had been a Redis
    # SUBSCRIBE at connect and an UNSUBSCRIBE at close (1,000 sockets, 1,000 subscriptions)
    # and a receive task per socket. `socket_key` names the socket's presence row instead.
    channel_layer_alias = None

    async def connect(self):
        self.socket_key = f"board-socket.{uuid.uuid4().hex}"
        self.membership = await _membership(self.scope.get("user"), self.scope["url_route"]["kwargs"]["slug"])
        if self.membership is None:
            await self.close(code=4403)
            return
        self.workshop_id = self.membership.workshop_id
        self.group = board_group(self.workshop_id)
        self.rate_count, self.rate_window = conf.socket_rate()
        self.max_frame = conf.socket_max_frame()
        self.stamps: list[float] = []
        self.quiet_until = 0.0  # a flood is logged once per window, not once per frame
        await relay.join(self, get_channel_layer(BOARD_LAYER), self.group)
        await self.accept()
        await self.send_json({"kind": "hello", "payload": {"me": self.membership.pseudonym, "role": self.membership.role}})
        await database_sync_to_async(services.presence_join)(membership=self.membership, channel_name=self.socket_key)

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await relay.leave(self, self.group)
            try:
                await database_sync_to_async(services.presence_leave)(workshop_id=self.workshop_id, channel_name=self.socket_key)
            except Exception:  # noqa: BLE001
                log.warning("presence cleanup failed", exc_info=True)

    async def send_json(self, content):
        await self.send(text_data=json.dumps(content, separators=(",", ":")))

    async def refuse(self, reason: str, ref=None, *, flood: float = 0.0, **extra):
        """Answer the sender with a refusal; log it in one line (a flood: once per `flood` seconds)."""
        now = time.monotonic()
        if not flood or now >= self.quiet_until:
            log.warning("board %s: refused %s from %s: %s", getattr(self, "workshop_id", "?"), extra.get("action", "?"),
                        getattr(getattr(self, "membership", None), "pseudonym", "?"), reason[:200])
            if flood:
                self.quiet_until = now + flood
        await self.send_json({"kind": "error", "payload": {"reason": reason, "ref": ref, **extra}})

    def _rate_ok(self) -> bool:
        now = time.monotonic()
        self.stamps = [t for t in self.stamps if now - t < self.rate_window]
        if len(self.stamps) >= self.rate_count:
            return False
        self.stamps.append(now)
        return True

    async def receive(self, text_data=None, bytes_data=None):
        if not self._rate_ok():  # every frame counts, whatever its content
            await self.refuse("rate limited: slow down", flood=self.rate_window)
            return
        if bytes_data is not None or text_data is None:
            await self.refuse("text frames only")
            return
        if len(text_data) > self.max_frame:
            await self.refuse("frame too large")
            return
        try:
            message = json.loads(text_data)
        except (ValueError, RecursionError):
            await self.refuse("malformed JSON")
            return
        if not isinstance(message, dict) or not isinstance(message.get("action"), str):
            await self.refuse("expected an object with an action")
            return
        data = message.get("data") or {}
        ref = message.get("ref")
        if not isinstance(data, dict):
            await self.refuse("data must be an object", ref)
            return
        if has_unpaired_surrogate(message):
            await self.refuse("invalid text: unpaired surrogate")
            return
        if "workshop" in message and str(message["workshop"]) != str(self.workshop_id):
            await self.refuse("wrong workshop", ref, action=message["action"])
            return
        action = message["action"][:40]
        try:
            reply = await database_sync_to_async(_run_acked)(self.workshop_id, self.membership.pk, self.socket_key, action, data)
        except services.Conflict as conflict:
            from discussion.selectors import card_data

            current = await database_sync_to_async(card_data)(conflict.axis)
            await self.send_json({"kind": "conflict", "payload": {"ref": ref, "current": current, "yours": conflict.attempted}})
            return
        except ValidationError as error:
            await self.refuse(_refusal(error), ref, action=action)
            return
        except RateLimited as limited:
            await self.refuse(f"Too many changes at once: wait {limited.retry_after} s and try again.", ref,
                              flood=limited.retry_after, action=action, retry_after=limited.retry_after)
            return
        except Membership.DoesNotExist:
            await self.close(code=4403)
            return
        except (TypeError, ValueError, DataError) as error:  # a value of the wrong kind or out of range
            await self.refuse(f"invalid value ({error.__class__.__name__})", ref, action=action)
            return
        except Exception:  # a bug: keep the socket, tell the sender, log the traceback once
            log.exception("board %s: %s from %s failed", self.workshop_id, action, self.membership.pseudonym)
            await self.send_json({"kind": "error", "payload": {"reason": "server error", "ref": ref, "action": action}})
            return
        if reply is not None:
            reply.setdefault("payload", {})["ref"] = ref
            await self.send_json(reply)
