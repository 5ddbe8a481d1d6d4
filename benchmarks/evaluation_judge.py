"""Benchmark: a model judge scoring 1,000 (answer, axis) pairs.

The judge endpoint is the fault upstream in its own process, in its deterministic judge mode,
answering each request after 50 ms. Measured side by side in one run:

- the endpoint's own capacity at the configured concurrency (the same requests sent straight
  through the gateway client, nothing stored);
- the judge run (`evaluation.judging.score_run`: prompt per rubric, gateway client, strict
  parsing, one row stored per pair), at the same concurrency;
- the throughput ratio (target: at least 80 % of the endpoint's), and Python heap peaks
  (tracemalloc) while scoring and while exporting the ratings, at two sizes, to show memory flat.

  .venv/bin/python -m benchmarks.evaluation_judge [--pairs 1000] [--concurrency 8] [--delay-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import tracemalloc

from benchmarks.gateway_common import fault_upstream_process, setup_django


def build(n_items: int, judge_key: str):
    """A workshop in Evaluate: two axes with complete rubrics, n_items baseline answers, each rated."""
    from django.contrib.auth import get_user_model

    from benchmarks.evaluation_common import bench_workshop, rubric_axis
    from evaluation import services as ev
    from evaluation.models import JudgeRun, Rating, RatingItem
    from llm_gateway.models import Conversation, Message
    from workshops import services

    workshop, facilitator, tag = bench_workshop("Judge benchmark", "evb")
    rater = services.membership_add(workshop=workshop, user=get_user_model().objects.create(username=f"evb-p-{tag}"),
                                    role="participant", display_name="p")
    versions = [rubric_axis(workshop, name, f"{name} of the answer", rubric_definition=name)
                for name in ("Balance", "Accuracy")]
    conversation = Conversation.objects.create(workshop=workshop, owner=facilitator, endpoint_key=judge_key,
                                               is_baseline=True, is_sandbox=True)
    rows = []
    for i in range(n_items):
        rows.append(Message(conversation=conversation, role="user", content=f"Question {i} about the Mughals?",
                            position=2 * i))
        rows.append(Message(conversation=conversation, role="assistant", position=2 * i + 1,
                            content=f"Answer {i}: Akbar ruled from 1556 to 1605. quality:{1 + i % 5}"))
    Message.objects.bulk_create(rows)
    answers = list(Message.objects.filter(conversation=conversation, role="assistant").order_by("position"))
    for question, answer in zip(Message.objects.filter(conversation=conversation, role="user").order_by("position"), answers):
        answer.reply_to = question
    Message.objects.bulk_update(answers, ["reply_to"])
    items = RatingItem.objects.bulk_create([RatingItem(workshop=workshop, message=m) for m in answers])
    Rating.objects.bulk_create([Rating(item=item, membership=rater, rubric_version=v, axis=v.rubric.axis, score=3)
                                for item in items for v in versions])
    run = JudgeRun.objects.create(workshop=workshop, endpoint_key=judge_key, concurrency=1, created_by=facilitator)
    return workshop, run, ev


async def endpoint_capacity(endpoint, n: int, concurrency: int) -> float:
    """Requests per second the endpoint serves at this concurrency, through the same client."""
    from llm_gateway import client

    gate = asyncio.Semaphore(concurrency)
    messages = [{"role": "system", "content": "x" * 1500}, {"role": "user", "content": "quality:3"}]

    async def one():
        async with gate:
            async for _event in client.stream_reply(endpoint, messages, max_tokens=200):
                pass

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    elapsed = time.perf_counter() - started
    await client.close_client()
    return n / elapsed


def export_peak(workshop) -> tuple[int, int]:
    from evaluation.views import RATING_COLUMNS, _rating_rows
    from workshops.exports import stream_csv

    tracemalloc.start()
    size = sum(len(chunk) for chunk in stream_csv(RATING_COLUMNS, _rating_rows(workshop)))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return size, peak


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--delay-ms", type=int, default=50)
    args = parser.parse_args(argv)

    key = "bench-judge"
    with fault_upstream_process() as base:
        endpoints = [{"key": key, "name": "Judge", "base_url": base, "model": f"fault:judge:ok:{args.delay_ms}"}]
        setup_django(endpoints)
        from django.db import close_old_connections

        from evaluation import judging
        from llm_gateway import registry

        endpoint = registry.get(key)
        print(f"judge endpoint: deterministic, {args.delay_ms} ms per reply; concurrency {args.concurrency}")
        results = {}
        for pairs in (args.pairs // 4, args.pairs):
            workshop, run, _ev = build(pairs // 2, key)
            run.concurrency = args.concurrency
            run.save(update_fields=["concurrency"])
            before = asyncio.run(endpoint_capacity(endpoint, pairs, args.concurrency))
            todo = judging.pairs_to_score(run)
            assert len(todo) == pairs, (len(todo), pairs)
            started = time.perf_counter()
            counts = asyncio.run(judging.score_run(run, todo, lambda *a, **k: None))
            elapsed = time.perf_counter() - started
            close_old_connections()
            # The endpoint measured before and after the run (the machine's load moves): their mean.
            capacity = (before + asyncio.run(endpoint_capacity(endpoint, pairs, args.concurrency))) / 2
            # Memory in a second, traced pass over fresh data (tracemalloc slows Python several
            # times, so it never runs during the timed pass).
            _w, traced, _ev = build(pairs // 2, key)
            traced.concurrency = args.concurrency
            traced.save(update_fields=["concurrency"])
            tracemalloc.start()
            asyncio.run(judging.score_run(traced, judging.pairs_to_score(traced), lambda *a, **k: None))
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            close_old_connections()
            size, export = export_peak(workshop)
            results[pairs] = (capacity, pairs / elapsed, peak, export, counts, size)
        print(f"{'pairs':>6} {'endpoint/s':>11} {'judge/s':>8} {'ratio':>6} {'score heap':>11} {'export heap':>12} {'csv':>8}")
        for pairs, (capacity, rate, peak, export, counts, size) in results.items():
            print(f"{pairs:>6} {capacity:>11.1f} {rate:>8.1f} {rate / capacity:>6.0%} {peak / 1e6:>9.2f}MB "
                  f"{export / 1e6:>10.2f}MB {size / 1e6:>6.2f}MB   {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
