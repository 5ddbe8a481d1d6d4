"""The chat page never shows stale state: an answer cut off at the length limit says so (from
the stream's finish_reason), the heading follows the first message, titles are cut at a word
boundary, and the chat socket answers the client's heartbeat."""

from __future__ import annotations

import csv
import io

import pytest
from channels.routing import URLRouter

from llm_gateway import services
from llm_gateway.models import MessageStatus
from llm_gateway.routing import websocket_urlpatterns
from channels.testing import WebsocketCommunicator
from workshops.text import shorten

from .conftest import answers

pytestmark = pytest.mark.django_db(transaction=True)


def test_answer_cut_off_at_the_length_limit_is_stored_and_shown(chat_setup, client_for, fault_upstream):
    workshop, participant, conversation = chat_setup("fault:ok:20:cut")
    services.gateway_settings_update(workshop=workshop, token_budget=None, max_answer_tokens=5)
    services.message_send(conversation=conversation, membership=participant, text="Tell me about the Mughals")
    answer = answers(conversation)[-1]
    assert fault_upstream.requests[-1]["max_tokens"] == 5
    assert answer.status == MessageStatus.COMPLETE
    assert answer.finish_reason == "length" and answer.cut_off
    assert answer.content == "The Mughal Empire was founded"
    page = client_for(participant).get(f"/w/{workshop.slug}/interact/c/{conversation.id}/").content.decode()
    assert "Cut off at the length limit" in page
    assert f'id="m-{answer.id}"' in page and 'data-finish="length"' in page
    # The export says why each answer ended.
    export = client_for(workshop.memberships.get(role="facilitator")).get(f"/w/{workshop.slug}/interact/export/messages.csv")
    # Streamed page by page (workshops.exports.stream_download: in batches under ASGI).
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert [r["finish_reason"] for r in rows if r["speaker"] == "assistant"] == ["length"]


def test_answer_that_ends_by_itself_is_not_marked_cut_off(chat_setup, client_for):
    workshop, participant, conversation = chat_setup("fault:ok:6:whole")
    services.message_send(conversation=conversation, membership=participant, text="Hello")
    answer = answers(conversation)[-1]
    assert answer.finish_reason == "stop" and not answer.cut_off
    page = client_for(participant).get(f"/w/{workshop.slug}/interact/c/{conversation.id}/").content.decode()
    assert "Cut off at the length limit" not in page


