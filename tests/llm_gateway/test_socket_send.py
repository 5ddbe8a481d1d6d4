"""Send over the conversation's socket (llm_gateway/consumers.py): the HTTP Send without the
request. The same people may send, the same text is stored and refused, the same fragment comes
back, the answer streams on the same socket; anything it does not handle is handed back to HTTP."""

from __future__ import annotations


import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from llm_gateway import runner
from llm_gateway.models import Message, MessageStatus
from llm_gateway.routing import websocket_urlpatterns
from tests.factories import make_member
from workshops import services as workshop_services
from workshops.models import Role

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)> हिंदी में सवाल'


@pytest.fixture(autouse=True)
def _fresh_layers():
    channel_layers.backends.clear()  # channels_redis binds to the event loop of the test
    yield
    channel_layers.backends.clear()


async def _open(workshop, conversation, user):
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/w/{workshop.slug}/chat/{conversation.id}/")
    comm.scope["user"] = user
    connected, _ = await comm.connect(timeout=10)
    assert connected
    assert await comm.receive_json_from(timeout=10) == {"t": "hello"}
    return comm


async def _reply(comm, ref):
    """The answer to Send `ref`, skipping the deltas and status frames around it."""
    for _ in range(200):
        frame = await comm.receive_json_from(timeout=20)
        if frame.get("ref") == ref:
            return frame
    raise AssertionError("no answer to the Send")


def _stored(conversation):
    return list(Message.objects.filter(conversation=conversation).order_by("position").values_list("role", "content"))


async def test_a_send_over_the_socket_stores_returns_the_fragment_and_streams_the_answer(chat_setup):
    workshop, participant, conversation = await database_sync_to_async(chat_setup)("fault:ok")
    comm = await _open(workshop, conversation, participant.user)

    await comm.send_json_to({"t": "send", "ref": 1, "text": HOSTILE})
    reply = await _reply(comm, 1)
    assert reply["t"] == "sent", reply
    # The HTTP Send's fragment: the message as text (escaped, never markup), the pending answer.
    assert "<script>" not in reply["html"] and "&lt;script&gt;" in reply["html"]
    assert 'data-sent="1"' in reply["html"] and "हिंदी में सवाल" in reply["html"]
    assert "csrfmiddlewaretoken" not in reply["html"]  # rendered without a request: no form in it
    question, answer = await database_sync_to_async(
        lambda: list(Message.objects.filter(conversation=conversation).order_by("position")))()
    assert question.content == HOSTILE and answer.role == "assistant"
    assert f'id="m-{answer.id}"' in reply["html"]

    # The answer streams on the same socket and ends complete.
    text, status = "", None
    while status is None:
        frame = await comm.receive_json_from(timeout=20)
        if frame["t"] == "d" and frame["id"] == answer.id:
            text = text[:frame["o"]] + frame["x"]
        elif frame["t"] == "s" and frame["id"] == answer.id and frame["status"] != "retrying":
            status = frame["status"]
    await runner.wait_all()
    await database_sync_to_async(answer.refresh_from_db)()
    assert status == MessageStatus.COMPLETE and answer.content and text == answer.content
    await comm.disconnect()


async def test_the_send_is_answered_before_the_answer_is_generated(chat_setup):
    """The Send's reply comes at once; the answer streams afterwards on the server's loop (a
    Send run where no loop is known generated the whole answer inside it: under a burst every
    thread held a Send waiting for a generation that needed a thread, and nothing moved)."""
    workshop, participant, conversation = await database_sync_to_async(chat_setup)("fault:slow:30:60")
    comm = await _open(workshop, conversation, participant.user)
    await comm.send_json_to({"t": "send", "ref": 1, "text": "a slow answer, please"})
    seen = []
    while True:
        frame = await comm.receive_json_from(timeout=20)
        if frame.get("ref") == 1:
            break
        seen.append(frame)
    assert frame["t"] == "sent" and not [f for f in seen if f["t"] == "s"], seen
    answer = await database_sync_to_async(
        lambda: Message.objects.get(conversation=conversation, role="assistant"))()
    assert answer.status in (MessageStatus.PENDING, MessageStatus.STREAMING)
    while not (frame["t"] == "s" and frame["status"] != "retrying"):
        frame = await comm.receive_json_from(timeout=20)
    assert frame["status"] == MessageStatus.COMPLETE
    await runner.wait_all()
    await comm.disconnect()


async def test_refusals_are_the_http_sends_and_store_nothing(chat_setup, settings):
    workshop, participant, conversation = await database_sync_to_async(chat_setup)("fault:ok")
    comm = await _open(workshop, conversation, participant.user)

    await comm.send_json_to({"t": "send", "ref": 1, "text": "   "})
    assert await _reply(comm, 1) == {"t": "refused", "ref": 1, "error": "Write a message first."}
    settings.CHAT_MESSAGE_MAX_CHARS = 100
    await comm.send_json_to({"t": "send", "ref": 2, "text": "x" * 1_000_000})
    reply = await _reply(comm, 2)
    assert reply["t"] == "refused" and "limit is 100" in reply["error"]
    for ref, frame in ((3, {"t": "send", "ref": 3, "text": ["not", "text"]}),
                       (None, {"t": "send", "ref": "3", "text": "hello"})):
        await comm.send_json_to(frame)
        assert (await _reply(comm, ref))["t"] == "refused"
    # A lone surrogate cannot be stored; the form over HTTP decodes it as U+FFFD.
    await comm.send_json_to({"t": "send", "ref": 4, "text": "bad \ud800 half"})
    assert await _reply(comm, 4) == {"t": "http", "ref": 4}
    assert await database_sync_to_async(_stored)(conversation) == []
    await comm.disconnect()


async def test_who_may_no_longer_send_is_handed_to_http(chat_setup):
    """Rights are read at every Send, not at connect: a participant withdrawn, or the workshop
    moved on, after the socket opened is sent to HTTP, whose page says why; nothing is stored."""
    workshop, participant, conversation = await database_sync_to_async(chat_setup)("fault:ok")
    comm = await _open(workshop, conversation, participant.user)
    await database_sync_to_async(lambda: workshop_services.workshop_set_stage(
        workshop=workshop, stage="discuss", by=workshop.created_by))()
    await comm.send_json_to({"t": "send", "ref": 1, "text": "after the stage closed"})
    assert await _reply(comm, 1) == {"t": "http", "ref": 1}

    await database_sync_to_async(lambda: workshop_services.workshop_set_stage(
        workshop=workshop, stage="interact", by=workshop.created_by))()
    await database_sync_to_async(workshop_services.membership_withdraw)(membership=participant)
    await comm.send_json_to({"t": "send", "ref": 2, "text": "after withdrawing"})
    assert await _reply(comm, 2) == {"t": "http", "ref": 2}
    assert await database_sync_to_async(_stored)(conversation) == []
    await comm.disconnect()

    # A facilitator may read the conversation but not write to it.
    workshop, participant, conversation = await database_sync_to_async(chat_setup)("fault:ok")
    facilitator = await database_sync_to_async(make_member)(workshop, role=Role.FACILITATOR)
    comm = await _open(workshop, conversation, facilitator.user)
    await comm.send_json_to({"t": "send", "ref": 1, "text": "not mine"})
    assert await _reply(comm, 1) == {"t": "http", "ref": 1}
    assert await database_sync_to_async(_stored)(conversation) == []
    await comm.disconnect()
