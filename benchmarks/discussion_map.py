"""Benchmark: the affinity map of 2,000 labels, cold and warm.

- engine warm-up (what a worker does once at start: load the model, compile UMAP);
- cold: empty embedding cache, full layout of 2,000 distinct labels;
- warm: cache full, 20 new labels placed into the existing layout (the refresh a
  facilitator triggers during a session);
- for reference: a full re-layout with a full cache.
For each: total seconds, embedding seconds and labels/s, the embedding share of the time,
and the projection (UMAP / transform) seconds. Targets: warm < 2 s, cold < 15 s.

  .venv/bin/python -m benchmarks.discussion_map [--labels 2000] [--new 20] [--timeout 600]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import signal
import sys
import time

from benchmarks.discussion_common import make_workshop, setup_django

ADJ = ["colonial", "western", "religious", "balanced", "one-sided", "nuanced", "accurate", "simple", "respectful",
       "biased", "neutral", "local", "global", "inclusive", "dismissive", "age-appropriate", "factual", "emotional",
       "diplomatic", "hedging", "confident", "vague", "detailed", "patriotic", "critical", "gendered", "caste",
       "regional", "secular", "nationalist", "indigenous", "british", "mughal", "hindu", "muslim", "sikh",
       "modern", "ancient", "political", "cultural"]
NOUN = ["bias", "perspective", "framing", "tone", "dates", "sources", "language", "examples", "omission",
        "stereotype", "narrative", "context", "explanation", "summary", "emphasis", "terminology", "caveats",
        "attribution", "representation", "viewpoint", "judgement", "detail", "balance", "accuracy", "clarity",
        "sensitivity", "neutrality", "hierarchy", "voice", "agency"]


def labels(n: int, seed: int = 7) -> list[str]:
    combos = [f"{a} {b}" for a, b in itertools.product(ADJ, NOUN)]
    extra = [f"{a} {b} in {c}" for a, b, c in itertools.product(ADJ[:20], NOUN[:20], ["textbooks", "answers", "examples"])]
    pool = combos + extra
    random.Random(seed).shuffle(pool)
    if len(pool) < n:
        raise SystemExit(f"only {len(pool)} distinct labels available")
    return pool[:n]


def seed_codes(workshop, members, texts):
    from coding.models import Code

    Code.objects.bulk_create([
        Code(workshop=workshop, membership=members[i % len(members)], text=t, normalized=t.casefold())
        for i, t in enumerate(texts)
    ])


def row(name, result):
    embed = result.embed
    rate = embed.new / embed.seconds if embed.seconds else None
    return {
        "run": name, "labels": result.labels, "embedded": embed.new, "total_s": round(result.total_seconds, 2),
        "embed_s": round(embed.seconds, 2), "embed_labels_per_s": round(rate, 1) if rate else None,
        "embed_share": round(embed.seconds / result.total_seconds, 2) if result.total_seconds else None,
        "project_s": round(result.project_seconds, 2), "method": result.version.method,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--labels", type=int, default=2000)
    parser.add_argument("--new", type=int, default=20)
    parser.add_argument("--timeout", type=int, default=600)
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, lambda *a: sys.exit("benchmark exceeded its time bound"))
    signal.alarm(args.timeout)

    setup_django()
    from discussion import conf, mapping
    from discussion.models import Embedding

    workshop, _fac, members = make_workshop("dmap", participants=30)
    texts = labels(args.labels + args.new)
    seed_codes(workshop, members, texts[:args.labels])

    t0 = time.monotonic()
    mapping.warm_up()
    warm_up_s = time.monotonic() - t0

    Embedding.objects.filter(model_name=conf.embedding_model_name()).delete()
    cold = mapping.compute(workshop, full_layout=True)
    seed_codes(workshop, members, texts[args.labels:])
    warm = mapping.compute(workshop)
    relayout = mapping.compute(workshop, full_layout=True)

    rows = [row("cold (empty cache, full layout)", cold), row(f"warm (+{args.new} labels, placed)", warm),
            row("full re-layout, cache full", relayout)]
    print(json.dumps({"warm_up_s": round(warm_up_s, 2), "runs": rows}, indent=1))
    print(f"\n{'run':40} {'labels':>6} {'embedded':>8} {'total s':>8} {'embed s':>8} {'labels/s':>9} {'share':>6} {'project s':>9}")
    for r in rows:
        print(f"{r['run']:40} {r['labels']:>6} {r['embedded']:>8} {r['total_s']:>8} {r['embed_s']:>8} "
              f"{str(r['embed_labels_per_s']):>9} {str(r['embed_share']):>6} {r['project_s']:>9}")
    print(f"engine warm-up at worker start: {warm_up_s:.1f} s")


if __name__ == "__main__":
    main()