def test_heading_follows_the_first_message_and_long_titles_end_at_a_word(chat_setup, client_for, monkeypatch):
    monkeypatch.setattr("llm_gateway.runner.start", lambda message_id, **kw: None)
    workshop, participant, conversation = chat_setup("fault:ok")
    c = client_for(participant)
    page = c.get(f"/w/{workshop.slug}/interact/c/{conversation.id}/").content.decode()
    assert 'id="chat-title"' in page and "New conversation" in page
    text = ("Why did the British East India Company become so powerful in Bengal after the battle of Plassey "
            "in 1757, and what did it mean for ordinary people?")
    response = c.post(f"/w/{workshop.slug}/interact/c/{conversation.id}/send/", {"text": text}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    conversation.refresh_from_db()
    # The title ends at a whole word, with an ellipsis, within the limit.
    assert conversation.title == ("Why did the British East India Company become so powerful in Bengal after the…")
    assert len(conversation.title) <= services.TITLE_MAX
    # The send response replaces the heading in place (htmx out-of-band swap): no "New conversation".
    assert '<h1 class="user-text" id="chat-title" hx-swap-oob="true">' in html
    assert conversation.title in html and "New conversation" not in html


@pytest.mark.parametrize("text, limit, expected", [
    ("short title", 80, "short title"),
    ("  spaces\n  inside   a title ", 80, "spaces inside a title"),
    ("one two three four", 12, "one two…"),
    ("one two three four", 14, "one two three…"),   # the cut falls right after a word
    ("Supercalifragilisticexpialidocious", 10, "Supercali…"),  # one long word: cut at the limit
    ("हिन्दी में एक लंबा प्रश्न जो कटता है", 16, "हिन्दी में एक…"),
    ("明治維新は日本の近代化にどのような影響を与えましたか", 10, "明治維新は日本の近…"),
    ("ends with punctuation, then more words", 24, "ends with punctuation…"),
])
def test_shorten_cuts_at_a_word_boundary(text, limit, expected):
    result = shorten(text, limit)
    assert result == expected
    assert len(result) <= limit


async def test_chat_socket_answers_the_heartbeat(chat_setup):
    from channels.db import database_sync_to_async

    workshop, participant, conversation = await database_sync_to_async(chat_setup)("fault:ok")
    user = await database_sync_to_async(lambda: participant.user)()
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/w/{workshop.slug}/chat/{conversation.id}/")
    comm.scope["user"] = user
    connected, _code = await comm.connect(timeout=5)
    assert connected
    assert (await comm.receive_json_from(timeout=5)) == {"t": "hello"}
    await comm.send_json_to({"t": "ping"})
    assert (await comm.receive_json_from(timeout=5)) == {"t": "pong"}
    await comm.disconnect()


def test_migration_backfills_cut_off_answers_and_mid_word_titles():
    """The data step of 0004: old cut-off answers (error_kind "length") get finish_reason, and
    titles cut mid-word at 80 characters are cut at a word boundary instead."""
    import importlib

    from django.apps import apps

    from llm_gateway.models import Message
    from tests.factories import make_conversation, make_participant, make_workshop

    member = make_participant(make_workshop(stage="interact"))
    question = ("What did the Mughal emperors do for the arts and architecture of northern India in the "
                "sixteenth and seventeenth centuries?")
    conversation = make_conversation(member, turns=[(question, "Many things.")])
    conversation.title = question[:80]
    conversation.save()
    short = make_conversation(member, turns=[("Who was Akbar?", "An emperor.")])
    short.title = "Who was Akbar?"
    short.save()
    answer = conversation.messages.get(role="assistant")
    Message.objects.filter(pk=answer.pk).update(error_kind="length", finish_reason="")
    migration = importlib.import_module("llm_gateway.migrations.0004_message_finish_reason")
    migration.backfill(apps, None)
    conversation.refresh_from_db()
    short.refresh_from_db()
    answer.refresh_from_db()
    assert answer.finish_reason == "length"
    assert conversation.title == "What did the Mughal emperors do for the arts and architecture of northern India…"
    assert short.title == "Who was Akbar?"


async def test_deltas_reach_the_socket_without_a_trip_through_the_shared_sync_thread(chat_setup, monkeypatch):
    """A chat delta or status only forwards text: Channels' close_old_connections before each
    handler (a hop through the process's one shared sync thread, per delta per socket) is
    skipped for them; other messages still get it."""
    from channels import consumer as channels_consumer
    from channels.db import database_sync_to_async
    from channels.layers import get_channel_layer

    from llm_gateway.runner import CHAT_LAYER, chat_group

    workshop, participant, conversation = await database_sync_to_async(chat_setup)("fault:ok")
    user = await database_sync_to_async(lambda: participant.user)()
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/w/{workshop.slug}/chat/{conversation.id}/")
    comm.scope["user"] = user
    assert (await comm.connect(timeout=5))[0]
    assert (await comm.receive_json_from(timeout=5)) == {"t": "hello"}
    hops = []
    original = channels_consumer.aclose_old_connections

    async def counted():
        hops.append(1)
        await original()

    monkeypatch.setattr(channels_consumer, "aclose_old_connections", counted)
    layer = get_channel_layer(CHAT_LAYER)
    await layer.group_send(chat_group(conversation.id), {"type": "chat.delta", "id": 1, "o": 0, "x": "नमस्ते"})
    await layer.group_send(chat_group(conversation.id), {"type": "chat.status", "id": 1, "status": "complete"})
    assert (await comm.receive_json_from(timeout=5)) == {"t": "d", "id": 1, "o": 0, "x": "नमस्ते"}
    assert (await comm.receive_json_from(timeout=5)) == {"t": "s", "id": 1, "status": "complete"}
    assert hops == []
    await comm.send_json_to({"t": "ping"})  # a client frame is dispatched the usual way
    assert (await comm.receive_json_from(timeout=5)) == {"t": "pong"}
    assert hops == [1]
    await comm.disconnect()


async def test_the_chat_layer_keeps_listening_after_the_last_socket_of_its_process_closes(chat_setup):
    """channels_redis's pub/sub receiver checks back only every 0.1 s while its process holds
    no subscription, so the first delta of the next chat opened would wait up to 100 ms: the
    first chat socket leaves one subscription behind for the life of the loop."""
    from channels.db import database_sync_to_async
    from channels.layers import get_channel_layer

    from llm_gateway.runner import CHAT_LAYER

    workshop, participant, conversation = await database_sync_to_async(chat_setup)("fault:ok")
    user = await database_sync_to_async(lambda: participant.user)()
    for _ in range(2):
        comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/w/{workshop.slug}/chat/{conversation.id}/")
        comm.scope["user"] = user
        assert (await comm.connect(timeout=5))[0]
        assert (await comm.receive_json_from(timeout=5)) == {"t": "hello"}
        await comm.disconnect()
    layer = get_channel_layer(CHAT_LAYER)
    loop_layer = layer._get_layer()  # the Redis pub/sub layer of this event loop
    assert len([name for name in loop_layer.channels if ".awake." in name]) == 1
