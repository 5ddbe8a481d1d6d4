"""The chat's socket: members who may read a conversation receive its answer deltas live, and
its owner may press Send over it.

The page renders the stored state over HTTP; this socket carries changes:
{"t": "d", "id": message id, "o": offset (UTF-16 units), "x": text} for a delta and
{"t": "s", "id": message id, "status": ...} when an answer changes state.

Send over the socket: the client sends {"t": "send", "ref": n, "text": ...} and gets back
{"t": "sent", "ref": n, "html": the same fragment the HTTP Send returns} or {"t": "refused",
"ref": n, "error": the reason in words}. It is the HTTP Send (`views.message_send`) without the
HTTP request: the same rule for who may write (`page_refusal`, `views.can_write`), the same
validation and store (`views.send`) and the same fragment. What it saves is the request's fixed
cost (session, user, CSRF and the middleware chain), which was most of the participant's time to
the first token and what a burst of fifty Sends queued behind (benchmarks.gateway_overhead,
gateway_concurrency). Anything this path does not handle (a compare conversation, whose Send
redraws the whole thread; a member the pages would refuse, whose page says why) is answered
{"t": "http", "ref": n}: the client sends the same form over HTTP instead.
"""

from __future__ import annotations

import asyncio
import weakref

from channels.db import database_sync_to_async
from django.template.loader import render_to_string
from django.utils import translation

from llm_gateway import selectors, views
from llm_gateway.runner import CHAT_LAYER, chat_group
from workshops import i18n
from workshops.consumers import OneWayJsonConsumer, has_unpaired_surrogate
from workshops.models import Membership
from workshops.permissions import page_refusal
from workshops.services import membership_seen


@database_sync_to_async
def _reader(user, slug, conversation_id) -> int | None:
    """The membership (id) through which the user may read the conversation, or None."""
    if not user or not user.is_authenticated:
        return None
    membership = Membership.objects.active().select_related("workshop").filter(workshop__slug=slug, user=user).first()
    if membership is None or selectors.readable_conversation(membership, conversation_id) is None:
        return None
    return membership.pk


def _send(membership_id: int, conversation_id: int, text: str) -> dict:
    """One Send over the socket, in a worker thread (see the module's docstring)."""
    # The conversation and its owner in one query: only the owner writes to a conversation.
    conversation = selectors.owned_conversation(membership_id, conversation_id)
    membership = conversation.owner if conversation is not None else None
    if membership is None or page_refusal(membership, stages=views.CHAT_STAGES) is not None:
        return {"t": "http"}
    workshop = membership.workshop
    with translation.override(i18n.language_for(membership, workshop)):
        if not views.can_write(membership, conversation) or conversation.is_compare:
            return {"t": "http"}
        if membership.is_participant:  # a Send is activity, as a POST is (permissions.record_activity)
            membership_seen(membership=membership)
        sent, previous, error = views.send(membership, conversation, {"text": text})
        if error:
            return {"t": "refused", "error": error}
        context = views.sent_context(workshop, membership, conversation, sent, previous)
        # No request to render with: the fragment holds no form (the new answer's "ask again"
        # appears when it ends, drawn by the page's own request for the finished message).
        return {"t": "sent", "html": render_to_string("llm_gateway/conversation.html#sent", context)}


# Not in the process's one thread for sync code (thread-sensitive): fifty Sends at once overlap
# their database round trips in the loop's executor instead of queueing one behind another. Through
# asgiref still (not runner.db_call's pool): it records the server's loop in the thread, so the
# answer's generation starts on that loop at commit instead of running inside the Send.
_send_async = database_sync_to_async(_send, thread_sensitive=False)


# channels_redis's pub/sub receiver, while its process has no subscription at all, checks back
# every 0.1 s (`asyncio.sleep(0.1)` in `_do_receiving`), and a chat socket is often the only one
# of its process: the first delta of a newly opened chat waited up to 100 ms (gateway_overhead:
# +60 ms at the median for the HTTP Send, +85 ms at p95 for the socket's). One subscription per
# event loop that nothing is ever sent to keeps the receiver reading.
_awake: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def _keep_receiver_awake(layer) -> None:
    loop = asyncio.get_running_loop()
    if loop in _awake:
        return
    _awake[loop] = None  # taken, even while two sockets connect at once
    try:
        _awake[loop] = await layer.new_channel(prefix="awake.")
    except Exception:  # Redis unreachable: the socket is refused, the next one tries again
        _awake.pop(loop, None)
        raise


class ChatConsumer(OneWayJsonConsumer):
    channel_layer_alias = CHAT_LAYER
    relayed = frozenset({"chat.delta", "chat.status"})

    async def connect(self):
        kwargs = self.scope["url_route"]["kwargs"]
        self.membership_id = await _reader(self.scope.get("user"), kwargs["slug"], kwargs["conversation_id"])
        if self.membership_id is None:
            await self.close(code=4403)
            return
        self.conversation_id = kwargs["conversation_id"]
        self.group = chat_group(self.conversation_id)
        await _keep_receiver_awake(self.channel_layer)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"t": "hello"})

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        # The client's heartbeat (a silent connection is a dead one: static/js/live.js reopens
        # it and catches up), and Send.
        if not isinstance(content, dict):
            return
        if content.get("t") == "ping":
            await self.send_json({"t": "pong"})
        elif content.get("t") == "send":
            await self.send_json(await self._send(content))

    async def _send(self, content: dict) -> dict:
        ref, text = content.get("ref"), content.get("text")
        if not isinstance(ref, int) or isinstance(ref, bool) or not isinstance(text, str):
            return {"t": "refused", "ref": ref if isinstance(ref, int) else None, "error": "bad frame"}
        if has_unpaired_surrogate(text):  # cannot be stored: the form over HTTP decodes it to U+FFFD
            return {"t": "http", "ref": ref}
        reply = await _send_async(self.membership_id, self.conversation_id, text)
        return {**reply, "ref": ref}

    async def chat_delta(self, event):
        await self.send_json({"t": "d", "id": event["id"], "o": event["o"], "x": event["x"]})

    async def chat_status(self, event):
        await self.send_json({"t": "s", "id": event["id"], "status": event["status"]})
