"""Board clients never keep stale data: every board event carries the board's sequence number,
the heartbeat and every ack report the current one, and the author's ack carries the saved text.

The Redis restart runs against the test's OWN disposable redis-server (never the shared one).
"""

import logging
import shutil
import socket
import subprocess
import time

import pytest
from channels.db import database_sync_to_async
from django.db import transaction

from discussion import events, selectors, services
from discussion.models import Axis
from tests.discussion.conftest import build, goto
from tests.discussion.test_consumers import connect, next_kind, reply_and_event, send
from tests.fixtures_llm import free_port

pytestmark = pytest.mark.django_db(transaction=True)


class DisposableRedis:
    """A redis-server of this test's own, on a free port, without persistence."""

    def __init__(self):
        binary = shutil.which("redis-server")
        if binary is None:  # no silent skip: the test needs it
            raise RuntimeError("redis-server is not installed; the restart test needs its own Redis")
        self.binary = binary
        self.port = free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--save", "", "--appendonly", "no",
                                      "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"own redis-server did not start on port {self.port}")

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def own_redis(settings):
    redis = DisposableRedis()
    redis.start()
    layers = dict(settings.CHANNEL_LAYERS)
    layers["board"] = {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{redis.port}/0"}], "prefix": "live-test.board."},
    }
    settings.CHANNEL_LAYERS = layers
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield redis
    redis.stop()
    channel_layers.backends.clear()


@pytest.fixture
def board():
    d = build()
    goto(d, 4)
    return d


async def _state(client, user, workshop):
    await database_sync_to_async(client.force_login)(user)
    response = await database_sync_to_async(client.get)(f"/w/{workshop.slug}/discuss/state.json")
    assert response.status_code == 200
    return response.json()


async def _drain(comm, quiet=0.5, kind=None):
    """Read what arrives until `quiet` seconds pass without a message (or one of `kind` comes).
    Returns (highest seq seen, the message of `kind` or None). receive_nothing, not a timed
    receive: a timed-out receive cancels the consumer under test."""
    highest, found = 0, None
    while not await comm.receive_nothing(timeout=quiet):
        message = await comm.receive_json_from(timeout=5)
        highest = max(highest, message.get("seq", 0))
        if kind and message["kind"] == kind:
            found = message
            break
    return highest, found


async def test_board_events_are_numbered_in_commit_order(board):
    a = await connect(board.workshop, board.people[0].user)
    await send(a, "card.create", name="Bias")
    created, card = await reply_and_event(a, "created", "card")
    assert created["payload"]["card"]["name"] == "Bias"  # the author sees the card from the ack alone
    axis_id = card["payload"]["card"]["id"]
    await send(a, "card.update", ref=2, id=axis_id, name="Bias", definition="one", version=1)
    text = await next_kind(a, "card_text")
    assert text["seq"] == card["seq"] + 1
    assert await database_sync_to_async(selectors.board_seq)(board.workshop.pk) == text["seq"]
    await a.disconnect()


async def test_redis_restart_other_client_learns_of_missed_edit_and_resyncs(board, own_redis, client, caplog):
    a = await connect(board.workshop, board.people[0].user)   # the author
    b = await connect(board.workshop, board.people[1].user)   # another screen
    await send(a, "card.create", name="Bias", definition="first text")
    axis_id = (await next_kind(a, "created"))["payload"]["id"]
    seen = await next_kind(b, "card")
    b_seq = max(seen["seq"], (await _drain(b))[0])  # B applies every event it gets (presence too)

    own_redis.stop()  # Redis goes away under the connected clients
    with caplog.at_level(logging.WARNING, logger="discussion.events"):
        await send(a, "card.update", ref=2, id=axis_id, name="Bias", definition="saved during the outage", version=1)
        saved = await next_kind(a, "saved", timeout=30)
    # Saved and acknowledged, and the author's ack carries the saved text.
    assert saved["payload"]["card"]["definition"] == "saved during the outage"
    axis = await database_sync_to_async(Axis.objects.get)(pk=axis_id)
    assert axis.definition == "saved during the outage"
    # The lost broadcast is not swallowed silently: logged once, as an error.
    failures = [r for r in caplog.records if r.name == "discussion.events" and r.levelno >= logging.ERROR]
    assert len(failures) == 1, [r.getMessage() for r in caplog.records]
    assert saved["seq"] > b_seq

    own_redis.start()  # the same port: the layer reconnects
    # The heartbeat: B's ping answers with the board's current number, ahead of what B saw.
    await send(b, "ping", ref=7)
    pong = await next_kind(b, "pong", timeout=30)
    assert pong["seq"] > b_seq, "B cannot tell it missed the edit"
    # So B re-fetches the board over HTTP and shows the saved text.
    state = await _state(client, board.people[1].user, board.workshop)
    assert state["seq"] >= pong["seq"]
    assert [c["definition"] for c in state["cards"]] == ["saved during the outage"]

    # And without waiting for a heartbeat: the next event after the outage shows a gap.
    deadline = time.monotonic() + 20
    next_event = None
    while next_event is None and time.monotonic() < deadline:
        # Until the layer has re-subscribed B, events may still be lost; keep editing.
        version = (await database_sync_to_async(Axis.objects.get)(pk=axis_id)).version
        await send(a, "card.update", ref=8, id=axis_id, name="Bias", definition=f"after v{version}", version=version)
        await next_kind(a, "saved", timeout=10)
        next_event = (await _drain(b, quiet=1, kind="card_text"))[1]
    assert next_event is not None, "B never received board events again after Redis came back"
    assert next_event["seq"] > b_seq + 1  # a gap: the client knows it missed something and re-syncs
    await a.disconnect()
    await b.disconnect()


def test_broadcast_failure_is_logged_once_per_outage(board, caplog, monkeypatch):
    """Changes keep their numbers while events cannot be sent; one error, one recovery note."""
    calls = {"fail": True}

    class Broken:
        async def group_send(self, group, message):
            if calls["fail"]:
                raise ConnectionError("redis is down")

    monkeypatch.setattr(events, "get_channel_layer", lambda alias=None: Broken())
    monkeypatch.setattr(events, "_failing", False)
    with caplog.at_level(logging.WARNING, logger="discussion.events"):
        for name in ("one", "two", "three"):
            with transaction.atomic():
                services.axis_create(membership=board.people[0], name=name)
        calls["fail"] = False
        services.axis_create(membership=board.people[0], name="four")
    records = [r for r in caplog.records if r.name == "discussion.events"]
    assert [r.levelname for r in records] == ["ERROR", "WARNING"], [r.getMessage() for r in records]
    assert "re-sync" in records[0].getMessage() and "sent again" in records[1].getMessage()
