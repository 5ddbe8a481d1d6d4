"""Concurrency: 50 participants chatting at once through one app process.

Each participant has the chat page open (its websocket) and sends --turns messages one after
the other in the same conversation (multi-turn), all participants at the same time, against
a local endpoint: the fault upstream streaming 40 chunks 20 ms apart (an ~0.8 s answer, like
a fast hosted model), or --llama for the local llama.cpp server (serial, so slow).

Reported: errors, lost messages (every sent message must have a stored complete answer whose
text equals what the participant's socket received), time to first token and total time as
the participants saw them, and the server's own latency (GET /healthz probed every 100 ms)
idle versus under load.

Two loads: the burst (default: every participant sends at the same instant, each turn right
after the last answer) and the session (`--think 4`: each waits 2-6 s, reading and typing,
before each message, so the 50 conversations overlap as they do in a workshop room).
`--workers 2` runs uvicorn with two processes, as docker-compose does.

Usage (with the test command's environment):
  .venv/bin/python -m benchmarks.gateway_concurrency [--participants 50] [--turns 3] [--think 4] [--workers 2]
Bounded: gives up after --budget seconds (default 240).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time

from benchmarks import gateway_common as gc


async def probe(app: gc.App, stop: asyncio.Event, out: list[float]):
    import httpx

    async with httpx.AsyncClient(base_url=app.base, timeout=30) as client:
        while not stop.is_set():
            t = time.perf_counter()
            r = await client.get("/healthz")
            if r.status_code == 200:
                out.append(time.perf_counter() - t)
            await asyncio.sleep(0.1)


async def participant_run(app, slug, session, conversation_id, turns, results, errors, think=0.0, rng=None):
    p = gc.Participant(app, slug, session)
    try:
        ws = await p.open(conversation_id)
        for turn in range(turns):
            if think:  # reading the last answer and typing the next message
                await asyncio.sleep(rng.uniform(0.5 * think, 1.5 * think))
            r = await p.ask(ws, conversation_id, f"Question {turn + 1}: what happened in 1857?")
            if r.get("error") or r.get("status") != "complete":
                errors.append(r.get("error") or f"answer {r.get('message_id')} ended {r.get('status')}")
            results.append(r)
        await ws.close()
    except Exception as exc:  # counted, reported
        import traceback

        where = traceback.extract_tb(exc.__traceback__)[-1]
        errors.append(f"{type(exc).__name__} in {where.name} ({where.filename.rsplit('/', 1)[-1]}:{where.lineno})"
                      f" after {len(results)} answers: {exc}")
    finally:
        await p.close()


async def run(args) -> dict:
    from asgiref.sync import sync_to_async

    from tests.fixtures_llm import start_fault_upstream_process, start_llama_server, stop_process

    fault_proc, fault_base = start_fault_upstream_process()
    llama_proc = None
    if args.llama:
        llama_proc, llama_base = start_llama_server()
        endpoint = {"key": "llama", "name": "SmolLM2 (llama.cpp)", "base_url": llama_base,
                    "model": "smollm2-135m-instruct", "provider": "llamacpp", "max_tokens": 8}
    else:
        endpoint = {"key": "fault-rate", "name": "Fault upstream, 40 chunks x 20 ms", "base_url": fault_base,
                    "model": "fault:ok:40:20:conc", "provider": "vllm"}
    db_url = gc.setup_django([endpoint])
    workshop, people = await sync_to_async(gc.make_people)(args.participants, [endpoint["key"]])
    extra = {"DJANGO_SETTINGS_MODULE": "benchmarks.gateway_settings_tuned"} if args.tuned else {}
    app = gc.App(db_url, [endpoint], extra, workers=args.workers)
    out: dict = {"endpoint": endpoint["key"], "participants": args.participants, "turns": args.turns,
                 "settings": "tuned" if args.tuned else "default", "workers": args.workers, "think_s": args.think,
                 "channel_layer": os.environ.get("CHANNEL_LAYER", "redis")}
    try:
        # Idle server latency.
        idle: list[float] = []
        stop = asyncio.Event()
        task = asyncio.ensure_future(probe(app, stop, idle))
        await asyncio.sleep(3)
        stop.set()
        await task
        # Everyone at once.
        loaded: list[float] = []
        stop = asyncio.Event()
        probing = asyncio.ensure_future(probe(app, stop, loaded))
        results: list[dict] = []
        errors: list[str] = []
        began = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*[
            participant_run(app, workshop.slug, session, convs[endpoint["key"]][0], args.turns, results, errors,
                            args.think, random.Random(i))
            for i, (session, _m, convs) in enumerate(people)
        ]), timeout=args.budget)
        wall = time.perf_counter() - began
        stop.set()
        await probing
        lost = await sync_to_async(check_lost)(workshop.id, results, args.participants * args.turns)
        ok = [r for r in results if r.get("status") == "complete"]
        out.update({
            "wall_s": round(wall, 1),
            "messages_sent": len(results),
            "answers_complete": len(ok),
            "errors": len(errors),
            "error_samples": errors[:5],
            "lost_messages": lost,
            "ttft": gc.summary([r["ttft"] for r in ok]),
            "total": gc.summary([r["total"] for r in ok]),
            "post_send": gc.summary([r["post"] for r in results if "post" in r]),
            "healthz_idle": gc.summary(idle),
            "healthz_under_load": gc.summary(loaded),
        })
    finally:
        app.stop()
        stop_process(fault_proc)
        if llama_proc is not None:
            stop_process(llama_proc)
    return out


def check_lost(workshop_id: int, results: list[dict], expected: int) -> dict:
    """Every participant message stored, every answer complete, and the stored text equal
    to what the participant's socket received."""
    from llm_gateway.models import Message

    msgs = Message.objects.filter(conversation__workshop_id=workshop_id)
    questions = msgs.filter(role="user").count()
    answers = {m.id: m for m in msgs.filter(role="assistant")}
    mismatched = sum(1 for r in results if r.get("message_id") in answers
                     and answers[r["message_id"]].content != r.get("text"))
    done = [a for a in answers.values() if a.completed_at]
    server = {
        "server_ttft": gc.summary([a.ttft_ms / 1000 for a in done if a.ttft_ms is not None]),
        "server_total": gc.summary([a.total_ms / 1000 for a in done if a.total_ms is not None]),
    }
    return {
        **server,
        "expected": expected,
        "questions_stored": questions,
        "answers_stored": len(answers),
        "answers_not_complete": sum(1 for a in answers.values() if a.status != "complete"),
        "streamed_text_differs_from_stored": mismatched,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=50)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--llama", action="store_true")
    parser.add_argument("--tuned", action="store_true",
                        help="run the app with benchmarks/gateway_settings_tuned.py (proposed settings)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (production runs 2)")
    parser.add_argument("--think", type=float, default=0.0,
                        help="mean seconds a participant reads and types before each message (0: all at once)")
    parser.add_argument("--budget", type=float, default=240)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    for k, v in result.items():
        print(f"  {k}: {v}")
    print("JSON " + json.dumps(result))


if __name__ == "__main__":
    main()
