"""Gateway overhead, one participant at a time: time to first token and total time through the
app versus calling the same endpoint directly, interleaved in one run.

Through the app = what a participant's browser sees: from just before the Send to the first
delta on the chat websocket (and to the final status event). That includes the Send (over the
conversation's socket, as the page does while it is open: side "app"; as the HTTP POST the page
falls back to: side "app-http", same server), storing the message, starting the generation, the
upstream call, the Channels/Redis hop and the websocket. Direct = the same streamed request straight to the
endpoint through one shared httpx client (as the app's own client), read to the end.

Two endpoints:
  fault-fast  the fault-injecting upstream in fixed-rate mode (32 chunks, 5 ms apart): a
              steady endpoint, so the difference is the gateway's own cost
  llama       the local llama.cpp server with SmolLM2-135M (16 tokens): real but noisy on
              a shared 2-core machine

`--before-root DIR` also runs the app from another source tree (the code before a change)
and interleaves it with the others: app, before and direct in a random order each iteration.

Usage (with the test command's environment):
  .venv/bin/python -m benchmarks.gateway_overhead [--iterations 60] [--llama-iterations 12] [--no-llama]
      [--before-root /tmp/calma-before]
Bounded: the run stops at --budget seconds (default 240) and prints what it measured so far.
"""

from __future__ import annotations

import argparse
import json
import random
import sys

from benchmarks import gateway_common as gc


async def run(args, results: dict, budget: gc.Budget) -> None:
    from asgiref.sync import sync_to_async

    from tests.fixtures_llm import start_fault_upstream_process, start_llama_server

    procs = []
    apps: dict[str, gc.App] = {}
    participants: dict = {}
    direct = gc.Direct()
    try:
        fault_proc, fault_base = start_fault_upstream_process()
        procs.append(fault_proc)
        endpoints = [{"key": "fault-fast", "name": "Fault upstream, fixed rate", "base_url": fault_base,
                      "model": "fault:ok:32:5:bench", "provider": "vllm"}]
        if not args.no_llama:
            llama_proc, llama_base = start_llama_server()
            procs.append(llama_proc)
            endpoints.append({"key": "llama", "name": "SmolLM2 135M (llama.cpp)", "base_url": llama_base,
                              "model": "smollm2-135m-instruct", "provider": "llamacpp", "max_tokens": 16,
                              "params": {"temperature": 0}})
        db_url = gc.setup_django(endpoints)
        keys = [e["key"] for e in endpoints]
        iterations = {"fault-fast": args.iterations, "llama": args.llama_iterations}
        n_convs = max(iterations[k] for k in keys) + 3
        extra: dict = {}
        # Each side: which server, and how Send goes (the page sends over its socket when open).
        roots = {"app": (None, "socket"), "app-http": (None, "http"),
                 **({"before": (args.before_root, "http")} if args.before_root else {})}
        for side, (root, via) in roots.items():
            workshop, people = await sync_to_async(gc.make_people)(1, keys, conversations_each=n_convs)
            if str(root) not in apps:
                apps[str(root)] = gc.App(db_url, endpoints, extra, root=root)
            session, _membership, convs = people[0]
            participants[side] = (gc.Participant(apps[str(root)], workshop.slug, session, via=via), convs)
        question = "Tell me about the Mughal Empire in two sentences."
        system = workshop.system_prompt
        results["load_at_start"] = gc.load()
        for endpoint in endpoints:
            key = endpoint["key"]
            messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
            rows = {side: [] for side in [*roots, "direct"]}
            errors = {side: [] for side in roots}
            ids = {side: [] for side in roots}
            conv_ids = {side: list(participants[side][1][key]) for side in roots}

            async def app_side(side):
                participant = participants[side][0]
                conv_id = conv_ids[side].pop()
                ws = await participant.open(conv_id)  # the page is open before the participant types
                try:
                    return await participant.ask(ws, conv_id, question)
                finally:
                    await ws.close()

            # Warm-up (connections, caches, the model's first load) — not counted, bounded.
            for side in roots:
                await budget.bounded(app_side(side), f"warm-up of {side} on {key}")
            await budget.bounded(direct.call(endpoint["base_url"], endpoint["model"], messages,
                                             endpoint.get("max_tokens"), endpoint.get("params")),
                                 f"direct warm-up on {key}")
            results[key] = {"endpoint": key, "iterations": 0}
            for i in range(iterations[key]):
                order = [*roots, "direct"]
                random.shuffle(order)
                for side in order:
                    if side == "direct":
                        rows["direct"].append(await budget.bounded(
                            direct.call(endpoint["base_url"], endpoint["model"], messages,
                                        endpoint.get("max_tokens"), endpoint.get("params")), f"direct on {key}"))
                        continue
                    r = await budget.bounded(app_side(side), f"{side} on {key}")
                    if r.get("error") or r["status"] != "complete":
                        errors[side].append(r.get("error") or r["status"])
                    else:
                        rows[side].append(r)
                        ids[side].append(r["message_id"])
                results[key] = report(key, rows, errors, i + 1)
                results[key]["server_ttft"] = {s: await sync_to_async(server_ttft)(ids[s]) for s in roots}
                if budget.left() < 1:
                    print(f"  time budget reached after {i + 1} iterations of {key}", file=sys.stderr)
                    break
            results[key]["load_after"] = gc.load()
    finally:
        await gc.close_all([participant for participant, _convs in participants.values()], direct, apps.values(), procs)


