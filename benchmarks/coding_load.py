"""Benchmark: 100 participants creating annotations at once, through the real ASGI server.

Seeds a workshop in the Reflect stage with --participants participants (each with a logged-in
session and a conversation), starts the app under uvicorn on loopback against Postgres and
Redis (the channel layer carries the dashboard events each annotation sends), and drives it
with httpx.AsyncClient, one client per participant:

- paced: every participant creates an annotation, waits a think time drawn from
  [--think-min, --think-max] seconds (people read, select and type between codes), and
  repeats, for --duration seconds. This is "100 participants coding at once".
- burst: all participants send one annotation at the same instant, --bursts times: the
  worst case, where requests queue behind each other.

Each request is the real POST the page sends (span + code + memo, CSRF and session) and
returns the re-rendered turn. Reports median / p95 / p99 round-trip in ms per scenario.
Target: median under 50 ms (paced). Bounded by --duration and a hard overall timeout.

The load generator runs on the same cores as the server, Postgres and Redis. So that the
figure is fair, the benchmark also reports
- the server-side time of every request (benchmarks/coding_timed_asgi.py puts it in an
  `x-server-ms` header: from the app receiving the request to the start of its response),
- how much CPU the load generator itself used during the paced phase (share of one core),
- the create next to the floor (an authenticated POST that ends in a 404), as a ratio.

  .venv/bin/python -m benchmarks.coding_load [--participants 100] [--duration 30] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import coding_common as common

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit("server did not start")


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


def _server_ms(response) -> float | None:
    try:
        return float(response.headers["x-server-ms"])
    except (KeyError, ValueError):
        return None


async def one_request(client, url, person, rng, counter) -> tuple[float, float | None] | None:
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
            ERRORS.append(exc.__class__.__name__)
            return None
    except httpx.TransportError as exc:  # the server dropped the connection: a failure, not a crash
        ERRORS.append(exc.__class__.__name__)
        return None
    elapsed = (time.perf_counter() - t0) * 1000
    if response.status_code != 201:
        if response.status_code in (400, 403):  # a broken benchmark, not a slow server
            raise RuntimeError(f"unexpected {response.status_code}: {response.text[:200]}")
        ERRORS.append(response.status_code)
        return None
    return elapsed, _server_ms(response)


ERRORS: list[int] = []


CODES = ["neutral but nuanced", "factual", "dry", "incomplete", "American viewpoint", "respectful",
         "encouraging", "too long", "assumes Western norms", "clear"]


async def run(base: str, url: str, people, cookie_names, args) -> dict[str, list[float]]:
    import httpx

    session_cookie, csrf_cookie = cookie_names
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
    clients = [
        httpx.AsyncClient(base_url=base, cookies={session_cookie: p["session"], csrf_cookie: p["csrf"]},
                          limits=limits, timeout=30)
        for p in people
    ]
    results: dict[str, list[float]] = {"floor_404": [], "sequential": [], "paced": [], "burst": []}
    server: dict[str, list[float]] = {k: [] for k in results}

    def record(name, value):
        if value is None:
            return
        elapsed, server_ms = value
        results[name].append(elapsed)
        if server_ms is not None:
            server[name].append(server_ms)

    counter = [0]
    try:
        # Warm up: one request per client (connections, templates), ten at a time, not measured.
        for start in range(0, len(people), 10):
            await asyncio.gather(*(one_request(clients[i], url, people[i], random.Random(i), counter)
                                   for i in range(start, min(start + 10, len(people)))))
        del ERRORS[:]

        # Floor: one client, sequential. The same annotation POST, and an authenticated POST that
        # stops at a 404 after the session, user, workshop and membership look-ups: the part of
        # the round trip this feature does not control (server, middleware, connection set-up).
        person, client = people[0], clients[0]
        rng = random.Random(7)
        missing = url + "0/memo/"
        for _ in range(30):
            t0 = time.perf_counter()
            response = await client.post(missing, data={"memo": "x"},
                                         headers={"X-CSRFToken": person["csrf"], "X-Coding": "1"})
            record("floor_404", ((time.perf_counter() - t0) * 1000, _server_ms(response)))
            record("sequential", await one_request(client, url, person, rng, counter))

        cpu_before = cpu_seconds(args.server_pid)
        client_cpu_before = time.process_time()
        stop = time.monotonic() + args.duration

        async def participant(i, client, person):
            rng = random.Random(1000 + i)
            await asyncio.sleep(rng.uniform(0, args.think_max))  # people do not start in lockstep
            while time.monotonic() < stop:
                record("paced", await one_request(client, url, person, rng, counter))
                await asyncio.sleep(rng.uniform(args.think_min, args.think_max))

        await asyncio.gather(*(participant(i, c, p) for i, (c, p) in enumerate(zip(clients, people))))
        paced_seconds = args.duration
        results["server_cpu_ms_per_request"] = [
            (cpu_seconds(args.server_pid) - cpu_before) * 1000 / max(1, len(results["paced"]))
        ]
        client_cpu = time.process_time() - client_cpu_before
        results["client_cpu"] = [client_cpu * 1000 / max(1, len(results["paced"])), client_cpu / paced_seconds]

        for b in range(args.bursts):
            rngs = [random.Random(5000 + b * 1000 + i) for i in range(len(people))]
            errors_before = len(ERRORS)
            times = await asyncio.gather(
                *(one_request(c, url, p, rngs[i], counter) for i, (c, p) in enumerate(zip(clients, people)))
            )
            for value in times:
                record("burst", value)
            results["burst_errors"] = results.get("burst_errors", []) + ERRORS[errors_before:]
            await asyncio.sleep(0.5)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    results["server"] = server
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--participants", type=int, default=100)
    parser.add_argument("--duration", type=float, default=45.0, help="seconds of paced coding")
    parser.add_argument("--think-min", type=float, default=2.0,
                        help="seconds between a participant's saves, at least (reading, selecting, typing)")
    parser.add_argument("--think-max", type=float, default=10.0)
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--sync-middleware", action="store_true",
                        help="comparison: serve with benchmarks.coding_bench_settings (every middleware sync-only, "
                             "so no event-loop/thread hop per middleware hook)")
    args = parser.parse_args()
    url_db = common.setup_django()

    from django.conf import settings
    from django.urls import reverse

    from coding.models import Annotation

    workshop, people, session_cookie, csrf_cookie = seed(args.participants)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url_db, "CALMA_TESTING": "1", "DEBUG": "0", "SECURE_COOKIES": "0",
           "AXES_ENABLED": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost", "LOG_LEVEL": "WARNING"}
    if args.sync_middleware:
        env["DJANGO_SETTINGS_MODULE"] = "benchmarks.coding_bench_settings"
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "benchmarks.coding_timed_asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log", "--workers", str(args.workers)],
        cwd=ROOT, env=env,
    )
    try:
        wait_for_port(port, proc)
        args.server_pid = proc.pid
        base = f"http://127.0.0.1:{port}"
        url = reverse("coding:annotation_create", args=[workshop.slug])
        budget = args.duration + args.bursts * 30 + 120
        results = asyncio.run(asyncio.wait_for(
            run(base, url, people, (session_cookie, csrf_cookie), args), timeout=budget))
        total = Annotation.objects.filter(membership__workshop=workshop).count()
        pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
        connections = (f"psycopg pool per process (max {pool['max_size']})" if isinstance(pool, dict)
                       else "one per request (no pool)")
        print(f"{args.participants} participants, uvicorn workers: {args.workers}, "
              f"middleware: {'all sync-only (comparison)' if args.sync_middleware else 'as configured'}, "
              f"database connections: {connections}, "
              f"annotations stored: {total}, load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        burst_errors = results.pop("burst_errors", [])
        server_cpu = results.pop("server_cpu_ms_per_request", [0])[0]
        client_ms, client_cores = results.pop("client_cpu", [0, 0])
        server = results.pop("server")
        print(f"server CPU per paced request (uvicorn processes, all threads): {server_cpu:.1f} ms "
              f"-> one core sustains about {1000 / max(server_cpu, 0.1):.0f} annotations/s")
        print(f"load generator CPU during the paced phase: {client_ms:.1f} ms per request, "
              f"{100 * client_cores:.0f} % of one core (of {os.cpu_count()})")
        paced_errors = len(ERRORS) - len(burst_errors)
        from collections import Counter

        kinds = ", ".join(f"{k}: {n}" for k, n in Counter(str(e) for e in ERRORS).most_common())
        print(f"failed requests: paced {paced_errors}, burst {len(burst_errors)}"
              + (f" ({kinds}; a 500 here is Postgres refusing connections beyond max_connections)" if kinds else ""))
        for name, values in results.items():
            if not values:
                continue
            s = common.percentiles(values)
            extra = {
                "floor_404": " (one client, authenticated POST to a missing highlight: session, user, workshop, membership, 404 page)",
                "sequential": " (one client, one after another)",
                "paced": f", think time {args.think_min}-{args.think_max} s, {s['n'] / args.duration:.0f} req/s",
                "burst": f", {args.participants} simultaneous requests x {args.bursts}",
            }[name]
            print(f"{name}: {s['n']} requests{extra}: round-trip ms median {s['median']:.1f}  "
                  f"p95 {s['p95']:.1f}  p99 {s['p99']:.1f}  max {s['max']:.1f}")
            if server[name]:
                t = common.percentiles(server[name])
                print(f"    server-side ms (x-server-ms): median {t['median']:.1f}  p95 {t['p95']:.1f}  "
                      f"p99 {t['p99']:.1f}")
        floor = results["floor_404"]
        if floor:
            def med(values):
                return common.percentiles(values)["median"] if values else float("nan")

            rows = [("round trip", results), ("server side", server)]
            print("create vs the 404 floor (median ms, ratio create / floor; create minus floor = this feature's share):")
            for label, source in rows:
                f = med(source["floor_404"])
                for name in ("sequential", "paced"):
                    c = med(source[name])
                    print(f"    {label:11s} {name:10s}: create {c:6.1f}  floor {f:6.1f}  ratio {c / f:4.2f}  "
                          f"difference {c - f:6.1f}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        common.cleanup(workshop)


if __name__ == "__main__":
    main()
