"""One receiver per board per server process: a board change is written to every local socket
from one loop, as the bare-broadcast floor does.

Channels' own way is one group member per socket: the layer puts each event into every
socket's queue, and each socket's consumer task wakes up (`asyncio.wait` over its two
receivers, a new receive task after each message) to forward it. At 100 and 300 sockets on
one board that per-socket wake-up was most of the gap between the board's fan-out and the
floor's (benchmarks/discussion_fanout.py). Here one channel per board and process joins the
group; its task receives each event once and writes its text (encoded once by the sender,
discussion/events.py) to the local sockets in a plain loop. Written for this product because
Channels has no process-local broadcast; everything else (the layer, Redis pub/sub and its
reconnection, the consumers) stays Channels'.

The uvicorn websocket protocol that the server commands use (the default, websockets-sansio)
writes a frame into the transport's buffer without waiting for the peer, so one slow client
does not hold the loop for the others; a socket that fails to take a frame is dropped from
the relay (its own consumer closes it).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import weakref

log = logging.getLogger(__name__)


class _Relay:
    def __init__(self, layer, group: str):
        self.layer, self.group = layer, group
        self.sockets: dict = {}  # consumer -> its ASGI send, in joining order
        self.channel: str | None = None
        self.ready = asyncio.Event()
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        try:
            self.channel = await self.layer.new_channel(prefix="board-relay.")
            await self.layer.group_add(self.group, self.channel)
            self.task = asyncio.get_running_loop().create_task(self._forward(), context=contextvars.Context())
        finally:
            self.ready.set()

    async def _forward(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # the layer reconnects by itself; do not spin while it is down
                log.warning("board relay %s: receive failed", self.group, exc_info=True)
                await asyncio.sleep(0.5)
                continue
            if message.get("type") != "board.event":
                continue
            frame = {"type": "websocket.send", "text": message["text"]}
            for consumer, send in list(self.sockets.items()):
                try:
                    await send(frame)
                except Exception:  # a socket closing under us: it is leaving anyway
                    self.sockets.pop(consumer, None)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping
                pass
        if self.channel is not None:
            try:
                await self.layer.group_discard(self.group, self.channel)
            except Exception:  # noqa: BLE001 - best effort; the layer expires group members
                log.warning("board relay %s: group_discard failed", self.group, exc_info=True)


# Per event loop (each test has its own; a server process has one).
_relays: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Relay]] = weakref.WeakKeyDictionary()


async def join(consumer, layer, group: str) -> None:
    """Have `consumer`'s socket receive the board events of `group` (joins the group for this
    process on the first socket)."""
    relays = _relays.setdefault(asyncio.get_running_loop(), {})
    relay = relays.get(group)
    if relay is None:
        relay = relays[group] = _Relay(layer, group)
        try:
            await relay.start()
        except Exception:  # the layer is unreachable: this socket is refused, the next one tries again
            if relays.get(group) is relay:
                relays.pop(group)
            raise
    else:
        await relay.ready.wait()
        if relay.task is None:
            raise ConnectionError(f"the board relay for {group} could not start")
    relay.sockets[consumer] = consumer.base_send


async def leave(consumer, group: str) -> None:
    """Stop sending `group`'s events to `consumer` (the last socket leaving stops the relay)."""
    relays = _relays.get(asyncio.get_running_loop(), {})
    relay = relays.get(group)
    if relay is None:
        return
    relay.sockets.pop(consumer, None)
    if not relay.sockets:
        relays.pop(group, None)
        await relay.stop()
