"""Issue 10 item 4: one participant cannot flood the board.

The limit is per member across every socket (counted in Redis), the cards on the board are
capped per participant and in all, and the board state costs the same number of queries
whatever the number of cards.
"""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from discussion import selectors, services
from discussion.models import Axis, AxisComment, AxisExample, AxisSource, AxisStatus
from discussion.routing import websocket_urlpatterns
from tests.discussion.conftest import build, goto
from channels.testing import WebsocketCommunicator

app = URLRouter(websocket_urlpatterns)
# A window far longer than the test, so a count never straddles two fixed windows.
LONG = "7d"


def _board(participants=3):
    d = build(participants=participants)
    goto(d, 4)
    return d


async def _connect(workshop, user):
    comm = WebsocketCommunicator(app, f"/ws/w/{workshop.slug}/board/")
    comm.scope["user"] = user
    connected, code = await comm.connect(timeout=10)
    assert connected, code
    assert (await comm.receive_json_from(timeout=10))["kind"] == "hello"
    return comm


async def _answer(comm, ref, timeout=20):
    """The reply to the frame with `ref` (a created/error/pong...), skipping broadcasts."""
    while True:
        message = await comm.receive_json_from(timeout=timeout)
        if message["kind"] in ("card", "presence", "card_text", "session"):
            continue
        if message.get("payload", {}).get("ref") == ref:
            return message


async def _fifty_sockets_create_one_card_each(d, member):
    comms = [await _connect(d.workshop, member.user) for _ in range(50)]
    for i, comm in enumerate(comms):
        await comm.send_to(text_data=json.dumps({"action": "card.create", "ref": i, "data": {"name": f"flood {i}"}}))
    answers = [await _answer(comm, i) for i, comm in enumerate(comms)]
    return comms, answers


@pytest.mark.django_db(transaction=True)
async def test_fifty_sockets_of_one_member_share_one_rate_limit(settings):
    settings.DISCUSSION_MEMBER_RATE = f"10/{LONG}"
    settings.DISCUSSION_CARDS_PER_MEMBER = 1000
    d = await database_sync_to_async(_board)()
    flooder = d.people[0]
    comms, answers = await _fifty_sockets_create_one_card_each(d, flooder)
    created = [a for a in answers if a["kind"] == "created"]
    refused = [a for a in answers if a["kind"] == "error"]
    assert len(created) == 10 and len(refused) == 40
    assert all("Too many changes" in a["payload"]["reason"] and a["payload"]["retry_after"] >= 1 for a in refused)
    assert await database_sync_to_async(Axis.objects.filter(created_by=flooder).count)() == 10
    # Refused sockets stay open (a ping is not a change), and other members keep their own budget.
    await comms[-1].send_to(text_data=json.dumps({"action": "ping", "ref": "p"}))
    assert (await _answer(comms[-1], "p"))["kind"] == "pong"
    other = await _connect(d.workshop, d.people[1].user)
    await other.send_to(text_data=json.dumps({"action": "card.create", "ref": "o", "data": {"name": "mine"}}))
    assert (await _answer(other, "o"))["kind"] == "created"
    for comm in comms + [other]:
        await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_fifty_sockets_of_one_member_stop_at_the_card_cap(settings):
    settings.DISCUSSION_CARDS_PER_MEMBER = 30  # the default, stated
    d = await database_sync_to_async(_board)()
    flooder = d.people[0]
    comms, answers = await _fifty_sockets_create_one_card_each(d, flooder)
    refused = [a["payload"]["reason"] for a in answers if a["kind"] == "error"]
    # Concurrent creates are counted under a lock: exactly the cap, never more.
    assert await database_sync_to_async(Axis.objects.filter(created_by=flooder).count)() == 30
    assert len(refused) == 20 and all("the most one person may add" in r for r in refused)
    for comm in comms:
        await comm.disconnect()


@pytest.mark.django_db
def test_card_caps_per_participant_and_per_board(settings):
    settings.DISCUSSION_CARDS_PER_MEMBER = 3
    settings.DISCUSSION_CARDS_PER_BOARD = 5
    d = _board()
    p0, p1, p2 = d.people
    mine = [services.axis_create(membership=p0, name=f"P01 card {i}") for i in range(3)]
    with pytest.raises(ValidationError, match="the most one person may add"):
        services.axis_create(membership=p0, name="one too many")
    services.axis_create(membership=p1, name="P02 card 1")
    services.axis_create(membership=p1, name="P02 card 2")
    for who in (p2, d.facilitator):  # the board is full: nobody adds, facilitator included
        with pytest.raises(ValidationError, match="The board is full"):
            services.axis_create(membership=who, name="no room")
    # Splitting adds cards too (the original leaves the board): 5 - 1 + 2 = 6 > 5.
    with pytest.raises(ValidationError, match="The board is full"):
        services.axis_split(membership=d.facilitator, axis_id=mine[0].pk,
                            parts=[{"name": "a"}, {"name": "b"}])
    # Removing a card makes room again; merged and removed cards do not count.
    services.axis_archive(membership=p0, axis_id=mine[0].pk)
    services.axis_create(membership=p2, name="P03 card")
    assert Axis.objects.filter(workshop=d.workshop, status=AxisStatus.ACTIVE).count() == 5
    services.axis_merge(membership=d.facilitator, axis_ids=[mine[1].pk], into_id=mine[2].pk)
    services.axis_split(membership=p0, axis_id=mine[2].pk, parts=[{"name": "a"}, {"name": "b"}])
    assert Axis.objects.filter(workshop=d.workshop, status=AxisStatus.ACTIVE).count() == 5
    assert Axis.objects.filter(workshop=d.workshop, status=AxisStatus.ACTIVE, created_by=p0).count() == 2


