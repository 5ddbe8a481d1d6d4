"""Benchmark: board fan-out through the real ASGI server and the Redis channel layer.

Starts the app under uvicorn on loopback (its own database, Redis from REDIS_URL), connects
N logged-in websocket clients to one board (/ws/w/<slug>/board/), lets the join storm settle,
then one client edits a card --rounds times. For each change: time from the sender's send to
the moment the last of the N clients has received the change (the sender included), with all
clients in this one process on the same 2-core machine. Reports median and p99 per N, and
the CPU each side used per change (this client process, the server processes, Redis), so a
run shows whether the clients themselves compete with the server for the two cores.
Target: p99 under 100 ms at 100 clients.

  .venv/bin/python -m benchmarks.discussion_fanout [--clients 30,100,300] [--rounds 40] [--timeout 600]
      [--layer app|core|pubsub] [--ws auto|websockets|websockets-sansio|wsproto] [--deflate on|off]
      [--workers 1] [--client-loop asyncio|uvloop] [--conn-max-age 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.discussion_common import make_workshop, percentiles, session_cookie, setup_django

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, args) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    if args.layer != "app":
        env["DISCUSSION_BOARD_LAYER"] = "redis" if args.layer == "core" else "pubsub"
    if args.conn_max_age:
        env.update({"DJANGO_SETTINGS_MODULE": "benchmarks.discussion_bench_settings",
                    "BENCH_CONN_MAX_AGE": str(args.conn_max_age)})
    env.update({"DEBUG": "0", "CALMA_TESTING": "1", "SECURE_COOKIES": "0", "ALLOWED_HOSTS": "127.0.0.1",
                "LOG_LEVEL": "WARNING", "DISCUSSION_SOCKET_RATE": "1000"})
    command = [sys.executable, "-m", "uvicorn", "calma.asgi:application", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log", "--ws", args.ws,
               "--ws-per-message-deflate", "true" if args.deflate == "on" else "false"]
    if args.workers > 1:
        command += ["--workers", str(args.workers)]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=open("/tmp/discussion_fanout_server.log", "w"),
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                time.sleep(1 if args.workers > 1 else 0)  # let every worker come up
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start")


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


async def run_board(port: int, slug: str, cookies: list[str], rounds: int, axis_id: int, server_pid: int) -> dict:
    import websockets

    url = f"ws://127.0.0.1:{port}/ws/w/{slug}/board/"
    origin = f"http://127.0.0.1:{port}"
    n = len(cookies)
    received: dict[int, list[float]] = {}
    seen_all: dict[int, asyncio.Event] = {}
    clients = []

    async def reader(ws):
        async for raw in ws:
            now = time.perf_counter()
            msg = json.loads(raw)
            if msg.get("kind") in ("card", "card_text"):
                name = msg["payload"]["card"]["name"]
                if name.startswith("round "):
                    r = int(name.split()[1])
                    stamps = received.setdefault(r, [])
                    stamps.append(now)
                    if len(stamps) == n and r in seen_all:
                        seen_all[r].set()
            elif msg.get("kind") == "saved":
                saved_at.append(now)
                saved.put_nowait(msg["payload"]["version"])

    saved: asyncio.Queue = asyncio.Queue()
    saved_at: list[float] = []
    saved_ms: list[float] = []
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(50)

    async def connect(cookie):
        async with sem:
            ws = await websockets.connect(url, additional_headers={"Cookie": cookie}, origin=origin,
                                          max_size=2 ** 20, open_timeout=60, ping_interval=None)
            hello = json.loads(await ws.recv())
            assert hello["kind"] == "hello", hello
            return ws

    clients = await asyncio.gather(*(connect(c) for c in cookies))
    connect_s = time.perf_counter() - t0
    tasks = [asyncio.create_task(reader(ws)) for ws in clients]
    await asyncio.sleep(min(20, 2 + n / 20))  # let the presence storm of the joins settle
    sender = clients[0]
    version = 1
    latencies = []
    missed = 0
    cpu0 = (client_cpu_s(), server_cpu_s(server_pid), redis_cpu_s())
    for r in range(rounds):
        seen_all[r] = asyncio.Event()
        start = time.perf_counter()
        await sender.send(json.dumps({"action": "card.update", "ref": r,
                                      "data": {"id": axis_id, "name": f"round {r}", "definition": "d", "version": version}}))
        try:
            await asyncio.wait_for(seen_all[r].wait(), timeout=10)
            latencies.append((max(received[r]) - start) * 1000)
        except asyncio.TimeoutError:
            missed += 1
        version = await asyncio.wait_for(saved.get(), timeout=10)
        saved_ms.append(saved_at[-1] - start)
        await asyncio.sleep(0.25)
    cpu1 = (client_cpu_s(), server_cpu_s(server_pid), redis_cpu_s())
    for t in tasks:
        t.cancel()
    await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)
    service = percentiles([x * 1000 for x in saved_ms])
    per_change = {f"{name}_cpu_ms": (round((b - a) * 1000 / rounds, 1) if a is not None and b is not None else None)
                  for name, a, b in zip(("client", "server", "redis"), cpu0, cpu1)}
    return {"clients": n, "connect_s": round(connect_s, 1), "missed": missed, **percentiles(latencies),
            "sender_reply_median": service.get("median"), **per_change}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", default="30,100,300")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--timeout", type=int, default=600)
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
    signal.signal(signal.SIGALRM, lambda *a: sys.exit("benchmark exceeded its time bound"))
    signal.alarm(args.timeout)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))

    setup_django()
    from discussion import services
    from discussion.models import BoardPresence

    port = free_port()
    server = start_server(port, args)
    if args.client_loop == "uvloop":
        import uvloop

        uvloop.install()
    results = []
    try:
        for n in [int(x) for x in args.clients.split(",")]:
            workshop, fac, members = make_workshop("dfan", participants=n - 1)
            services.session_set_segment(workshop=workshop, by=fac, segment=4)
            axis = services.axis_create(membership=fac, name="start", definition="d")
            cookies = [session_cookie(fac.user)] + [session_cookie(m.user) for m in members]
            result = asyncio.run(run_board(port, workshop.slug, cookies, args.rounds, axis.pk, server.pid))
            result.update({"layer": args.layer, "ws": args.ws, "deflate": args.deflate, "workers": args.workers,
                           "client_loop": args.client_loop, "conn_max_age": args.conn_max_age,
                           "loadavg_1m": round(os.getloadavg()[0], 2)})
            results.append(result)
            print(json.dumps(result), flush=True)
            BoardPresence.objects.filter(workshop=workshop).delete()
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    print(f"\nlayer={args.layer} ws={args.ws} deflate={args.deflate} workers={args.workers} client-loop={args.client_loop}")
    print(f"{'clients':>7} {'median ms':>10} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'missed':>6} {'connect s':>9} "
          f"{'reply ms':>8} {'cpu/change ms: client':>22} {'server':>7} {'redis':>6} {'load':>5}")
    for r in results:
        print(f"{r['clients']:>7} {r.get('median', '-'):>10} {r.get('p95', '-'):>8} {r.get('p99', '-'):>8} "
              f"{r.get('max', '-'):>8} {r['missed']:>6} {r['connect_s']:>9} {r.get('sender_reply_median', '-'):>8} "
              f"{r['client_cpu_ms']!s:>22} {r['server_cpu_ms']!s:>7} {r['redis_cpu_ms']!s:>6} {r['loadavg_1m']:>5}")


if __name__ == "__main__":
    main()
