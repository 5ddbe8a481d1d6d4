"""Gateway overhead: time to first token and total time through the app versus calling the
same endpoint directly, interleaved in one run.

Through the app = what a participant's browser sees: from just before the POST of the
message to the first delta on the chat websocket (and to the final status event). That
includes the HTTP request, storing the message, starting the generation, the upstream call,
the Channels/Redis hop and the websocket. Direct = the same streamed request with httpx
straight to the endpoint.

Two endpoints:
  fault-fast  the fault-injecting upstream in fixed-rate mode (32 chunks, 5 ms apart): a
              steady endpoint, so the difference is the gateway's own cost
  llama       the local llama.cpp server with SmolLM2-135M (16 tokens): real but noisy on
              a shared 2-core machine

Usage (with the test command's environment):
  .venv/bin/python -m benchmarks.gateway_overhead [--iterations 60] [--llama-iterations 12] [--no-llama]
Bounded: gives up after --budget seconds (default 240).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time

from benchmarks import gateway_common as gc


async def run(args) -> dict:
    from tests.fixtures_llm import start_fault_upstream_process, start_llama_server, stop_process

    fault_proc, fault_base = start_fault_upstream_process()
    llama_proc = None
    endpoints = [{"key": "fault-fast", "name": "Fault upstream, fixed rate", "base_url": fault_base,
                  "model": "fault:ok:32:5:bench", "provider": "vllm"}]
    if not args.no_llama:
        llama_proc, llama_base = start_llama_server()
        endpoints.append({"key": "llama", "name": "SmolLM2 135M (llama.cpp)", "base_url": llama_base,
                          "model": "smollm2-135m-instruct", "provider": "llamacpp", "max_tokens": 16,
                          "params": {"temperature": 0}})
    db_url = gc.setup_django(endpoints)
    from asgiref.sync import sync_to_async

    keys = [e["key"] for e in endpoints]
    iterations = {"fault-fast": args.iterations, "llama": args.llama_iterations}
    n_convs = max(iterations[k] for k in keys) + 3
    workshop, people = await sync_to_async(gc.make_people)(1, keys, conversations_each=n_convs)
    session, _membership, convs = people[0]
    extra = {"DJANGO_SETTINGS_MODULE": "benchmarks.gateway_settings_tuned"} if args.tuned else {}
    app = gc.App(db_url, endpoints, extra)
    results = {}
    try:
        participant = gc.Participant(app, workshop.slug, session)
        question = "Tell me about the Mughal Empire in two sentences."
        system = workshop.system_prompt
        for endpoint in endpoints:
            key = endpoint["key"]
            conv_ids = list(convs[key])
            # Warm-up (connections, caches, the model's first load) — not counted.
            warm_id = conv_ids.pop()
            ws = await participant.open(warm_id)
            await participant.ask(ws, warm_id, question)
            await ws.close()
            await gc.direct_call(endpoint["base_url"], endpoint["model"],
                                 [{"role": "system", "content": system}, {"role": "user", "content": question}],
                                 endpoint.get("max_tokens"))
            via, direct, errors = [], [], []
            for i in range(iterations[key]):
                conv_id = conv_ids.pop()
                ws = await participant.open(conv_id)  # the page is open before the participant types
                order = ["app", "direct"] if random.random() < 0.5 else ["direct", "app"]
                for which in order:
                    if which == "app":
                        r = await participant.ask(ws, conv_id, question)
                        if r.get("error") or r["status"] != "complete":
                            errors.append(r.get("error") or r["status"])
                        else:
                            via.append(r)
                    else:
                        direct.append(await gc.direct_call(
                            endpoint["base_url"], endpoint["model"],
                            [{"role": "system", "content": system}, {"role": "user", "content": question}],
                            endpoint.get("max_tokens")))
                await ws.close()
                if time.monotonic() > args.deadline:
                    print(f"  time budget reached after {i + 1} iterations of {key}", file=sys.stderr)
                    break
            results[key] = report(key, via, direct, errors)
            results[key]["gateway_server_ttft"] = await sync_to_async(server_ttft)([r["message_id"] for r in via])
            if results[key]["gateway_server_ttft"]["n"] and results[key]["ttft_direct"]["n"]:
                results[key]["gateway_server_added_median_ms"] = round(
                    results[key]["gateway_server_ttft"]["median_ms"] - results[key]["ttft_direct"]["median_ms"], 2)
        await participant.close()
    finally:
        app.stop()
        stop_process(fault_proc)
        if llama_proc is not None:
            stop_process(llama_proc)
    return results


def server_ttft(message_ids) -> dict:
    """The gateway's own view: from the start of the generation task to the first token
    received from the endpoint (Message.ttft_ms), i.e. without the HTTP request and the
    websocket hop."""
    from llm_gateway.models import Message

    values = [v / 1000 for v in Message.objects.filter(id__in=message_ids, ttft_ms__isnull=False)
              .values_list("ttft_ms", flat=True)]
    return gc.summary(values)


def report(key, via, direct, errors) -> dict:
    def rate(rows):
        rates = [len(r["text"]) / (r["total"] - r["ttft"]) for r in rows if r["total"] > r["ttft"] and r["chunks"] > 1]
        return round(sorted(rates)[len(rates) // 2], 1) if rates else None

    out = {
        "endpoint": key,
        "errors": errors,
        "ttft_app": gc.summary([r["ttft"] for r in via]),
        "ttft_direct": gc.summary([r["ttft"] for r in direct]),
        "total_app": gc.summary([r["total"] for r in via]),
        "total_direct": gc.summary([r["total"] for r in direct]),
        "post_response": gc.summary([r["post"] for r in via]),
        "chars_per_s_app": rate(via),
        "chars_per_s_direct": rate(direct),
    }
    ta, td = out["ttft_app"], out["ttft_direct"]
    if ta["n"] and td["n"]:
        out["ttft_added_median_ms"] = round(ta["median_ms"] - td["median_ms"], 2)
        out["ttft_added_p99_ms"] = round(ta["p99_ms"] - td["p99_ms"], 2)
        out["ttft_ratio_median"] = round(ta["median_ms"] / td["median_ms"], 3) if td["median_ms"] else None
        out["total_added_median_ms"] = round(out["total_app"]["median_ms"] - out["total_direct"]["median_ms"], 2)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--llama-iterations", type=int, default=12)
    parser.add_argument("--no-llama", action="store_true")
    parser.add_argument("--tuned", action="store_true",
                        help="run the app with benchmarks/gateway_settings_tuned.py (proposed settings)")
    parser.add_argument("--budget", type=float, default=240)
    args = parser.parse_args()
    args.deadline = time.monotonic() + args.budget
    results = asyncio.run(asyncio.wait_for(run(args), timeout=args.budget + 120))
    for key, r in results.items():
        print(f"\n== {key} ==")
        print(f"  TTFT   app {r['ttft_app']}  direct {r['ttft_direct']}")
        print(f"  total  app {r['total_app']}  direct {r['total_direct']}")
        print(f"  added to TTFT: median {r.get('ttft_added_median_ms')} ms, p99 {r.get('ttft_added_p99_ms')} ms;"
              f" ratio (median) {r.get('ttft_ratio_median')}")
        print(f"  stream rate after the first token (chars/s, median): app {r['chars_per_s_app']}"
              f"  direct {r['chars_per_s_direct']}")
        print(f"  gateway only (task start -> first token from endpoint): {r.get('gateway_server_ttft')},"
              f" added vs direct median {r.get('gateway_server_added_median_ms')} ms")
        print(f"  POST /send response: {r['post_response']}   errors: {len(r['errors'])} {r['errors'][:3]}")
    print("\nJSON " + json.dumps(results))


if __name__ == "__main__":
    main()
