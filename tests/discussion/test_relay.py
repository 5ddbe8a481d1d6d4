"""One receiver per board per server process (discussion/relay.py): every local socket gets
each board event from it, a socket that cannot take a frame does not stop the others, and the
last socket leaving takes the receiver out of the group."""

import asyncio
import json

import pytest

from discussion import relay
from discussion.events import board_group
from tests.discussion.test_consumers import board, connect, next_kind, send  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)


async def test_sockets_of_a_board_share_one_receiver_and_all_get_each_change(board):  # noqa: F811
    from channels.db import database_sync_to_async

    from discussion import services

    comms = [await connect(board.workshop, m.user) for m in board.people[:3]]
    relays = relay._relays[asyncio.get_running_loop()]
    group = board_group(board.workshop.pk)
    assert list(relays) == [group] and len(relays[group].sockets) == 3
    await database_sync_to_async(services.axis_create)(membership=board.people[0], name="Fairness")
    for comm in comms:
        card = await next_kind(comm, "card")
        assert card["payload"]["card"]["name"] == "Fairness"
    for comm in comms:
        await comm.disconnect()
    assert group not in relays


class _Layer:
    """A layer with one group and a queue per channel, as Channels' layers behave."""

    def __init__(self):
        self.groups: dict[str, set] = {}
        self.queues: dict[str, asyncio.Queue] = {}

    async def new_channel(self, prefix="x."):
        name = f"{prefix}{len(self.queues)}"
        self.queues[name] = asyncio.Queue()
        return name

    async def group_add(self, group, channel):
        self.groups.setdefault(group, set()).add(channel)

    async def group_discard(self, group, channel):
        self.groups.get(group, set()).discard(channel)

    async def group_send(self, group, message):
        for channel in self.groups.get(group, ()):
            self.queues[channel].put_nowait(message)

    async def receive(self, channel):
        return await self.queues[channel].get()


class _Socket:
    def __init__(self, fail=False):
        self.frames, self.fail = [], fail

    async def base_send(self, frame):
        if self.fail:
            raise RuntimeError("socket closed")
        self.frames.append(frame["text"])


async def test_a_failing_socket_is_dropped_and_the_others_still_receive():
    layer = _Layer()
    good, bad, late = _Socket(), _Socket(fail=True), _Socket()
    for socket in (good, bad, late):
        await relay.join(socket, layer, "board.1")
    assert len(layer.groups["board.1"]) == 1  # one member for the process, not one per socket
    for n in range(3):
        await layer.group_send("board.1", {"type": "board.event", "text": json.dumps({"seq": n})})
    for _ in range(100):
        if len(late.frames) == 3:
            break
        await asyncio.sleep(0.01)
    assert good.frames == late.frames == [json.dumps({"seq": n}) for n in range(3)]
    relays = relay._relays[asyncio.get_running_loop()]
    assert bad not in relays["board.1"].sockets
    for socket in (good, late):
        await relay.leave(socket, "board.1")
    assert "board.1" not in relays and layer.groups["board.1"] == set()
