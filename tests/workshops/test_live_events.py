"""The workshop event stream tells every page the current stage on connect and on each
heartbeat, from the database: a page that missed the "stage" broadcast (Redis down, a
laptop asleep) still follows the change."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter

from channels.testing import WebsocketCommunicator
from tests.factories import make_participant, make_workshop
from workshops.models import Stage, Workshop
from workshops.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)


async def _connect(workshop, user):
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/w/{workshop.slug}/events/")
    comm.scope["user"] = user
    connected, _code = await comm.connect(timeout=5)
    assert connected
    return comm


async def test_stage_is_reported_on_connect_and_heartbeat_even_without_a_broadcast():
    workshop = await database_sync_to_async(make_workshop)(stage=Stage.FAMILIARIZE)
    member = await database_sync_to_async(make_participant)(workshop)
    user = await database_sync_to_async(lambda: member.user)()
    comm = await _connect(workshop, user)
    hello = await comm.receive_json_from(timeout=5)
    assert hello == {"kind": "hello", "payload": {"role": "participant", "stage": "familiarize"}}

    # The stage changes without any broadcast reaching this socket (as when Redis was down).
    await database_sync_to_async(Workshop.objects.filter(pk=workshop.pk).update)(stage=Stage.INTERACT)
    await comm.send_json_to({"action": "ping"})
    pong = await comm.receive_json_from(timeout=5)
    assert pong == {"kind": "pong", "payload": {"stage": "interact"}}

    # A flood of pings costs at most one answer per interval; anything else is ignored, and a
    # malformed frame does not break the stream.
    for _ in range(5):
        await comm.send_json_to({"action": "ping"})
    await comm.send_to(text_data="{not json")
    await comm.send_json_to({"action": "card.create"})
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


async def test_a_request_thread_does_not_wait_for_the_layer_and_events_keep_their_order(monkeypatch):
    """From a sync view's thread in the server (sync_to_async: asgiref records the server loop),
    send_now hands the event to the loop and returns: a slow channel layer (Redis under a
    burst) no longer holds the request. One task per process sends them in order."""
    import asyncio

    from asgiref.sync import sync_to_async
    from channels.layers import get_channel_layer

    from workshops import events

    layer = get_channel_layer()
    released = asyncio.Event()
    sent: list[int] = []

    async def slow_group_send(group, message):
        await released.wait()  # the layer does not answer until the test lets it
        sent.append(message["payload"]["n"])

    monkeypatch.setattr(layer, "group_send", slow_group_send)
    # Returns although the layer has not answered (the old in-place send would wait forever here).
    await asyncio.wait_for(sync_to_async(lambda: [events.send_now(1, "test", {"n": n}) for n in range(20)])(),
                           timeout=10)
    assert sent == []
    released.set()
    for _ in range(100):
        if len(sent) == 20:
            break
        await asyncio.sleep(0.05)
    assert sent == list(range(20))


async def test_board_events_go_the_same_way_and_an_outage_is_reported_once(monkeypatch, caplog):
    """The board's events use the same outbox (workshops.events.deliver): the command's thread
    does not wait for the layer, the events keep their order, and a failing layer is logged
    once per outage, with its end, from the loop's sender task."""
    import asyncio
    import json
    import logging

    from asgiref.sync import sync_to_async

    from discussion import events as board_events

    released = asyncio.Event()
    sent: list[int] = []
    fail = {"on": True}

    class Layer:
        async def group_send(self, group, message):
            await released.wait()
            if fail["on"]:
                raise ConnectionError("redis is down")
            sent.append(json.loads(message["text"])["seq"])

    monkeypatch.setattr(board_events, "get_channel_layer", lambda alias=None: Layer())
    monkeypatch.setattr(board_events, "_failing", False)
    with caplog.at_level(logging.WARNING, logger="discussion.events"):
        await asyncio.wait_for(sync_to_async(lambda: [board_events.send_now(7, "card", {}, seq=n) for n in range(1, 4)])(),
                               timeout=10)
        released.set()
        for _ in range(100):
            if board_events._failing:
                break
            await asyncio.sleep(0.05)
        fail["on"] = False
        await sync_to_async(lambda: [board_events.send_now(7, "card", {}, seq=n) for n in range(4, 7)])()
        for _ in range(100):
            if len(sent) == 3:
                break
            await asyncio.sleep(0.05)
    assert sent == [4, 5, 6]
    records = [r for r in caplog.records if r.name == "discussion.events"]
    assert [r.levelname for r in records] == ["ERROR", "WARNING"], [r.getMessage() for r in records]
