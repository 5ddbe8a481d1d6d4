"""Concurrency: 50 participants pressing Send at the same moment ("now send your first
question"), against a local endpoint: the fault upstream streaming 40 chunks 20 ms apart (an
~0.8 s answer, like a fast hosted model), or --llama for the local llama.cpp server.

Default (burst): every participant opens the chat page (GET, then its websocket) at the same
moment (handshakes slower than 10 s or failing are counted), then --turns bursts in which all
press Send at the same instant (multi-turn, the same conversation), each waiting for its whole
answer. The bursts are interleaved in a random order with the same burst sent straight to the
model server through one shared client (the floor: what the model server itself does), with
--before-root DIR a second copy of the app run from that tree (the code before a change), and
with --variant-env NAME=VALUE this code under other settings. `--workers 2` runs uvicorn with
two processes, as docker-compose does.

Reported, each next to the direct figure of the same run with the machine's load: the
participant's time to first token (from just before the Send to the first delta on the
socket; the Send goes over the chat socket as the page's does while it is open, or with
`--app-send http` as the HTTP POST it falls back to; before: always the POST) and total time,
the Send's answer, handshakes, errors and lost messages (every sent message
must have a stored complete answer whose text equals what the participant's socket received),
and the server's own view (Message.ttft_ms / total_ms).

`--think 4`: a session instead (each participant waits 2-6 s, reading and typing, before each
message; /healthz probed every 100 ms under load).

Usage (with the test command's environment):
  .venv/bin/python -m benchmarks.gateway_concurrency [--participants 50] [--turns 3] [--workers 2]
      [--before-root /tmp/calma-before] [--variant-env LLM_STREAM_BATCH_SECONDS=0.5] [--think 4]
Bounded: the run stops at --budget seconds (default 240) and prints what it measured so far.
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


async def participant_run(app, slug, session, conversation_id, turns, results, errors, think=0.0, rng=None,
                          via="socket"):
    p = gc.Participant(app, slug, session, via=via)
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


async def open_all(app, slug, people, key, handshake_timeout, via):
    """Every participant opens the chat page's socket at the same moment (counted: handshakes
    that fail or take longer than `handshake_timeout`). `via`: how their Sends will go."""
    parts = [gc.Participant(app, slug, session, via=via) for session, _m, _c in people]

    async def one(p, convs):
        t = time.perf_counter()
        try:
            ws = await asyncio.wait_for(p.open(convs[key][0]), timeout=handshake_timeout)
            return ws, time.perf_counter() - t, None
        except Exception as exc:
            return None, time.perf_counter() - t, f"{type(exc).__name__}: {exc}"[:200]

    opened = await asyncio.gather(*[one(p, convs) for p, (_s, _m, convs) in zip(parts, people)])
    return parts, opened


async def app_burst(parts, opened, people, key, turn, budget):
    """Everyone presses Send at the same instant; each waits for their whole answer."""
    go = asyncio.Event()

    async def one(p, ws, convs):
        await go.wait()
        try:
            return await p.ask(ws, convs[key][0], f"Question {turn + 1}: what happened in 1857?",
                               timeout=max(1.0, budget.left()))
        except Exception as exc:
            return {"error": f"{type(exc).__name__}: {exc}"[:200]}

    tasks = [asyncio.ensure_future(one(p, ws, convs)) for p, (ws, _t, _e), (_s, _m, convs)
             in zip(parts, opened, people) if ws is not None]
    await asyncio.sleep(0)
    go.set()
    return await budget.bounded(asyncio.gather(*tasks), "an app burst")


async def direct_burst(direct, endpoint, messages, n, budget):
    """The same burst straight to the model server through one shared client (the floor)."""
    async def one():
        try:
            return await direct.call(endpoint["base_url"], endpoint["model"], messages,
                                     endpoint.get("max_tokens"), endpoint.get("params"))
        except Exception as exc:
            return {"error": f"{type(exc).__name__}: {exc}"[:200]}

    return await budget.bounded(asyncio.gather(*[one() for _ in range(n)]), "a direct burst")


async def run(args, out: dict, budget: gc.Budget) -> None:
    from asgiref.sync import sync_to_async

    from tests.fixtures_llm import start_fault_upstream_process, start_llama_server

    procs, apps, sockets = [], {}, []
    direct = gc.Direct()
    try:
        fault_proc, fault_base = start_fault_upstream_process()
        procs.append(fault_proc)
        if args.llama:
            llama_proc, llama_base = start_llama_server()
            procs.append(llama_proc)
            endpoint = {"key": "llama", "name": "SmolLM2 (llama.cpp)", "base_url": llama_base,
                        "model": "smollm2-135m-instruct", "provider": "llamacpp", "max_tokens": 8}
        else:
            endpoint = {"key": "fault-rate", "name": "Fault upstream, 40 chunks x 20 ms", "base_url": fault_base,
                        "model": "fault:ok:40:20:conc", "provider": "vllm"}
        key = endpoint["key"]
        db_url = gc.setup_django([endpoint])
        extra: dict = {}
        roots = {"app": None, **({"before": args.before_root} if args.before_root else {})}
        variant_env = dict(item.split("=", 1) for item in args.variant_env)
        if variant_env:  # the same code with other settings, interleaved ("variant")
            roots["variant"] = None
        out.update({"endpoint": key, "participants": args.participants, "turns": args.turns,
                    "workers": args.workers,
                    "think_s": args.think, "channel_layer": os.environ.get("CHANNEL_LAYER", "redis"),
                    "load_at_start": gc.load()})
        crowds = {}
        for side, root in roots.items():
            workshop, people = await sync_to_async(gc.make_people)(args.participants, [key])
            env = {**extra, **(variant_env if side == "variant" else {})}
            apps[side] = gc.App(db_url, [endpoint], env, workers=args.workers, root=root)
            crowds[side] = (workshop, people)
        messages = [{"role": "system", "content": workshop.system_prompt},
                    {"role": "user", "content": "Question 1: what happened in 1857?"}]
        await budget.bounded(direct.call(endpoint["base_url"], endpoint["model"], messages,
                                         endpoint.get("max_tokens"), endpoint.get("params")), "direct warm-up")
        if args.think:
            await session_run(args, out, apps["app"], *crowds["app"], key, budget)
            return
        rows = {side: [] for side in [*roots, "direct"]}
        errors = {side: [] for side in [*roots, "direct"]}
        handshakes, opened_by = {}, {}
        for side in roots:  # the pages open at the same moment, as when the facilitator moves the stage
            workshop, people = crowds[side]
            via = "http" if side == "before" else args.app_send
            parts, opened = await budget.bounded(open_all(apps[side], workshop.slug, people, key, 10, via),
                                                 f"opening the sockets of {side}")
            sockets.extend(p for p in parts)
            opened_by[side] = (parts, opened)
            handshakes[side] = {"failed": sum(1 for _ws, _t, e in opened if e), "of": len(opened),
                                "time": gc.summary([t for ws, t, _e in opened if ws is not None]),
                                "errors": [e for _ws, _t, e in opened if e][:3]}
        out["websocket_handshakes"] = handshakes
        for turn in range(args.turns):
            order = [*roots, "direct"]
            random.shuffle(order)
            for side in order:
                if side == "direct":
                    got = await direct_burst(direct, endpoint, messages, args.participants, budget)
                else:
                    workshop, people = crowds[side]
                    parts, opened = opened_by[side]
                    got = await app_burst(parts, opened, people, key, turn, budget)
                for r in got:
                    if r.get("error") or (side != "direct" and r.get("status") != "complete"):
                        errors[side].append(r.get("error") or f"answer {r.get('message_id')} ended {r.get('status')}")
                    else:
                        rows[side].append(r)
                await asyncio.sleep(0.5)  # let the last answers' final writes settle between bursts
            out["bursts_done"] = turn + 1
            out["ttft"] = {s: gc.summary([r["ttft"] for r in rs]) for s, rs in rows.items()}
            out["total"] = {s: gc.summary([r["total"] for r in rs]) for s, rs in rows.items()}
            out["post_send"] = {s: gc.summary([r["post"] for r in rs]) for s, rs in rows.items() if s != "direct"}
            out["errors"] = {s: len(e) for s, e in errors.items()}
            out["error_samples"] = {s: e[:3] for s, e in errors.items() if e}
            out["load_after"] = gc.load()
        for side in roots:
            workshop, _people = crowds[side]
            results = [r for r in rows[side]]
            out[f"lost_{side}"] = await sync_to_async(check_lost)(workshop.id, results,
                                                                  args.participants * out.get("bursts_done", 0))
    finally:
        await gc.close_all(sockets, direct, apps.values(), procs)


async def session_run(args, out, app, workshop, people, key, budget):
    """--think: a workshop session (each participant reads and types 2-6 s between messages)."""
    loaded: list[float] = []
    stop = asyncio.Event()
    probing = asyncio.ensure_future(probe(app, stop, loaded))
    results: list[dict] = []
    errors: list[str] = []
    began = time.perf_counter()
    try:
        await budget.bounded(asyncio.gather(*[
            participant_run(app, workshop.slug, session, convs[key][0], args.turns, results, errors,
                            args.think, random.Random(i), via=args.app_send)
            for i, (session, _m, convs) in enumerate(people)
        ]), "the session")
    finally:
        stop.set()
        await probing
        ok = [r for r in results if r.get("status") == "complete"]
        out.update({"wall_s": round(time.perf_counter() - began, 1), "messages_sent": len(results),
                    "answers_complete": len(ok), "errors": len(errors), "error_samples": errors[:5],
                    "ttft": {"app": gc.summary([r["ttft"] for r in ok])},
                    "total": {"app": gc.summary([r["total"] for r in ok])},
                    "post_send": {"app": gc.summary([r["post"] for r in results if "post" in r])},
                    "healthz_under_load": gc.summary(loaded), "load_after": gc.load()})
    out["lost_app"] = await sync_to_async_check(workshop.id, results, args.participants * args.turns)


async def sync_to_async_check(workshop_id, results, expected):
    from asgiref.sync import sync_to_async

    return await sync_to_async(check_lost)(workshop_id, results, expected)


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
    parser.add_argument("--turns", type=int, default=3, help="bursts per side (interleaved with the others)")
    parser.add_argument("--llama", action="store_true")
    parser.add_argument("--before-root", help="also run the app from this source tree, interleaved")
    parser.add_argument("--app-send", choices=("socket", "http"), default="socket",
                        help="how this code's participants Send: over the chat socket, as the page does while "
                             "it is open (default), or as the HTTP POST it falls back to (before: always HTTP)")
    parser.add_argument("--variant-env", action="append", default=[], metavar="NAME=VALUE",
                        help="also run this code with these settings (environment), interleaved")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (compose runs 2)")
    parser.add_argument("--think", type=float, default=0.0,
                        help="mean seconds a participant reads and types before each message (0: all at once)")
    parser.add_argument("--budget", type=float, default=240)
    args = parser.parse_args()
    out, partial = gc.run_bounded(run, args)
    if partial:
        print(f"\nPARTIAL RESULTS: the budget ran out during {partial}")
    print(f"machine: {out.get('load_at_start', '')} at start; {out.get('load_after', '')} at the last burst")
    for label in ("ttft", "total", "post_send"):
        if label in out:
            print("  " + gc.side_by_side({"ttft": "time to first token", "total": "total",
                                          "post_send": "Send answered"}[label], out[label],
                                         floor="direct" if label != "post_send" else ""))
    for k, v in out.items():
        if k not in ("ttft", "total", "post_send"):
            print(f"  {k}: {v}")
    print("JSON " + json.dumps({**out, "partial": partial}))


if __name__ == "__main__":
    main()
