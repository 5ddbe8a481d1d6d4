"""The chat stream: members who may read a conversation receive its answer deltas live.

The page renders the stored state over HTTP; this socket only carries changes:
{"t": "d", "id": message id, "o": offset (UTF-16 units), "x": text} for a delta and
{"t": "s", "id": message id, "status": ...} when an answer changes state.
"""

from __future__ import annotations

from channels.db import database_sync_to_async

from llm_gateway import selectors
from llm_gateway.runner import chat_group
from workshops.consumers import OneWayJsonConsumer


@database_sync_to_async
def _can_read(user, slug, conversation_id) -> bool:
    if not user or not user.is_authenticated:
        return False
    return selectors.readable_conversation_for_user(user, slug, conversation_id) is not None


class ChatConsumer(OneWayJsonConsumer):
    relayed = frozenset({"chat.delta", "chat.status"})

    async def connect(self):
        kwargs = self.scope["url_route"]["kwargs"]
        if not await _can_read(self.scope.get("user"), kwargs["slug"], kwargs["conversation_id"]):
            await self.close(code=4403)
            return
        self.group = chat_group(kwargs["conversation_id"])
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"t": "hello"})

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        # Messages are sent over HTTP; the only frame is the client's heartbeat (a silent
        # connection is a dead one: static/js/live.js reopens it and catches up).
        if isinstance(content, dict) and content.get("t") == "ping":
            await self.send_json({"t": "pong"})

    async def chat_delta(self, event):
        await self.send_json({"t": "d", "id": event["id"], "o": event["o"], "x": event["x"]})

    async def chat_status(self, event):
        await self.send_json({"t": "s", "id": event["id"], "status": event["status"]})
