"""Benchmark: listing 100,000 annotations through the JSON API, page by page and streamed.

Seeds a workshop with --participants participants and N annotations (each with a code), for
each N of --sizes (cumulative: the same workshop grows), starts the app under uvicorn on
loopback against Postgres and Redis (a fresh server per size, so its peak memory belongs to
that size) and reads, with a researcher's personal token:

- pages: /api/v1/workshops/<slug>/annotations?limit=--limit, following next_cursor to the end:
  time per page (median, p99, max) and the total;
- stream: /api/v1/workshops/<slug>/annotations/stream (NDJSON), read to the end: total time,
  rows, MB;
- the server's peak resident memory (VmHWM of the uvicorn process) after both. It must stay
  flat as N grows (keyset pages; the stream reads keyset batches).

  CALMA_TESTING=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/calma_studies \
  REDIS_URL=redis://127.0.0.1:6379/9 CHANNEL_PREFIX=studies \
  .venv/bin/python -m benchmarks.api_annotations [--sizes 25000,100000] [--limit 1000]

Works in its own database (DATABASE_URL's name + "_bench", benchmarks/coding_common.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import coding_common as common
from benchmarks.gateway_common import free_port, wait_healthy
from tests.fixtures_llm import stop_process

ROOT = Path(__file__).resolve().parent.parent


def seed(workshop, participants: list, target: int, rng: random.Random) -> None:
    """Grow the workshop's annotations to `target` (bulk inserts, one code per annotation)."""
    from coding.models import Annotation, AnnotationCode, Code

    have = Annotation.objects.filter(membership__workshop=workshop).count()
    messages = {p.pk: p.conversations.first().messages.filter(role="assistant").first() for p in participants}
    codes = {p.pk: Code.objects.get_or_create(workshop=workshop, membership=p, text="bias",
                                              defaults={"normalized": "bias"})[0] for p in participants}
    batch = 5000
    while have < target:
        n = min(batch, target - have)
        rows = []
        for i in range(n):
            n_all = have + i
            p = participants[n_all % len(participants)]
            message = messages[p.pk]
            k = n_all // len(participants)  # this person's k-th annotation: a span of its own
            room = len(message.content) - 60
            start, end = k % room, k % room + 20 + (k // room) % 40
            rows.append(Annotation(membership=p, message=message, start=start, end=end,
                                   excerpt=message.content[start:end], memo="memo" if n_all % 3 else ""))
        made = Annotation.objects.bulk_create(rows)
        AnnotationCode.objects.bulk_create([AnnotationCode(annotation=a, code=codes[a.membership_id]) for a in made])
        have += n


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_size(url: str, base_env: dict, slug: str, token: str, limit: int) -> dict:
    import httpx

    port = free_port()
    env = {**base_env, "DEBUG": "0", "SECURE_COOKIES": "0", "AXES_ENABLED": "0", "API_RATE_LIMIT": "1000000/m",
           "ALLOWED_HOSTS": "127.0.0.1,localhost", "DATABASE_URL": url}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "calma.asgi:application", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning", "--no-access-log"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, timeout=300)
        base = f"http://127.0.0.1:{port}/api/v1/workshops/{slug}/annotations"
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(headers=headers, timeout=120) as client:
            client.get(base, params={"limit": 1})  # warm up (imports, first connection)
            rss_idle = peak_rss_mb(proc.pid)
            times, rows, cursor = [], 0, None
            started = time.perf_counter()
            while True:
                params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
                t0 = time.perf_counter()
                response = client.get(base, params=params)
                data = response.json()
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, response.text[:300]
                rows += len(data["items"])
                cursor = data["next_cursor"]
                if not cursor:
                    break
            pages_total = time.perf_counter() - started
            rss_pages = peak_rss_mb(proc.pid)
            t0 = time.perf_counter()
            streamed, size = 0, 0
            with client.stream("GET", base + "/stream") as response:
                assert response.status_code == 200
                for line in response.iter_lines():
                    if line:
                        streamed += 1
                        size += len(line) + 1
            stream_total = time.perf_counter() - t0
            rss_stream = peak_rss_mb(proc.pid)
        p = common.percentiles(times)
        return {"rows": rows, "pages": len(times), "page_median_ms": round(p["median"], 1),
                "page_p99_ms": round(p["p99"], 1), "page_max_ms": round(p["max"], 1),
                "pages_total_s": round(pages_total, 2), "stream_rows": streamed, "stream_mb": round(size / 1e6, 1),
                "stream_total_s": round(stream_total, 2), "rss_after_warmup_mb": round(rss_idle, 1),
                "peak_rss_after_pages_mb": round(rss_pages, 1), "peak_rss_after_stream_mb": round(rss_stream, 1)}
    finally:
        stop_process(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="25000,100000")
    parser.add_argument("--participants", type=int, default=100)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="keep the seeded workshop")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    base_env = dict(os.environ)
    url = common.setup_django()
    from api import services as api_services
    from workshops import services as workshop_services

    rng = random.Random(1)
    workshop = common.make_workshop("api-bench")
    researcher_user = type(workshop.created_by).objects.create(username=f"{workshop.slug}-researcher")
    workshop_services.membership_add(workshop=workshop, user=researcher_user, role="researcher", display_name="R")
    participants = []
    for n in range(args.participants):
        p = common.make_participant(workshop, n)
        common.make_conversation(p, turns=1)
        participants.append(p)
    _token, raw = api_services.token_create(user=researcher_user, name="benchmark")
    results = []
    try:
        for size in sizes:
            t0 = time.perf_counter()
            seed(workshop, participants, size, rng)
            seeded = time.perf_counter() - t0
            result = {"annotations": size, "seed_s": round(seeded, 1), **run_size(url, base_env, workshop.slug, raw,
                                                                                  args.limit)}
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        if not args.keep:
            common.cleanup(workshop)
    print()
    print(f"{'annotations':>11} {'pages':>5} {'median ms':>9} {'p99 ms':>7} {'pages s':>7} {'stream s':>8} "
          f"{'MB':>5} {'RSS idle':>8} {'peak pages':>10} {'peak stream':>11}")
    for r in results:
        print(f"{r['annotations']:>11} {r['pages']:>5} {r['page_median_ms']:>9} {r['page_p99_ms']:>7} "
              f"{r['pages_total_s']:>7} {r['stream_total_s']:>8} {r['stream_mb']:>5} {r['rss_after_warmup_mb']:>8} "
              f"{r['peak_rss_after_pages_mb']:>10} {r['peak_rss_after_stream_mb']:>11}")


if __name__ == "__main__":
    main()
