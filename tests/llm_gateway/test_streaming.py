"""Live streaming: deltas reach the conversation's group and its websocket; the real local
llama.cpp server streams multi-turn answers through the same code path as a hosted endpoint."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.routing import URLRouter
import json

from asgiref.testing import ApplicationCommunicator

from llm_gateway import services
from llm_gateway.models import MessageStatus
from llm_gateway.routing import websocket_urlpatterns
from llm_gateway.runner import CHAT_LAYER, chat_group, utf16_len
from tests.factories import make_participant

from .conftest import answers

pytestmark = pytest.mark.django_db(transaction=True)


def _send_and_collect(conversation, participant, text):
    """Send from a worker thread (which generates in place) while this thread listens to the
    conversation's group on the chat layer. Subscribing, sending and draining happen in one
    event loop: the layer is Redis pub/sub, which keeps nothing for a subscriber that is gone."""
    import asyncio
    import threading

    from django.db import connection

    layer = get_channel_layer(CHAT_LAYER)
    errors = []

    def worker():
        try:
            services.message_send(conversation=conversation, membership=participant, text=text)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    async def listen():
        channel = await layer.new_channel()
        await layer.group_add(chat_group(conversation.id), channel)
        thread = threading.Thread(target=worker)
        thread.start()
        events = []
        while True:
            event = await asyncio.wait_for(layer.receive(channel), timeout=300)
            events.append(event)
            if event["type"] == "chat.status" and event["status"] != "retrying":
                break
        await asyncio.get_running_loop().run_in_executor(None, thread.join, 300)
        await layer.group_discard(chat_group(conversation.id), channel)
        return events

    events = async_to_sync(listen)()
    assert not errors, errors
    return events


def test_deltas_are_pushed_with_offsets_that_rebuild_the_answer(chat_setup):
    _w, participant, conversation = chat_setup("fault:ok:12:deltas")
    events = _send_and_collect(conversation, participant, "Hi")
    answer = answers(conversation)[-1]
    deltas = [e for e in events if e["type"] == "chat.delta"]
    # Deltas may be merged while a send is in flight; together they are the answer, in order.
    assert 1 <= len(deltas) <= 12 and all(e["id"] == answer.id for e in deltas)
    assert answer.stream_chunks == 12
    rebuilt = ""
    for e in deltas:
        assert e["o"] == utf16_len(rebuilt)  # offsets are contiguous, in browser (UTF-16) units
        rebuilt += e["x"]
    assert rebuilt == answer.content
    assert events[-1] == {"type": "chat.status", "id": answer.id, "status": "complete"}


def test_offsets_count_utf16_units():
    assert utf16_len("ab") == 2 and utf16_len("इतिहास") == 6 and utf16_len("😀") == 2


async def test_chat_socket_forwards_to_owner_and_refuses_others(chat_setup):
    from channels.db import database_sync_to_async

    workshop, participant, conversation = await database_sync_to_async(chat_setup)("fault:ok")
    other = await database_sync_to_async(make_participant)(workshop)
    app = URLRouter(websocket_urlpatterns)
    path = f"/ws/w/{workshop.slug}/chat/{conversation.id}/"

    # channels.testing needs daphne (not installed): drive the consumer with asgiref directly.
    async def connect(user):
        comm = ApplicationCommunicator(app, {"type": "websocket", "path": path, "headers": [], "subprotocols": [],
                                             "query_string": b"", "user": user})
        await comm.send_input({"type": "websocket.connect"})
        return comm, await comm.receive_output(timeout=5)

    _intruder, reply = await connect(other.user)
    assert reply == {"type": "websocket.close", "code": 4403, "reason": ""} or reply.get("code") == 4403

    owner, reply = await connect(participant.user)
    assert reply["type"] == "websocket.accept"
    hello = await owner.receive_output(timeout=5)
    assert json.loads(hello["text"]) == {"t": "hello"}
    await get_channel_layer(CHAT_LAYER).group_send(chat_group(conversation.id), {"type": "chat.delta", "id": 7, "o": 0, "x": "Hi"})
    delta = await owner.receive_output(timeout=5)
    assert json.loads(delta["text"]) == {"t": "d", "id": 7, "o": 0, "x": "Hi"}
    await owner.send_input({"type": "websocket.disconnect", "code": 1000})
    await owner.wait(timeout=5)


@pytest.mark.llm
def test_llama_cpp_streams_multi_turn_answers(chat_setup, llama_server):
    endpoints = [{"key": "local-smollm2", "name": "SmolLM2 135M (local llama.cpp)", "base_url": llama_server,
                  "model": "smollm2-135m-instruct", "provider": "llamacpp", "max_tokens": 24,
                  "params": {"temperature": 0, "seed": 1}}]
    workshop, participant, conversation = chat_setup(endpoints=endpoints)
    events = _send_and_collect(conversation, participant, "Who built the Taj Mahal?")
    first = answers(conversation)[-1]
    assert first.status == MessageStatus.COMPLETE, first.error
    deltas = [e["x"] for e in events if e["type"] == "chat.delta"]
    assert deltas and "".join(deltas) == first.content and first.content.strip()
    assert first.stream_chunks > 1 and first.ttft_ms is not None and first.total_ms >= first.ttft_ms
    assert first.model_id == "smollm2-135m-instruct" and first.endpoint_key == "local-smollm2"
    # llama-cpp-python does not report usage in streams: recorded as unknown, never invented.
    assert first.prompt_tokens is None and first.completion_tokens is None

    services.message_send(conversation=conversation, membership=participant, text="When was it finished?")
    second = answers(conversation)[-1]
    assert second.status == MessageStatus.COMPLETE and second.content.strip()
    history = services.history_for_model(conversation, upto_position=second.position)
    assert [m["role"] for m in history] == ["system", "user", "assistant", "user"]
    assert history[2]["content"] == first.content


def test_many_streams_in_a_process_push_and_save_less_often(settings, monkeypatch):
    """One stream pushes and saves at the configured pace; fifty at once (a facilitator's "now
    send your first question") are paced to a budget for the whole process, so their partial
    saves do not crowd out the next Sends' queries. The first push and save are never delayed."""
    from llm_gateway import generation

    settings.LLM_STREAM_BATCH_SECONDS = 0.1
    settings.LLM_PERSIST_INTERVAL = 0.5
    monkeypatch.setattr(generation, "running_count", lambda: 1)
    assert (generation.push_interval(), generation.persist_interval()) == (0.1, 0.5)
    monkeypatch.setattr(generation, "running_count", lambda: 50)
    assert generation.push_interval() == 50 / generation.PUSH_BUDGET_PER_SECOND == 0.5
    assert generation.persist_interval() == 50 / generation.SAVE_BUDGET_PER_SECOND == 1.25
