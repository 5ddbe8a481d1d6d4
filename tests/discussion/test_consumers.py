"""The board socket against the real Redis channel layer."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from discussion import selectors
from discussion.models import Axis, BoardPresence
from discussion.routing import websocket_urlpatterns
from tests.discussion.conftest import build, goto
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

app = URLRouter(websocket_urlpatterns)


async def connect(workshop, user, expect=True):
    comm = WebsocketCommunicator(app, f"/ws/w/{workshop.slug}/board/")
    comm.scope["user"] = user
    connected, code = await comm.connect(timeout=5)
    assert connected is expect, code
    if connected:
        hello = await comm.receive_json_from(timeout=5)
        assert hello["kind"] == "hello"
    return comm


async def next_kind(comm, kind, timeout=10):
    """The next message of `kind` (skipping others such as presence)."""
    while True:
        message = await comm.receive_json_from(timeout=timeout)
        if message["kind"] == kind:
            return message


async def reply_and_event(comm, reply, event, timeout=10):
    """A command's reply and its own broadcast to the sender's socket, in whichever order they
    come: the event is handed to the loop when the command commits and the reply is sent when
    the command's thread returns, so under load the event can arrive first (next_kind, waiting
    for the reply, would have skipped it)."""
    got: dict = {}
    while len(got) < 2:
        message = await comm.receive_json_from(timeout=timeout)
        if message["kind"] in (reply, event):
            got.setdefault(message["kind"], message)
    return got[reply], got[event]


async def send(comm, action, ref=1, **data):
    await comm.send_to(text_data=json.dumps({"action": action, "data": data, "ref": ref}))


@pytest.fixture
def board():
    d = build()
    goto(d, 4)
    return d


async def test_non_members_and_other_workshops_are_refused(board):
    outsider = await database_sync_to_async(UserFactory)()
    await connect(board.workshop, outsider, expect=False)
    other = await database_sync_to_async(build)()
    # A member of another workshop cannot join this board.
    await connect(board.workshop, other.people[0].user, expect=False)
    comm = await connect(board.workshop, board.people[0].user)
    await comm.send_to(text_data=json.dumps({"action": "card.create", "workshop": other.workshop.pk, "data": {"name": "x"}}))
    refused = await next_kind(comm, "error")
    assert refused["payload"]["reason"] == "wrong workshop"
    await comm.disconnect()
    assert not await database_sync_to_async(Axis.objects.exists)()


async def test_card_fans_out_to_every_member_and_presence_is_tracked(board):
    comms = [await connect(board.workshop, p.user) for p in board.people]
    fac = await connect(board.workshop, board.facilitator.user)
    joined = await next_kind(comms[0], "presence")
    while joined["payload"]["who"] != "F01":  # others' joins arrive as deltas
        joined = await next_kind(comms[0], "presence")
    assert joined["payload"] == {"who": "F01", "here": True, "editing": None}
    present = await database_sync_to_async(selectors.presence)(board.workshop.pk)
    assert {p["who"] for p in present} == {"P01", "P02", "P03", "F01"}
    await send(comms[0], "card.create", name="<img src=x onerror=alert(1)>", definition="Fair to all sides")
    created, own = await reply_and_event(comms[0], "created", "card")
    axis_id = created["payload"]["id"]
    for comm in comms + [fac]:
        event = own if comm is comms[0] else await next_kind(comm, "card")
        assert event["payload"]["card"]["id"] == axis_id
        assert event["payload"]["card"]["name"] == "<img src=x onerror=alert(1)>"  # data; clients render as text
    await send(comms[1], "editing", id=axis_id)
    editing = await next_kind(comms[2], "presence")
    while editing["payload"]["editing"] != axis_id:
        editing = await next_kind(comms[2], "presence")
    assert editing["payload"]["who"] == "P02"
    await comms[1].disconnect()
    left = await next_kind(comms[2], "presence")
    assert left["payload"] == {"who": "P02", "here": False, "editing": None}
    for comm in [comms[0], comms[2], fac]:
        await comm.disconnect()
    assert not await database_sync_to_async(BoardPresence.objects.filter(workshop=board.workshop).exists)()


async def test_concurrent_edit_second_writer_sees_conflict_with_both_texts(board):
    a = await connect(board.workshop, board.people[0].user)
    b = await connect(board.workshop, board.people[1].user)
    await send(a, "card.create", name="Bias", definition="start")
    axis_id = (await next_kind(a, "created"))["payload"]["id"]
    # Both loaded version 1; A saves first, then B saves from the stale version.
    await send(a, "card.update", ref=2, id=axis_id, name="Bias", definition="A's text", version=1)
    saved = await next_kind(a, "saved")
    assert saved["payload"]["version"] == 2
    edited = await next_kind(b, "card_text")  # B's screen shows A's text live
    assert edited["payload"]["card"] == {"id": axis_id, "name": "Bias", "definition": "A's text", "version": 2,
                                         "edited_by": "P01"}
    await send(b, "card.update", ref=3, id=axis_id, name="Bias", definition="B's text", version=1)
    conflict = await next_kind(b, "conflict")
    assert conflict["payload"]["current"]["definition"] == "A's text"
    assert conflict["payload"]["yours"]["definition"] == "B's text"
    assert conflict["payload"]["ref"] == 3
    axis = await database_sync_to_async(Axis.objects.get)(pk=axis_id)
    assert axis.definition == "A's text"
    await a.disconnect()
    await b.disconnect()


async def test_reconnecting_client_resyncs_over_http(board, client):
    a = await connect(board.workshop, board.people[0].user)
    b = await connect(board.workshop, board.people[1].user)
    await b.disconnect()
    await send(a, "card.create", name="Made while B was away")
    # Delivered (A has it) before B comes back: B gets it over HTTP, not on the socket.
    assert (await reply_and_event(a, "created", "card"))[1]["payload"]["card"]["name"] == "Made while B was away"
    b = await connect(board.workshop, board.people[1].user)
    await database_sync_to_async(client.force_login)(board.people[1].user)
    state = await database_sync_to_async(client.get)(f"/w/{board.workshop.slug}/discuss/state.json")
    assert [c["name"] for c in state.json()["cards"]] == ["Made while B was away"]
    assert {p["who"] for p in state.json()["present"]} == {"P01", "P02"}
    await send(a, "card.create", ref=5, name="After reconnect")
    event = await next_kind(b, "card")
    assert event["payload"]["card"]["name"] == "After reconnect"
    await a.disconnect()
    await b.disconnect()


async def test_participant_cannot_run_facilitator_actions(board):
    p = await connect(board.workshop, board.people[0].user)
    for action, data in (("segment", {"segment": 5}), ("reveal", {}), ("spotlight", {"participant": board.people[1].pk}),
                         ("timer", {"minutes": 3}), ("ranking", {"ids": []}), ("map.refresh", {}), ("open", {"open": False})):
        await send(p, action, **data)
        refused = await next_kind(p, "error")
        assert refused["payload"]["action"] == action
        assert "facilitator" in refused["payload"]["reason"].lower()
    session = await database_sync_to_async(lambda: board.workshop.discussion)()
    await database_sync_to_async(session.refresh_from_db)()
    assert session.segment == 4 and session.segment_open and not session.picks_revealed
    f = await connect(board.workshop, board.facilitator.user)
    await send(f, "segment", segment=5)
    event = await next_kind(p, "session")
    assert event["payload"]["segment"] == 5
    await p.disconnect()
    await f.disconnect()


async def test_malformed_oversized_and_flooding_frames_are_refused(board, settings):
    settings.DISCUSSION_SOCKET_RATE = 5
    settings.DISCUSSION_SOCKET_WINDOW = 60
    p = await connect(board.workshop, board.people[0].user)
    await p.send_to(text_data="{not json")
    assert (await next_kind(p, "error"))["payload"]["reason"] == "malformed JSON"
    await p.send_to(text_data=json.dumps(["a", "list"]))
    assert "expected an object" in (await next_kind(p, "error"))["payload"]["reason"]
    await p.send_to(text_data=json.dumps({"action": "card.create", "data": {"name": "x" * 20000}}))
    assert (await next_kind(p, "error"))["payload"]["reason"] == "frame too large"
    await p.send_to(bytes_data=b"\x00\x01")
    assert (await next_kind(p, "error"))["payload"]["reason"] == "text frames only"
    await send(p, "card.create", name="")
    assert "empty" in (await next_kind(p, "error"))["payload"]["reason"]
    # The rate limit (5 per window here) is now used up: more commands are refused, nothing written.
    for i in range(3):
        await send(p, "card.create", name=f"flood {i}")
    reasons = [(await next_kind(p, "error"))["payload"]["reason"] for _ in range(3)]
    assert reasons == ["rate limited: slow down"] * 3
    await asyncio.sleep(0.2)
    assert not await database_sync_to_async(Axis.objects.filter(name__startswith="flood").exists)()
    # The connection stays usable for reading.
    f = await connect(board.workshop, board.facilitator.user)
    await send(f, "card.create", name="Facilitator card")
    assert (await next_kind(p, "card"))["payload"]["card"]["name"] == "Facilitator card"
    await p.disconnect()
    await f.disconnect()
