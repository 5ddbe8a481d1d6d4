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
