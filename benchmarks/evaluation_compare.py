"""Benchmark: a model comparison of 3 models x 200 prompts x 6 axes, against local deterministic
endpoints (the fault upstream in its own process): every answer and every judgement takes 50 ms.

Runs the `compare` job's own work (`evaluation.comparison.run_job`: collect every answer through
the gateway client, stored as it arrives; then the judge run scores every (answer, axis) pair)
and compares the wall time with the lower bound the configured concurrency sets:

    answers:    the models are asked side by side, `concurrency` calls in flight per model:
                ceil(prompts / concurrency) x 50 ms
    judgements: one judge run, `concurrency` calls in flight:
                ceil(models x prompts x axes / concurrency) x 50 ms

  .venv/bin/python -m benchmarks.evaluation_compare [--models 3] [--prompts 200] [--axes 6]
                                                    [--concurrency 8] [--delay-ms 50]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from types import SimpleNamespace

from benchmarks.gateway_common import fault_upstream_process, setup_django


def build(args, keys: list[str], judge_key: str):
    """A workshop in Evaluate: `axes` axes with complete rubrics, `prompts` baseline questions."""
    from benchmarks.evaluation_common import bench_workshop, rubric_axis
    from evaluation import comparison
    from llm_gateway.models import Conversation, Message
    from workshops import jobs

    workshop, facilitator, _tag = bench_workshop("Comparison benchmark", "cmp")
    workshop.system_prompt = "You answer questions about Indian history for school students."
    workshop.save(update_fields=["system_prompt"])
    for i in range(args.axes):
        rubric_axis(workshop, f"Axis {i}", f"Axis {i} of the answer")
    conversation = Conversation.objects.create(workshop=workshop, owner=facilitator, endpoint_key=keys[0],
                                               is_baseline=True, is_sandbox=True)
    Message.objects.bulk_create(
        [m for i in range(args.prompts) for m in (
            Message(conversation=conversation, role="user", content=f"Question {i} about the Mughals?", position=2 * i),
            Message(conversation=conversation, role="assistant", content=f"Answer {i}.", position=2 * i + 1))])
    queued = jobs.job_request
    jobs.job_request = lambda **kwargs: None  # the benchmark runs the job's work itself, timed
    try:
        compared, _job = comparison.comparison_create(
            workshop=workshop, by=facilitator, endpoint_keys=keys, judge_keys=[judge_key], prompt_set="baseline",
            concurrency=args.concurrency)
    finally:
        jobs.job_request = queued
    return compared


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--axes", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--delay-ms", type=int, default=50)
    args = parser.parse_args(argv)

    keys = [f"bench-model-{i}" for i in range(args.models)]
    judge_key = "bench-judge"
    with fault_upstream_process() as base:
        endpoints = [{"key": k, "name": k, "base_url": base, "model": f"fault:ok:1:{args.delay_ms}:{k}"} for k in keys]
        endpoints.append({"key": judge_key, "name": "Judge", "base_url": base,
                          "model": f"fault:judge:ok:{args.delay_ms}"})
        setup_django(endpoints)
        from evaluation import comparison
        from evaluation.models import ComparisonAnswer, JudgeScore

        compared = build(args, keys, judge_key)
        answers_n = args.models * args.prompts
        judgements_n = answers_n * args.axes
        seconds = args.delay_ms / 1000
        bound_answers = math.ceil(args.prompts / args.concurrency) * seconds
        bound_judge = math.ceil(judgements_n / args.concurrency) * seconds
        marks = {}

        class Report:
            done_message = ""

            def __call__(self, progress, message=""):
                marks.setdefault("planned", time.perf_counter())  # the first report: the work is listed
                if "collected" in message:
                    marks.setdefault("first", time.perf_counter())  # the first answers are stored
                if progress >= comparison.ANSWER_SHARE and "answers" not in marks:
                    marks["answers"] = time.perf_counter()

        import asyncio

        from benchmarks.evaluation_judge import endpoint_capacity
        from llm_gateway import registry

        # What this machine gets from the same endpoints through the same client, nothing stored.
        raw_answers = asyncio.run(endpoint_capacity(registry.get(keys[0]), answers_n, args.concurrency * args.models))
        raw_judge = asyncio.run(endpoint_capacity(registry.get(judge_key), 800, args.concurrency))
        started = time.perf_counter()
        comparison.run_job(SimpleNamespace(workshop_id=compared.workshop_id), Report())
        wall = time.perf_counter() - started
        answered = marks.get("answers", started + wall) - started
        complete = ComparisonAnswer.objects.filter(prompt__comparison=compared, message__status="complete").count()
        scored = JudgeScore.objects.filter(item__message_id__in=ComparisonAnswer.objects.filter(
            prompt__comparison=compared).values("message_id"), outcome="scored").count()
        assert complete == answers_n and scored == judgements_n, (complete, scored)
        planned, first = marks["planned"] - started, marks["first"] - started
        print(f"{args.models} models x {args.prompts} prompts x {args.axes} axes; {args.delay_ms} ms per answer and "
              f"per judgement; concurrency {args.concurrency} per model and for the judge")
        print(f"of the answers phase: {planned:.2f} s to list the work, {first - planned:.2f} s more to the first "
              f"stored answers (question copies, histories with the system prompt), then the calls")
        print(f"{'phase':<11} {'calls':>6} {'wall s':>8} {'bound s':>8} {'ratio':>6}")
        print(f"{'answers':<11} {answers_n:>6} {answered:>8.2f} {bound_answers:>8.2f} {answered / bound_answers:>6.2f}")
        print(f"{'judgements':<11} {judgements_n:>6} {wall - answered:>8.2f} {bound_judge:>8.2f} "
              f"{(wall - answered) / bound_judge:>6.2f}")
        print(f"the client alone (same endpoints, nothing stored): {raw_answers:.0f} answers/s at "
              f"{args.concurrency * args.models} in flight -> {answers_n / raw_answers:.2f} s for the answers; "
              f"{raw_judge:.0f} judgements/s at {args.concurrency} -> {judgements_n / raw_judge:.2f} s for the judgements")
        print(f"{'total':<11} {answers_n + judgements_n:>6} {wall:>8.2f} {bound_answers + bound_judge:>8.2f} "
              f"{wall / (bound_answers + bound_judge):>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
