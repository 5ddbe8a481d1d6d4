"""Hostile socket frames (issue 10 item 5): the board answers every bad frame with a refusal and
stays open; the one-way streams drop garbage; each is logged in one line, without a traceback.
"""

import asyncio
import json
import logging

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers, get_channel_layer
from channels.routing import URLRouter
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from calma.routing import websocket_urlpatterns
from discussion.models import Axis
from tests.discussion.conftest import build, goto
from channels.testing import WebsocketCommunicator
from workshops.events import group_name

pytestmark = pytest.mark.django_db(transaction=True)
app = URLRouter(websocket_urlpatterns)

ACTIONS = ["ping", "editing", "card.create", "card.update", "card.comment", "card.merge", "card.split", "card.remove",
           "card.attach", "card.example", "vote", "segment", "open", "reveal", "spotlight", "timer", "ranking",
           "map.refresh"]
KEYS = ["name", "definition", "id", "ids", "into", "parts", "text", "key", "annotation", "message", "excerpt", "start",
        "end", "pick", "segment", "open", "revealed", "participant", "minutes", "full", "version"]
OTHER_DIGITS = "١٢٣٠۴۵६७²³①"
TEXT = st.one_of(
    st.text(st.one_of(st.characters(codec=None), st.integers(0xD800, 0xDFFF).map(chr),
                      st.sampled_from(["\x00", "\u202e", "\u200f"] + list(OTHER_DIGITS))), max_size=30),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "\x00", "ب"]), st.integers(200, 6000)),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(0, 60), st.integers(-2**80, 2**80),
                    st.floats(allow_nan=True, allow_infinity=True), TEXT)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) |
                      st.dictionaries(st.sampled_from(KEYS + ["x"]), inner, max_size=4), max_leaves=8)
FRAMES = st.one_of(
    st.fixed_dictionaries({"action": st.sampled_from(ACTIONS), "data": st.dictionaries(st.sampled_from(KEYS), VALUES)},
                          optional={"ref": VALUES, "workshop": VALUES}).map(json.dumps),
    st.dictionaries(st.text(max_size=8), VALUES, max_size=3).map(json.dumps),
    VALUES.map(json.dumps),
    st.text(min_size=1, max_size=200).filter(lambda t: t.encode("utf-8", "surrogatepass") == t.encode("utf-8", "ignore")),
    st.just("[" * 5000 + "]" * 5000),  # deeper than json's recursion limit
)


def _board():
    d = build()
    goto(d, 4)
    return d


async def _connect(path, user):
    comm = WebsocketCommunicator(app, path)
    comm.scope["user"] = user
    connected, code = await comm.connect(timeout=10)
    assert connected, code
    assert "hello" in json.dumps(await comm.receive_json_from(timeout=10))
    return comm


async def _reply_to(comm, ref, timeout=10):
    """Skip broadcasts and earlier replies until the answer to `ref`; return every message seen."""
    seen = []
    while True:
        message = await comm.receive_json_from(timeout=timeout)
        seen.append(message)
        if isinstance(message.get("payload"), dict) and message["payload"].get("ref") == ref:
            return seen


async def test_a_lone_surrogate_in_a_board_frame_is_refused_and_the_socket_stays_open(caplog):
    d = await database_sync_to_async(_board)()
    comm = await _connect(f"/ws/w/{d.workshop.slug}/board/", d.people[0].user)
    # JSON escapes decode to a lone surrogate: text Postgres (UTF-8) cannot store.
    await comm.send_to(text_data='{"action": "card.create", "ref": 1, "data": {"name": "bias \\ud800"}}')
    refusal = await comm.receive_json_from(timeout=10)
    while refusal["kind"] == "presence":
        refusal = await comm.receive_json_from(timeout=10)
    assert refusal["kind"] == "error" and refusal["payload"]["reason"] == "invalid text: unpaired surrogate"
    await comm.send_to(text_data=json.dumps({"action": "card.create", "ref": 2, "data": {"name": "bias"}}))
    assert any(m["kind"] == "created" for m in await _reply_to(comm, 2))
    assert await database_sync_to_async(list)(Axis.objects.values_list("name", flat=True)) == ["bias"]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    await comm.disconnect()


async def test_wrong_types_and_out_of_range_values_are_refused_in_one_line(caplog):
    d = await database_sync_to_async(_board)()
    comm = await _connect(f"/ws/w/{d.workshop.slug}/board/", d.facilitator.user)
    frames = [
        {"action": "card.create", "data": {"name": "x", "pick": "not a number"}},
        {"action": "card.update", "data": {"id": 1, "name": "x", "version": 10 ** 30}},
        {"action": "card.example", "data": {"id": "١٢", "annotation": [1]}},
        {"action": "vote", "data": {"ids": ["²"]}},
        {"action": "timer", "data": {"minutes": "NaN"}},
    ]
    for ref, frame in enumerate(frames):
        await comm.send_to(text_data=json.dumps({**frame, "ref": ref}))
        reply = (await _reply_to(comm, ref))[-1]
        assert reply["kind"] in ("error", "conflict"), reply
        assert reply["payload"].get("reason") != "server error", (frame, reply)
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    await comm.disconnect()


async def test_garbage_on_the_one_way_streams_is_dropped_and_logged_once(caplog):
    d = await database_sync_to_async(build)(stage="familiarize")
    comm = await _connect(f"/ws/w/{d.workshop.slug}/events/", d.people[0].user)
    for frame in ({"text_data": "{not json"}, {"bytes_data": b"\x00\xff"}, {"text_data": "[" * 5000},
                  {"text_data": "\x00"}):
        await comm.send_to(**frame)
    await get_channel_layer().group_send(group_name(d.workshop.pk), {"type": "workshop.event", "kind": "still-here"})
    assert (await comm.receive_json_from(timeout=10))["kind"] == "still-here"  # the socket survived
    lines = [r for r in caplog.records if r.name == "workshops.consumers"]
    assert len(lines) == 1 and not lines[0].exc_info
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    await comm.disconnect()


def test_fuzzed_board_frames_are_answered_and_never_break_the_socket(settings, caplog):
    """Hypothesis over the board's frames, sent by the facilitator (every action reaches its
    service): each is followed by a ping, which must be answered; no 'server error' and no
    traceback."""
    settings.DISCUSSION_MEMBER_RATE = "100000/7d"
    settings.DISCUSSION_SOCKET_RATE = 100000
    settings.DISCUSSION_CARDS_PER_MEMBER = 10000
    settings.DISCUSSION_CARDS_PER_BOARD = 10000
    d = build()
    goto(d, 4)
    path = f"/ws/w/{d.workshop.slug}/board/"
    caplog.set_level(logging.WARNING)

    async def scenario(frames):
        channel_layers.backends.clear()  # a new event loop per example
        comm = await _connect(path, d.facilitator.user)
        try:
            for i, frame in enumerate(frames):
                await comm.send_to(text_data=frame)
                await comm.send_to(text_data=json.dumps({"action": "ping", "ref": f"probe-{i}"}))
                seen = await _reply_to(comm, f"probe-{i}")
                broken = [m for m in seen if m.get("payload", {}).get("reason") == "server error"]
                assert not broken, (frame[:300], broken)
        finally:
            await comm.disconnect()
            channel_layers.backends.clear()

    @hsettings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(frames=st.lists(FRAMES, min_size=1, max_size=4))
    def check(frames):
        asyncio.run(scenario(frames))

    check()
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert not tracebacks, tracebacks[0].getMessage()
