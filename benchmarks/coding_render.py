"""Benchmark: server-side rendering of a transcript page with 40 turns and 300 highlights.

Builds a participant's conversation of 40 question/answer turns with 300 overlapping
highlights (1-3 codes each) in the benchmark database, then requests the coding page through
Django's full request stack (middleware, auth, permissions, template) and reports the
median and p95 time. Target: under 150 ms. Bounded: at most --runs requests or --budget seconds.

  .venv/bin/python -m benchmarks.coding_render [--runs 60] [--budget 60]
"""

from __future__ import annotations

import argparse
import os
import random
import time

from benchmarks import coding_common as common


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--highlights", type=int, default=300)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--budget", type=float, default=60.0, help="stop measuring after this many seconds")
    args = parser.parse_args()
    common.setup_django()

    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from coding import services
    from llm_gateway.models import Message

    rng = random.Random(42)
    workshop = common.make_workshop("bench-render")
    try:
        participant = common.make_participant(workshop, 1)
        conv = common.make_conversation(participant, args.turns)
        answers = list(Message.objects.filter(conversation=conv, role="assistant").order_by("position"))
        vocabulary = [f"code {i}" for i in range(60)] + ["neutral but nuanced", "factual", "dry", "American viewpoint"]
        made = 0
        while made < args.highlights:
            msg = answers[made % len(answers)]
            start, end = common.random_span(rng, len(msg.content))
            services.annotation_create(membership=participant, message_id=msg.id, start=start, end=end,
                                       codes=rng.sample(vocabulary, rng.randint(1, 3)))
            made += 1
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(participant.user)
        url = reverse("coding:transcript", args=[workshop.slug, conv.id])
        for _ in range(3):  # warm up: template loading, connection
            assert client.get(url).status_code == 200
        queries = []

        def count(execute, sql, params, many, context):
            queries.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            response = client.get(url)
        body = response.content.decode()
        timings, cpu = [], []
        deadline = time.monotonic() + args.budget
        for _ in range(args.runs):
            if time.monotonic() > deadline:
                break
            t0, c0 = time.perf_counter(), time.process_time()
            response = client.get(url)
            timings.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            assert response.status_code == 200
        stats = common.percentiles(timings)
        print(f"transcript page: {args.turns} turns, {body.count('data-ann-id=')} highlights, "
              f"{body.count('<mark')} highlight segments, {len(body) // 1024} KiB, {len(queries)} queries")
        print(f"render ms over {stats['n']} requests: median {stats['median']:.1f}  p95 {stats['p95']:.1f}  "
              f"max {stats['max']:.1f}  (target: < 150 ms)")
        cpu_stats = common.percentiles(cpu)
        print(f"of which Python CPU ms: median {cpu_stats['median']:.1f}  p95 {cpu_stats['p95']:.1f}; "
              f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    finally:
        common.cleanup(workshop)


if __name__ == "__main__":
    main()
