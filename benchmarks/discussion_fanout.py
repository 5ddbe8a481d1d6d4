"""Benchmark: board fan-out through the real ASGI server and the Redis channel layer.

Starts the app under uvicorn on loopback (its own database, Redis from REDIS_URL), connects
N logged-in websocket clients to one board (/ws/w/<slug>/board/), lets the join storm settle,
then one client edits a card --rounds times. For each change: time from the sender's send to
the moment the last of the N clients has received the change (the sender included), with all
clients in this one process on the same 2-core machine. Reports median and p99 per N, and
the CPU each side used per change (this client process, the server processes, Redis), so a
run shows whether the clients themselves compete with the server for the two cores.

Every board figure is printed next to the machine's floor for the same fan-out, measured in
the same run by the same client process (interleaved with the board, `--repeat` times):
- ws floor: a bare ASGI websocket broadcast under the same uvicorn (same --ws, --deflate):
  one client sends a frame of the board event's size, the server writes it to all N sockets;
- redis floor: one Redis PUBLISH of the same size to N subscribed connections.
Target (issue 16): board p99 within 3x of the ws floor's p99 at 100 and 300 clients.

Waits on readiness, never a fixed delay: the server until /healthz answers (every worker with
--workers), the join storm until no presence event has arrived for a moment. On --timeout (or
Ctrl-C) it prints what it measured so far. `uptime` load is printed before and after.

  .venv/bin/python -m benchmarks.discussion_fanout [--clients 100,300] [--rounds 40] [--repeat 1]
      [--timeout 900] [--floor on|off] [--server-root DIR]
      [--layer app|core|pubsub] [--ws auto|websockets|websockets-sansio|wsproto] [--deflate on|off]
      [--workers 1] [--client-loop asyncio|uvloop] [--conn-max-age 0]

--server-root runs the server from another checkout (e.g. `git archive` of an older commit
unpacked in /tmp) against the same database: before/after comparisons in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from benchmarks.discussion_common import make_workshop, percentiles, session_cookie, setup_django
from tests.fixtures_llm import free_port, serve_lifespan, stop_process

ROOT = Path(__file__).resolve().parent.parent


# --- the bare-broadcast floor: a minimal ASGI app, served by the same uvicorn ------------------
_floor_sends: list = []


async def floor_app(scope, receive, send):
    """Any text frame from any client is written to every connected socket, as is."""
    if scope["type"] == "lifespan":
        return await serve_lifespan(receive, send)
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    _floor_sends.append(send)
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is not None:
                for other in list(_floor_sends):
                    try:
                        await other({"type": "websocket.send", "text": text})
                    except Exception:  # noqa: BLE001 - a closing peer
                        pass
    finally:
        _floor_sends.remove(send)


def wait_ready(url: str, proc: subprocess.Popen, deadline_s: float = 120) -> None:
    """Until `url` answers 200 (polled; no fixed delay)."""
    from tests.fixtures_llm import wait_http_ok

    try:
        wait_http_ok(url, proc, timeout=deadline_s, what="server (see /tmp/discussion_fanout_server.log)")
    except RuntimeError as error:
        proc.kill()
        raise SystemExit(str(error)) from None


def start_server(port: int, args, app: str = "calma.asgi:application", root: Path = ROOT) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    if args.layer != "app":
        env["DISCUSSION_BOARD_LAYER"] = "redis" if args.layer == "core" else "pubsub"
    if args.conn_max_age:
        env.update({"DJANGO_SETTINGS_MODULE": "benchmarks.discussion_bench_settings",
                    "BENCH_CONN_MAX_AGE": str(args.conn_max_age)})
    env.update({"DEBUG": "0", "CALMA_TESTING": "1", "SECURE_COOKIES": "0", "ALLOWED_HOSTS": "127.0.0.1",
                "LOG_LEVEL": "WARNING", "DISCUSSION_SOCKET_RATE": "1000",
                # One member sends every change: above the product's 60 a minute from round 60 on.
                "DISCUSSION_MEMBER_RATE": "100000/m", "PYTHONPATH": str(root)})
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log", "--ws", args.ws,
               "--ws-per-message-deflate", "true" if args.deflate == "on" else "false",
               # The clients here are one process: on a loaded machine it may not answer the
               # server's keepalive pings within uvicorn's 20 s, which would end the run.
               "--ws-ping-interval", "300", "--ws-ping-timeout", "300"]
    workers = args.workers if app.startswith("calma") else 1
    if workers > 1:
        command += ["--workers", str(workers)]
    proc = subprocess.Popen(command, cwd=root, env=env, stdout=open("/tmp/discussion_fanout_server.log", "a"),
                            stderr=subprocess.STDOUT)
    wait_ready(f"http://127.0.0.1:{port}/healthz" if app.startswith("calma") else f"http://127.0.0.1:{port}/", proc)
    if workers > 1:
        # Every worker imports the app before accepting; /healthz through each one.
        for _ in range(workers * 4):
            wait_ready(f"http://127.0.0.1:{port}/healthz", proc)
    return proc


def _proc_tree(pid: int) -> list[int]:
    """`pid` and its descendants (uvicorn --workers forks worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def server_cpu_s(pid: int) -> float:
    """User + system CPU seconds of the server process tree so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in _proc_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def client_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def redis_cpu_s() -> float | None:
    try:
        import redis

        info = redis.Redis.from_url(os.environ["REDIS_URL"]).info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    except Exception:  # noqa: BLE001 - only a figure in the report
        return None


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


class Partial:
    """What a run has measured so far: printed as it is if the time bound strikes."""

    def __init__(self):
        self.results: list[dict] = []
        self.current: dict | None = None


PARTIAL = Partial()


async def _quiet(counter: list[int], quiet_s: float = 0.5, limit_s: float = 60) -> float:
    """Wait until no message has arrived for `quiet_s` (the join storm has settled)."""
    start = time.perf_counter()
    last, last_change = counter[0], time.perf_counter()
    while time.perf_counter() - start < limit_s:
        await asyncio.sleep(0.05)
        if counter[0] != last:
            last, last_change = counter[0], time.perf_counter()
        elif time.perf_counter() - last_change >= quiet_s:
            break
    return time.perf_counter() - start


async def run_board(port: int, slug: str, cookies: list[str], rounds: int, axis_id: int, server_pid: int,
                    first_version: int, record: dict) -> dict:
    import websockets

    url = f"ws://127.0.0.1:{port}/ws/w/{slug}/board/"
    origin = f"http://127.0.0.1:{port}"
    n = len(cookies)
    received: dict[int, list[float]] = {}
    seen_all: dict[int, asyncio.Event] = {}
    counter = [0]
    sizes: list[int] = []

    async def reader(ws):
        # Each change is found in its frame without parsing the JSON (the server encodes it
        # compactly: '{"kind":"card_text",…"name":"round 7",…'), as the floor's readers find
        # theirs: all N sockets are read by this one process, so every microsecond spent per
        # frame lands, N times over, on the last socket's figure (json.loads of each frame had
        # made the board's client work per change 4.9 ms, against 3.4 ms for the bare broadcast).
        async for raw in ws:
            now = time.perf_counter()
            counter[0] += 1
            if raw.startswith(('{"kind":"card_text"', '{"kind":"card"')):
                at = raw.find('"name":"round ')
                if at >= 0:
                    start = at + len('"name":"round ')
                    r = int(raw[start:raw.index('"', start)])
                    stamps = received.setdefault(r, [])
                    stamps.append(now)
                    if len(stamps) == 1:
                        sizes.append(len(raw))
                    if len(stamps) == n and r in seen_all:
                        seen_all[r].set()
                continue
            msg = json.loads(raw)  # the sender's reply and the rest: few
            if msg.get("kind") == "saved":
                saved_at.append(now)
                saved.put_nowait(msg["payload"]["version"])
            elif msg.get("kind") in ("error", "conflict"):  # a refused change ends the run, said as it is
                saved.put_nowait(RuntimeError(f"{msg['kind']}: {str(msg.get('payload'))[:160]}"))

    saved: asyncio.Queue = asyncio.Queue()
    saved_at: list[float] = []
    saved_ms: list[float] = []
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(50)

    async def connect(cookie):
        async with sem:
            ws = await websockets.connect(url, additional_headers={"Cookie": cookie}, origin=origin,
                                          max_size=2 ** 20, open_timeout=120, ping_interval=None)
            hello = json.loads(await ws.recv())
            assert hello["kind"] == "hello", hello
            return ws

    clients = await asyncio.gather(*(connect(c) for c in cookies))
    record["connect_s"] = round(time.perf_counter() - t0, 1)
    tasks = [asyncio.create_task(reader(ws)) for ws in clients]
    record["settle_s"] = round(await _quiet(counter), 1)  # the presence storm of the joins
    sender = clients[0]
    version = first_version
    latencies = record.setdefault("latencies", [])
    spreads: list[float] = []  # first to last receipt: the fan-out alone, without the write before it
    record["missed"] = 0
    cpu0 = (client_cpu_s(), server_cpu_s(server_pid), redis_cpu_s())
    try:
        for r in range(rounds):
            seen_all[r] = asyncio.Event()
            start = time.perf_counter()
            await sender.send(json.dumps({"action": "card.update", "ref": r,
                                          "data": {"id": axis_id, "name": f"round {r}", "definition": "d", "version": version}}))
            try:
                await asyncio.wait_for(seen_all[r].wait(), timeout=10)
                latencies.append((max(received[r]) - start) * 1000)
                spreads.append((max(received[r]) - min(received[r])) * 1000)
            except asyncio.TimeoutError:
                record["missed"] += 1
            version = await asyncio.wait_for(saved.get(), timeout=10)
            if isinstance(version, Exception):
                raise version
            saved_ms.append(saved_at[-1] - start)
            await asyncio.sleep(0.25)
    finally:
        cpu1 = (client_cpu_s(), server_cpu_s(server_pid), redis_cpu_s())
        done = max(1, len(saved_ms))
        record.update({f"{name}_cpu_ms": (round((b - a) * 1000 / done, 1) if a is not None and b is not None else None)
                       for name, a, b in zip(("client", "server", "redis"), cpu0, cpu1)})
        record["sender_reply_median"] = percentiles([x * 1000 for x in saved_ms]).get("median")
        record["event_bytes"] = sizes[0] if sizes else None
        record["spread_p99"] = percentiles(spreads).get("p99")
        for t in tasks:
            t.cancel()
        await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)
    return record


class _Floor:
    """A floor measurement: `n` receivers count each round's message (its first 8 characters are
    the round); a round has arrived when all `n` have it."""

    def __init__(self, n: int):
        self.n = n
        self.received: dict[int, int] = {}
        self.seen_all: dict[int, asyncio.Event] = {}
        self.done: dict[int, float] = {}

    def arrived(self, data) -> None:
        r = int(data[:8])
        self.received[r] = self.received.get(r, 0) + 1
        if self.received[r] == self.n:
            self.done[r] = time.perf_counter()
            self.seen_all[r].set()

    async def rounds(self, send, rounds: int, size: int, record: dict) -> None:
        """`rounds` messages of `size` characters sent by `send`, 0.25 s apart: the milliseconds
        until the last receiver had each (record["latencies"]); record["missed"] those not in 10 s."""
        latencies = record.setdefault("latencies", [])
        record["missed"] = 0
        cpu0 = client_cpu_s()
        try:
            await self._rounds(send, rounds, size, latencies, record)
        finally:
            record["client_cpu_ms"] = round((client_cpu_s() - cpu0) * 1000 / max(1, len(latencies)), 1)

    async def _rounds(self, send, rounds: int, size: int, latencies: list, record: dict) -> None:
        for r in range(rounds):
            self.seen_all[r] = asyncio.Event()
            start = time.perf_counter()
            await send(f"{r:08d}" + "x" * max(0, size - 8))
            try:
                await asyncio.wait_for(self.seen_all[r].wait(), timeout=10)
                latencies.append((self.done[r] - start) * 1000)
            except asyncio.TimeoutError:
                record["missed"] += 1
            await asyncio.sleep(0.25)


async def run_ws_floor(port: int, n: int, rounds: int, size: int, record: dict) -> dict:
    """The bare broadcast: N plain websocket clients of the floor app; one sends, all receive."""
    import websockets

    url = f"ws://127.0.0.1:{port}/"
    floor = _Floor(n)
    sem = asyncio.Semaphore(50)

    async def connect():
        async with sem:
            return await websockets.connect(url, max_size=2 ** 20, open_timeout=120, ping_interval=None)

    async def reader(ws):
        async for raw in ws:
            floor.arrived(raw)

    clients = await asyncio.gather(*(connect() for _ in range(n)))
    tasks = [asyncio.create_task(reader(ws)) for ws in clients]
    record["missed"] = 0
    try:
        await asyncio.sleep(0.1)
        await floor.rounds(clients[0].send, rounds, size, record)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)
    return record


async def run_redis_floor(n: int, rounds: int, size: int, record: dict) -> dict:
    """One Redis PUBLISH to N subscribed connections (each its own connection, as N processes
    would have); time until the last subscriber has the message."""
    import redis.asyncio as aredis

    url = os.environ["REDIS_URL"]
    channel = f"{os.environ.get('CHANNEL_PREFIX', 'calma')}.fanout-floor.{uuid.uuid4().hex[:8]}"
    publisher = aredis.Redis.from_url(url)
    conns = [aredis.Redis.from_url(url) for _ in range(n)]
    subs = [c.pubsub() for c in conns]
    await asyncio.gather(*(s.subscribe(channel) for s in subs))
    # Subscribed: Redis counts every subscriber before the first PUBLISH.
    deadline = time.monotonic() + 60
    while (await publisher.pubsub_numsub(channel))[0][1] < n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    floor = _Floor(n)

    async def reader(sub):
        async for message in sub.listen():
            if message["type"] == "message":
                floor.arrived(message["data"])

    tasks = [asyncio.create_task(reader(s)) for s in subs]
    record["missed"] = 0
    try:
        await floor.rounds(lambda text: publisher.publish(channel, text), rounds, size, record)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for s in subs:
            await s.aclose()
        await asyncio.gather(*(c.aclose() for c in conns), return_exceptions=True)
        await publisher.aclose()
    return record


def measure(record: dict, run) -> None:
    """One measurement: the coroutine `run` fills `record` (PARTIAL.current meanwhile); a lost
    socket ends this run, not the benchmark; the summary is kept in PARTIAL.results and printed."""
    PARTIAL.current = record
    try:
        asyncio.run(run)
    except (TimeBound, KeyboardInterrupt):
        raise
    except Exception as error:  # noqa: BLE001 - a lost socket ends this run, not the benchmark
        record["error"] = f"{error.__class__.__name__}: {error}"[:200]
    finally:
        record["loadavg_1m"] = round(os.getloadavg()[0], 2)
        PARTIAL.results.append(summarise(record))
        PARTIAL.current = None
        print(json.dumps(PARTIAL.results[-1]), flush=True)


def summarise(record: dict) -> dict:
    out = {k: v for k, v in record.items() if k != "latencies"}
    out.update(percentiles(record.get("latencies", [])))
    return out


def print_table(results: list[dict], args) -> None:
    print(f"\nlayer={args.layer} ws={args.ws} deflate={args.deflate} workers={args.workers} client-loop={args.client_loop}")
    print(f"{'clients':>7} {'what':<14} {'median ms':>10} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'n':>4} {'missed':>6} "
          f"{'x ws p99':>8} {'bytes':>6} {'spread p99':>10} {'reply ms':>8} {'cpu/change ms: client':>22} {'server':>7} {'redis':>6} {'load':>5}")
    floors: dict[tuple, float] = {}
    for r in results:
        if r["what"] == "ws floor" and r.get("p99"):
            floors[(r["clients"], r["repeat"])] = r["p99"]
    for r in results:
        floor = floors.get((r["clients"], r["repeat"]))
        ratio = f"{r['p99'] / floor:.1f}" if floor and r.get("p99") else "-"
        print(f"{r['clients']:>7} {r['what']:<14} {r.get('median', '-'):>10} {r.get('p95', '-'):>8} {r.get('p99', '-'):>8} "
              f"{r.get('max', '-'):>8} {r.get('n', 0):>4} {r.get('missed', '-'):>6} {ratio:>8} {r.get('event_bytes') or '-'!s:>6} {r.get('spread_p99') or '-'!s:>10} "
              f"{r.get('sender_reply_median') or '-'!s:>8} {r.get('client_cpu_ms') or '-'!s:>22} "
              f"{r.get('server_cpu_ms') or '-'!s:>7} {r.get('redis_cpu_ms') or '-'!s:>6} {r.get('loadavg_1m', '-'):>5}")


class TimeBound(Exception):
    pass


def _alarm(*_):
    raise TimeBound()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", default="100,300")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=1, help="floor and board measured this many times, interleaved")
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--floor", choices=["on", "off"], default="on")
    parser.add_argument("--server-root", default=str(ROOT), help="checkout the board server runs from")
    parser.add_argument("--label", default="", help="a name for this server in the table (e.g. before/after)")
    parser.add_argument("--layer", choices=["app", "core", "pubsub"], default="app",
                        help="the board's channel layer: app = as configured (DISCUSSION_BOARD_LAYER); "
                             "core = channels_redis RedisChannelLayer; pubsub = RedisPubSubChannelLayer")
    parser.add_argument("--ws", choices=["auto", "websockets", "websockets-sansio", "wsproto"], default="auto",
                        help="uvicorn's websocket implementation")
    parser.add_argument("--deflate", choices=["on", "off"], default="on",
                        help="uvicorn's per-message-deflate offer (the clients accept it, as browsers do)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--client-loop", choices=["asyncio", "uvloop"], default="asyncio",
                        help="event loop of this benchmark's client process")
    parser.add_argument("--conn-max-age", type=int, default=0,
                        help="persistent DB connections in the server (the app's settings use a pool)")
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(args.timeout)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 16384), hard))
    print("before:", uptime(), flush=True)

    sys.path.insert(0, str(ROOT))
    setup_django()
    from discussion import services
    from discussion.models import BoardPresence

    port, floor_port = free_port(), free_port()
    server = start_server(port, args, root=Path(args.server_root))
    floor = start_server(floor_port, args, app="benchmarks.discussion_fanout:floor_app") if args.floor == "on" else None
    if args.client_loop == "uvloop":
        import uvloop

        uvloop.install()
    label = args.label or ("board" if args.server_root == str(ROOT) else f"board@{Path(args.server_root).name}")
    interrupted = None
    try:
        for n in [int(x) for x in args.clients.split(",")]:
            for repeat in range(args.repeat):
                workshop, fac, members = make_workshop("dfan", participants=n - 1)
                services.session_set_segment(workshop=workshop, by=fac, segment=4)
                axis = services.axis_create(membership=fac, name="start", definition="d")
                cookies = [session_cookie(fac.user)] + [session_cookie(m.user) for m in members]
                base = {"clients": n, "repeat": repeat, "layer": args.layer, "ws": args.ws, "deflate": args.deflate,
                        "workers": args.workers}
                board = {**base, "what": label}
                try:
                    measure(board, run_board(port, workshop.slug, cookies, args.rounds, axis.pk, server.pid,
                                             axis.version, board))
                finally:
                    BoardPresence.objects.filter(workshop=workshop).delete()
                size = board.get("event_bytes") or 400
                if floor is not None:
                    for what, run in (("ws floor", lambda rec: run_ws_floor(floor_port, n, args.rounds, size, rec)),
                                      ("redis floor", lambda rec: run_redis_floor(n, args.rounds, size, rec))):
                        rec = {**base, "what": what, "event_bytes": size}
                        measure(rec, run(rec))
    except (TimeBound, KeyboardInterrupt) as stop_reason:
        interrupted = "time bound reached" if isinstance(stop_reason, TimeBound) else "interrupted"
    finally:
        signal.alarm(0)
        stop_process(server)
        if floor is not None:
            stop_process(floor)
    if interrupted:
        print(f"\n{interrupted}: partial results follow (rounds measured so far)")
    print_table(PARTIAL.results, args)
    for r in PARTIAL.results:
        if r.get("error"):
            print(f"{r['clients']} clients, {r['what']}: stopped after {r.get('n', 0)} rounds: {r['error']}")
    print("after:", uptime(), flush=True)


if __name__ == "__main__":
    main()
