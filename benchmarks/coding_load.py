"""Benchmark: 100 participants creating annotations at once, through the real ASGI server.

Seeds a workshop in the Reflect stage with --participants participants (each with a logged-in
session and a conversation), starts the app under uvicorn on loopback against Postgres and
Redis (the channel layer carries the dashboard events each annotation sends), and drives it
with httpx.AsyncClient, one client per participant:

- floor / sequential: one client, one request after another: an authenticated POST that ends
  in a 404 (the part of the round trip this feature does not control) and the create itself.
- paced: every participant creates an annotation, waits a think time drawn from
  [--think-min, --think-max] seconds (people read, select and type between codes), and
  repeats, for --duration seconds. This is "100 participants coding at once".
- burst: all participants send one annotation at the same instant, --bursts times: the
  worst case, where requests queue behind each other. Target: median under 500 ms.

Side by side in one run: with --compare, the same scenarios also run against a second server
started with another configuration (its variant), and the bursts of the two alternate (A, B,
A, B, ...), so both see the same load from the rest of the machine. The variants:

  before            the server as it was before the burst work: no concurrency limit and the
                    middleware chain in async mode (a thread hop per middleware hook)
  unlimited         HTTP_CONCURRENCY=0: every request straight into Django (calma/asgi.py)
  mixed-middleware  the old middleware chain (benchmarks/coding_bench_settings.py), with the limit

Each request is the real POST the page sends (span + code + memo, CSRF and session) and
returns the re-rendered turn. Reports median / p95 / p99 round trip in ms, the server-side
time of every request (benchmarks/coding_timed_asgi.py: an `x-server-ms` header, from the app
receiving the request to the start of its response), the CPU the server processes spent per
paced create, the CPU of the load generator itself (it shares the cores), and the machine's
load (`uptime`) before and after, since the machine may be shared.

Time is bounded: the server is waited for until /healthz answers (--ready-timeout, not a fixed
delay), and the whole run has a budget; when it runs out, or on Ctrl-C, what was measured so
far is printed before exiting.

  .venv/bin/python -m benchmarks.coding_load [--participants 100] [--duration 45] [--workers 2]
      [--bursts 3] [--compare before] [--profile /tmp/burst]   (py-spy on the server during the bursts)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from benchmarks import coding_common as common
from tests.fixtures_llm import free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("floor_404", "sequential", "paced", "burst")
MIXED = "benchmarks.coding_bench_settings"
VARIANTS = {
    "as configured": {},
    "before": {"HTTP_CONCURRENCY": "0", "DJANGO_SETTINGS_MODULE": MIXED},
    "unlimited": {"HTTP_CONCURRENCY": "0"},
    "mixed-middleware": {"DJANGO_SETTINGS_MODULE": MIXED},
}
CODES = ["neutral but nuanced", "factual", "dry", "incomplete", "American viewpoint", "respectful",
         "encouraging", "too long", "assumes Western norms", "clear"]


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        one, five, fifteen = os.getloadavg()
        return f"load average: {one:.2f}, {five:.2f}, {fifteen:.2f}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children so far (Linux /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def seed(n: int):
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from llm_gateway.models import Message

    workshop = common.make_workshop("bench-load")
    people = []
    for i in range(n):
        participant = common.make_participant(workshop, i + 1)
        conv = common.make_conversation(participant, 3)
        session = SessionStore()
        session[SESSION_KEY] = str(participant.user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = participant.user.get_session_auth_hash()
        session.create()
        answers = list(Message.objects.filter(conversation=conv, role="assistant").values_list("id", "content"))
        people.append({"session": session.session_key, "answers": answers, "csrf": secrets.token_hex(16)})
    return workshop, people, settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME


class Server:
    """One uvicorn server of one variant, and everything measured against it."""

    def __init__(self, name: str, env: dict, workers: int, root: Path | None = None):
        self.name, self.port = name, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        root = root or ROOT  # --server-root: another source tree (the code before a change)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "benchmarks.coding_timed_asgi:application", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning", "--no-access-log", "--workers", str(workers),
             "--timeout-keep-alive", "75"],
            cwd=root, env={**env, **VARIANTS.get(name, {}), "PYTHONPATH": str(root)},
        )
        self.started = time.monotonic()
        self.ready_after: float | None = None
        self.round_trip: dict[str, list[float]] = {k: [] for k in SCENARIOS}
        self.server_ms: dict[str, list[float]] = {k: [] for k in SCENARIOS}
        self.errors: dict[str, list] = {k: [] for k in SCENARIOS}
        self.burst_loads: list[float] = []
        self.server_cpu_ms: float | None = None
        self.client_cpu: tuple[float, float] | None = None
        self.clients: list = []
        self.spy: subprocess.Popen | None = None

    async def wait_ready(self, timeout: float) -> None:
        """Until GET /healthz answers 200 (migrations, imports and the database are ready)."""
        import httpx

        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.base, timeout=5) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise SystemExit(f"[{self.name}] server exited with {self.proc.returncode}")
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        self.ready_after = time.monotonic() - self.started
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise SystemExit(f"[{self.name}] server not ready after {timeout:.0f} s (--ready-timeout)")

    def record(self, scenario: str, value) -> None:
        if value is None:
            return
        elapsed, server_ms = value
        self.round_trip[scenario].append(elapsed)
        if server_ms is not None:
            self.server_ms[scenario].append(server_ms)

    def stop(self) -> None:
        if self.spy is not None and self.spy.poll() is None:
            self.spy.terminate()
        stop_process(self.proc)


def _server_ms(response) -> float | None:
    try:
        return float(response.headers["x-server-ms"])
    except (KeyError, ValueError):
        return None


async def one_request(server: Server, scenario: str, client, url, person, rng, counter):
    import httpx

    message_id, content = rng.choice(person["answers"])
    start, end = common.random_span(rng, len(content))
    counter[0] += 1
    data = {"message": message_id, "start": start, "end": end,
            "code": [rng.choice(CODES), f"note {counter[0] % 50}"], "memo": ""}
    t0 = time.perf_counter()
    headers = {"X-CSRFToken": person["csrf"], "X-Coding": "1"}
    try:
        response = await client.post(url, data=data, headers=headers)
    except (httpx.ReadError, httpx.RemoteProtocolError):
        # The server closed an idle keep-alive connection just as it was reused (uvicorn closes
        # them after 5 s; participants pause longer). Browsers resend in this case; so do we,
        # and the time of both attempts counts.
        try:
            response = await client.post(url, data=data, headers=headers)
        except httpx.TransportError as exc:
            server.errors[scenario].append(exc.__class__.__name__)
            return None
    except httpx.TransportError as exc:  # the server dropped the connection: a failure, not a crash
        server.errors[scenario].append(exc.__class__.__name__)
        return None
    elapsed = (time.perf_counter() - t0) * 1000
    if response.status_code != 201:
        if response.status_code in (400, 403):  # a broken benchmark, not a slow server
            raise RuntimeError(f"unexpected {response.status_code}: {response.text[:200]}")
        server.errors[scenario].append(response.status_code)
        return None
    return elapsed, _server_ms(response)


async def run(servers: list[Server], url: str, people, cookie_names, args) -> None:
    """Everything measured goes into the Server objects as it comes (kept on a timeout)."""
    import httpx

    session_cookie, csrf_cookie = cookie_names
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
    await asyncio.gather(*(s.wait_ready(args.ready_timeout) for s in servers))
    for s in servers:
        print(f"[{s.name}] ready after {s.ready_after:.1f} s (GET /healthz answered 200)", flush=True)
        s.clients = [httpx.AsyncClient(base_url=s.base, limits=limits, timeout=60,
                                       cookies={session_cookie: p["session"], csrf_cookie: p["csrf"]})
                     for p in people]
    counter = [0]
    try:
        for s in servers:
            # Warm up: one request per client (connections, templates), ten at a time, not measured.
            for start in range(0, len(people), 10):
                await asyncio.gather(*(one_request(s, "burst", s.clients[i], url, people[i], random.Random(i), counter)
                                       for i in range(start, min(start + 10, len(people)))))
            s.errors["burst"].clear()
            # Floor: the same annotation POST, and an authenticated POST that stops at a 404 after
            # the session, user, workshop and membership look-ups: the part of the round trip this
            # feature does not control (server, middleware, connection set-up).
            person, client, rng = people[0], s.clients[0], random.Random(7)
            for _ in range(30):
                t0 = time.perf_counter()
                response = await client.post(url + "0/memo/", data={"memo": "x"},
                                             headers={"X-CSRFToken": person["csrf"], "X-Coding": "1"})
                s.record("floor_404", ((time.perf_counter() - t0) * 1000, _server_ms(response)))
                s.record("sequential", await one_request(s, "sequential", client, url, person, rng, counter))

        for s in servers:
            if args.duration <= 0:
                break
            print(f"[{s.name}] paced phase, {args.duration:.0f} s ...", flush=True)
            cpu_before, client_before = cpu_seconds(s.proc.pid), time.process_time()
            stop = time.monotonic() + args.duration

            async def participant(i, s=s, stop=stop):
                rng = random.Random(1000 + i)
                await asyncio.sleep(rng.uniform(0, args.think_max))  # people do not start in lockstep
                while time.monotonic() < stop:
                    s.record("paced", await one_request(s, "paced", s.clients[i], url, people[i], rng, counter))
                    await asyncio.sleep(rng.uniform(args.think_min, args.think_max))

            await asyncio.gather(*(participant(i) for i in range(len(people))))
            n = max(1, len(s.round_trip["paced"]))
            s.server_cpu_ms = (cpu_seconds(s.proc.pid) - cpu_before) * 1000 / n
            client_cpu = time.process_time() - client_before
            s.client_cpu = (client_cpu * 1000 / n, client_cpu / args.duration)

        if args.profile:
            for s in servers:
                spy = Path(sys.executable).parent / "py-spy"
                out = f"{args.profile}-{s.name.replace(' ', '-')}.txt"
                s.spy = subprocess.Popen([str(spy), "record", "--pid", str(s.proc.pid), "--subprocesses", "--gil",
                                          "--rate", "250", "--format", "raw", "--output", out, "--nonblocking"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                print(f"[{s.name}] py-spy (--gil: where the interpreter's time goes) -> {out}", flush=True)
            await asyncio.sleep(2)
        for b in range(args.bursts):
            for s in servers:  # alternate the variants: both see the same load from the rest of the machine
                rngs = [random.Random(5000 + b * 1000 + i) for i in range(len(people))]
                s.burst_loads.append(os.getloadavg()[0])
                times = await asyncio.gather(*(one_request(s, "burst", s.clients[i], url, people[i], rngs[i], counter)
                                               for i in range(len(people))))
                for value in times:
                    s.record("burst", value)
                await asyncio.sleep(0.5)
    finally:
        for s in servers:
            if s.spy is not None:
                s.spy.send_signal(2)  # SIGINT: py-spy writes its file
                try:
                    await asyncio.to_thread(s.spy.wait, 30)
                except subprocess.TimeoutExpired:
                    s.spy.kill()
        await asyncio.gather(*(c.aclose() for s in servers for c in s.clients))


def report(servers: list[Server], args, started_load: str) -> None:
    print(f"\n{args.participants} participants, uvicorn workers per server: {args.workers}, "
          f"{os.cpu_count()} CPUs shared with the load generator, Postgres and Redis")
    print(f"uptime before: {started_load}")
    print(f"uptime after:  {uptime()}")
    for s in servers:
        print(f"\n[{s.name}] {' '.join(f'{k}={v}' for k, v in VARIANTS.get(s.name, {}).items()) or 'the app settings'}")
        if s.server_cpu_ms is not None:
            print(f"    server CPU per paced request (uvicorn processes, all threads): {s.server_cpu_ms:.1f} ms")
        if s.client_cpu is not None:
            print(f"    load generator CPU during the paced phase: {s.client_cpu[0]:.1f} ms per request, "
                  f"{100 * s.client_cpu[1]:.0f} % of one core")
        if s.burst_loads:
            print(f"    1-minute load average at each burst: {' '.join(f'{x:.1f}' for x in s.burst_loads)}")
        failed = {k: v for k, v in s.errors.items() if v}
        print("    failed requests: " + (", ".join(f"{k} {len(v)} ({', '.join(f'{e}: {n}' for e, n in Counter(map(str, v)).most_common())})"
                                              for k, v in failed.items()) or "none"))
        for name in SCENARIOS:
            values = s.round_trip[name]
            if not values:
                continue
            p = common.percentiles(values)
            extra = {
                "floor_404": "one client, authenticated POST to a missing highlight (session, user, workshop, "
                             "membership, 404 page)",
                "sequential": "one client, one after another",
                "paced": f"think time {args.think_min}-{args.think_max} s, {p['n'] / max(args.duration, 1):.0f} req/s",
                "burst": f"{args.participants} simultaneous requests x {len(s.burst_loads)}",
            }[name]
            print(f"    {name}: {p['n']} requests ({extra}): round-trip ms median {p['median']:.1f}  "
                  f"p95 {p['p95']:.1f}  p99 {p['p99']:.1f}  max {p['max']:.1f}")
            if s.server_ms[name]:
                t = common.percentiles(s.server_ms[name])
                print(f"        server side (x-server-ms): median {t['median']:.1f}  p95 {t['p95']:.1f}  "
                      f"p99 {t['p99']:.1f}")
    # Side by side: one column per server.
    width = max(16, *(len(s.name) + 2 for s in servers))
    print("\nside by side, round-trip ms median / p95 (server side median):")
    print(f"    {'scenario':12s}" + "".join(f"{s.name:>{width + 14}s}" for s in servers))
    for name in SCENARIOS:
        cells = []
        for s in servers:
            values = s.round_trip[name]
            if not values:
                cells.append(f"{'—':>{width + 14}s}")
                continue
            p = common.percentiles(values)
            srv = common.percentiles(s.server_ms[name])["median"] if s.server_ms[name] else float("nan")
            cells.append(f"{p['median']:>{width - 2}.1f} / {p['p95']:6.1f} ({srv:5.1f})")
        print(f"    {name:12s}" + "".join(cells))
    target = [s for s in servers if s.round_trip["burst"]]
    for s in target:
        median = common.percentiles(s.round_trip["burst"])["median"]
        print(f"burst median [{s.name}]: {median:.0f} ms -> target < 500 ms {'met' if median < 500 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=100)
    parser.add_argument("--duration", type=float, default=45.0, help="seconds of paced coding per server (0: none)")
    parser.add_argument("--think-min", type=float, default=2.0,
                        help="seconds between a participant's saves, at least (reading, selecting, typing)")
    parser.add_argument("--think-max", type=float, default=10.0)
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2,
                        help="uvicorn worker processes per server (docker-compose.yml's web runs 2; make run 1)")
    parser.add_argument("--compare", choices=[v for v in VARIANTS if v != "as configured"], action="append",
                        default=[], help="also run this variant, side by side (repeatable)")
    parser.add_argument("--compare-env", action="append", default=[], metavar="NAME=VALUE[,NAME=VALUE]",
                        help="also run a server with these environment variables, side by side (repeatable)")
    parser.add_argument("--server-root", metavar="DIR",
                        help="also run the server from this source tree (e.g. a checkout of the previous "
                             "release), side by side, burst by burst")
    parser.add_argument("--ready-timeout", type=float, default=300.0,
                        help="seconds to wait for each server's /healthz (a loaded machine starts slowly)")
    parser.add_argument("--budget", type=float, default=0,
                        help="seconds for the whole measurement (default: from duration and bursts); on "
                             "running out, what was measured is printed")
    parser.add_argument("--profile", metavar="PREFIX",
                        help="record each server with py-spy during the bursts into PREFIX-<variant>.txt")
    args = parser.parse_args()
    for spec in args.compare_env:
        VARIANTS[spec] = dict(item.split("=", 1) for item in spec.split(","))
        args.compare.append(spec)
    started_load = uptime()
    print(f"uptime: {started_load}", flush=True)
    url_db = common.setup_django()

    from django.urls import reverse

    from coding.models import Annotation

    workshop, people, session_cookie, csrf_cookie = seed(args.participants)
    env = {**os.environ, "DATABASE_URL": url_db, "CALMA_TESTING": "1", "DEBUG": "0", "SECURE_COOKIES": "0",
           "AXES_ENABLED": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost", "LOG_LEVEL": "ERROR"}
    servers = [Server(name, env, args.workers) for name in ["as configured", *args.compare]]
    if args.server_root:
        servers.append(Server(f"tree {Path(args.server_root).name}", env, args.workers, Path(args.server_root)))
    budget = args.budget or (args.ready_timeout + len(servers) * (args.duration + args.bursts * 60 + 60))
    url = reverse("coding:annotation_create", args=[workshop.slug])
    outcome = "complete"
    try:
        asyncio.run(asyncio.wait_for(run(servers, url, people, (session_cookie, csrf_cookie), args), timeout=budget))
    except (TimeoutError, asyncio.TimeoutError):
        outcome = f"TIMED OUT after the budget of {budget:.0f} s: partial results"
    except KeyboardInterrupt:
        outcome = "INTERRUPTED: partial results"
    finally:
        for s in servers:
            s.stop()
        try:
            total = Annotation.objects.filter(membership__workshop=workshop).count()
            report(servers, args, started_load)
            print(f"annotations stored: {total}; run {outcome}")
        finally:
            common.cleanup(workshop)
    if outcome != "complete":
        sys.exit(2)


if __name__ == "__main__":
    main()