def server_ttft(message_ids) -> dict:
    """The gateway's own view: from the start of the generation task to the first token
    received from the endpoint (Message.ttft_ms), i.e. without the HTTP request and the
    websocket hop."""
    from llm_gateway.models import Message

    values = [v / 1000 for v in Message.objects.filter(id__in=message_ids, ttft_ms__isnull=False)
              .values_list("ttft_ms", flat=True)]
    return gc.summary(values)


def report(key, rows, errors, iterations) -> dict:
    def rate(rs):
        rates = [len(r["text"]) / (r["total"] - r["ttft"]) for r in rs if r["total"] > r["ttft"] and r["chunks"] > 1]
        return round(sorted(rates)[len(rates) // 2], 1) if rates else None

    out = {"endpoint": key, "iterations": iterations, "errors": errors,
           "ttft": {s: gc.summary([r["ttft"] for r in rs]) for s, rs in rows.items()},
           "total": {s: gc.summary([r["total"] for r in rs]) for s, rs in rows.items()},
           "post_send": {s: gc.summary([r["post"] for r in rs]) for s, rs in rows.items() if s != "direct"},
           "chars_per_s": {s: rate(rs) for s, rs in rows.items()}}
    for side in rows:
        a, d = out["ttft"][side], out["ttft"]["direct"]
        if side != "direct" and a["n"] and d["n"]:
            out[f"ttft_added_median_ms_{side}"] = round(a["median_ms"] - d["median_ms"], 2)
    return out


def print_results(results: dict, partial: str | None) -> None:
    if partial:
        print(f"\nPARTIAL RESULTS: the budget ran out during {partial}")
    print(f"machine: {results.get('load_at_start', '')} at start; {gc.load()} now")
    for key, r in results.items():
        if not isinstance(r, dict) or "ttft" not in r:
            continue
        print(f"\n== {key} ({r['iterations']} interleaved iterations; {r.get('load_after', gc.load())}) ==")
        print("  " + gc.side_by_side("time to first token", r["ttft"]))
        print("  " + gc.side_by_side("total", r["total"]))
        print("  " + gc.side_by_side("Send answered", r["post_send"], floor=""))
        print("  " + gc.side_by_side("server ttft_ms", r.get("server_ttft", {}), floor=""))
        print(f"  stream rate after the first token (chars/s, median): {r['chars_per_s']}")
        print(f"  errors: { {s: len(e) for s, e in r['errors'].items()} } "
              f"{[e[:3] for e in r['errors'].values() if e]}")
    print("\nJSON " + json.dumps({**results, "partial": partial}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--llama-iterations", type=int, default=12)
    parser.add_argument("--no-llama", action="store_true")
    parser.add_argument("--before-root", help="also run the app from this source tree, interleaved")
    parser.add_argument("--budget", type=float, default=240)
    args = parser.parse_args()
    results, partial = gc.run_bounded(run, args)
    print_results(results, partial)


if __name__ == "__main__":
    main()
