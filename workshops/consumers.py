"""The workshop event stream: members receive change notifications for their workshop."""

from __future__ import annotations

import json
import logging
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.consumer import get_handler_name

from workshops.events import group_name
from workshops.selectors import socket_membership, workshop_stage

_membership = database_sync_to_async(socket_membership)
_stage = database_sync_to_async(workshop_stage)

# The heartbeat is answered at most this often per connection (each answer reads the stage).
PONG_EVERY = 2.0

log = logging.getLogger(__name__)


def has_unpaired_surrogate(value) -> bool:
    """Whether any string in a decoded JSON value holds a lone surrogate ("\\ud800" escapes
    decode to text that cannot be stored or sent as UTF-8). Iterative: no recursion limit."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class OneWayJsonConsumer(AsyncJsonWebsocketConsumer):
    """A server-to-client JSON stream (workshop events, chat deltas): what clients send is not
    used. A frame that is not JSON text (binary, malformed, too deep) is dropped and logged in
    one line, once per connection, instead of raising (a traceback per frame, socket lost).

    `relayed`: the group message types whose handlers only forward to the socket. Channels runs
    `close_old_connections` before every handler, through the ONE shared sync thread of the
    process (thread-sensitive); for these it is skipped. Otherwise every chat delta and every
    workshop event, once per receiving socket, queued a thread hop behind the socket handshakes'
    and board commands' database calls (under a burst of 50 Sends, hundreds a second)."""

    relayed: frozenset[str] = frozenset()

    async def dispatch(self, message):
        if message.get("type") in self.relayed:
            await getattr(self, get_handler_name(message))(message)
            return
        await super().dispatch(message)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            if text_data is None:
                raise ValueError("binary frame")
            content = json.loads(text_data)
        except (ValueError, RecursionError) as error:
            if not getattr(self, "_garbage_logged", False):
                self._garbage_logged = True
                log.warning("%s: dropped a frame that is not JSON text (%s); further ones not logged",
                            self.__class__.__name__, str(error)[:80])
            return
        await self.receive_json(content, **kwargs)


class WorkshopEventsConsumer(OneWayJsonConsumer):
    relayed = frozenset({"workshop.event"})

    async def connect(self):
        membership = await _membership(self.scope.get("user"), self.scope["url_route"]["kwargs"]["slug"])
        if membership is None:
            await self.close(code=4403)
            return
        self.workshop_id = membership.workshop_id
        self.group = group_name(membership.workshop_id)
        self.role = membership.role
        self.last_pong = 0.0
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        # The current stage on every (re)connect: a page that missed a stage change follows it.
        await self.send_json({"kind": "hello", "payload": {"role": self.role, "stage": membership.workshop.stage}})

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        # Clients change things over HTTP; the only message is the heartbeat, answered with the
        # current stage (read from the database, so it holds even if a broadcast was lost).
        if not isinstance(content, dict) or content.get("action") != "ping":
            return
        now = time.monotonic()
        if now - self.last_pong < PONG_EVERY:
            return
        self.last_pong = now
        await self.send_json({"kind": "pong", "payload": {"stage": await _stage(self.workshop_id)}})

    async def decode_json(self, text_data):
        try:
            return await super().decode_json(text_data)
        except ValueError:
            return None

    async def workshop_event(self, event):
        await self.send_json({"kind": event["kind"], "payload": event.get("payload", {})})