@pytest.mark.django_db(transaction=True)
async def test_cap_refusal_reaches_the_client_as_a_message(settings):
    settings.DISCUSSION_CARDS_PER_MEMBER = 1
    d = await database_sync_to_async(_board)()
    comm = await _connect(d.workshop, d.people[0].user)
    for ref in (1, 2):
        await comm.send_to(text_data=json.dumps({"action": "card.create", "ref": ref, "data": {"name": f"c{ref}"}}))
    assert (await _answer(comm, 1))["kind"] == "created"
    refused = await _answer(comm, 2)
    assert refused["kind"] == "error" and refused["payload"]["action"] == "card.create"
    assert refused["payload"]["reason"].startswith("You have 1 cards on the board")
    await comm.disconnect()


def _fill(d, n):
    """n cards, each with a source, an example and a comment (what makes card_data query)."""
    member = d.people[0]
    code = next(c for (pk, _t), c in d.codes.items() if pk == member.pk)
    answer = d.answers[member.pk]
    axes = Axis.objects.bulk_create(
        [Axis(workshop=d.workshop, name=f"card {i}", created_by=member, updated_by=member) for i in range(n)])
    AxisSource.objects.bulk_create([AxisSource(axis=a, code=code, added_by=member) for a in axes])
    AxisExample.objects.bulk_create([AxisExample(axis=a, message=answer, excerpt="Many historians", added_by=member)
                                     for a in axes])
    AxisComment.objects.bulk_create([AxisComment(axis=a, membership=d.people[1], text="agree") for a in axes])


@pytest.mark.django_db
def test_board_state_query_count_does_not_grow_with_cards(client_for):
    d = _board()
    _fill(d, 3)
    with CaptureQueriesContext(connection) as few:
        state = selectors.board_state(d.workshop, d.people[1])
    assert len(state["cards"]) == 3
    assert state["cards"][0]["sources"] == [{"kind": "code", "label": "colonial bias", "by": "P01"}]
    assert state["cards"][0]["comments"][0]["text"] == "agree"
    assert state["cards"][0]["examples"][0]["excerpt"] == "Many historians"
    _fill(d, 297)
    with CaptureQueriesContext(connection) as many:
        state = selectors.board_state(d.workshop, d.people[1])
    assert len(state["cards"]) == 300
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries[len(few):][:5]]
    response = client_for(d.people[1]).get(f"/w/{d.workshop.slug}/discuss/state.json")
    assert response.status_code == 200 and len(response.json()["cards"]) == 300


@pytest.mark.django_db
def test_card_data_of_one_card_still_works_without_prefetch():
    d = _board()
    _fill(d, 1)
    axis = Axis.objects.get(workshop=d.workshop)
    data = selectors.card_data(axis)
    assert [s["label"] for s in data["sources"]] == ["colonial bias"] and len(data["comments"]) == 1


@pytest.mark.django_db(transaction=True)
async def test_a_flood_is_logged_once_not_once_per_frame(settings, caplog):
    settings.DISCUSSION_MEMBER_RATE = f"2/{LONG}"
    d = await database_sync_to_async(_board)()
    comm = await _connect(d.workshop, d.people[0].user)
    for ref in range(12):
        await comm.send_to(text_data=json.dumps({"action": "card.remove", "ref": ref, "data": {"id": None}}))
    await asyncio.sleep(0)
    await comm.send_to(text_data=json.dumps({"action": "ping", "ref": "last"}))
    await _answer(comm, "last")
    lines = [r for r in caplog.records if r.name == "discussion.consumers" and "Too many changes" in r.getMessage()]
    assert len(lines) == 1 and not lines[0].exc_info
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
def test_a_card_edit_is_one_short_transaction_and_its_reply_carries_its_own_number():
    """The most frequent command, a text edit, costs no savepoint and no second read of the
    board's number: its reply carries the number its own change took (the broadcast's)."""
    from discussion.consumers import _run_acked

    d = _board()
    member = d.people[0]
    axis = services.axis_create(membership=member, name="Bias", definition="d")
    before = selectors.board_seq(d.workshop.pk)
    with CaptureQueriesContext(connection) as queries:
        reply = _run_acked(d.workshop.pk, member.pk, "chan", "card.update",
                           {"id": axis.pk, "name": "Bias, named", "definition": "d", "version": axis.version})
    sql = [q["sql"] for q in queries.captured_queries]
    assert reply["kind"] == "saved" and reply["seq"] == before + 1 == selectors.board_seq(d.workshop.pk)
    assert not [s for s in sql if "SAVEPOINT" in s], sql
    assert not [s for s in sql if s.startswith("SELECT") and "boardsequence" in s], sql
    # The session comes with the membership (select_related), not in a query of its own.
    assert not [s for s in sql if s.startswith("SELECT") and s.split(" FROM ")[1].startswith('"discussion_session"')], sql
    # Nothing took a number: the reply reads the board's current one.
    with CaptureQueriesContext(connection) as queries:
        reply = _run_acked(d.workshop.pk, member.pk, "chan", "editing", {"id": axis.pk})
    assert reply == {"kind": "ack", "seq": before + 1}
