"""Benchmark: the affinity map of 2,000 labels, cold and warm.

- engine warm-up (what a worker does once at start: load the model, compile UMAP);
- cold: empty embedding cache, full layout of 2,000 distinct labels;
- warm: cache full, 20 new labels placed into the existing layout (the refresh a
  facilitator triggers during a session);
- a full re-layout with a full cache;
- worker ready: a fresh Python process from start until the engine is warm, first with an empty
  numba cache (compiling UMAP, what every worker did before) and then with the cache it filled;
- with --quality: the layout of the same vectors by UMAP as shipped (one Python call per pair),
  by the engine's exact matrix-product distances and by UMAP's approximate nearest neighbours,
  with time, the largest coordinate difference from the shipped path, trustworthiness and
  15-NN preservation, and how well 20 new labels placed by `transform` land near their neighbours.
For each map: total seconds, embedding seconds and labels/s, the embedding share of the time,
and the projection (UMAP / transform) seconds. Targets (issue 16): cold < 6 s, full re-layout
< 4 s, warm < 1 s, worker ready < 5 s.

  .venv/bin/python -m benchmarks.discussion_map [--labels 2000] [--new 20] [--embedding minilm|e5|auto]
        [--quality] [--timeout 900]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

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
        "embedding": result.version.params.get("embedding", {}).get("backend"),
    }


WARM_SCRIPT = """
import os, time
t0 = time.monotonic()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calma.settings")
import django
django.setup()
from discussion import mapping
mapping.warm_up()
print(round(time.monotonic() - t0, 2))
"""


def worker_ready(cache_dir: str) -> float | None:
    """Seconds from a new process's start until mapping.warm_up() returns (Django set up, model
    loaded, UMAP compiled or loaded from numba's cache)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", WARM_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - started
    if proc.returncode:
        print(proc.stderr[-2000:], file=sys.stderr)
        return None
    return round(wall, 2)


def knn_sets(matrix: np.ndarray, k: int, metric: str) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k + 1, metric=metric).fit(matrix)
    return nn.kneighbors(matrix, return_distance=False)[:, 1:]


def layout_quality(vectors: np.ndarray, new_vectors: np.ndarray) -> list[dict]:
    """Time and quality of three ways to lay out the same vectors."""
    from sklearn.manifold import trustworthiness

    from discussion import mapping

    umap = mapping.umap_module()
    import umap.umap_ as umap_

    fast = umap_.pairwise_distances
    high = knn_sets(vectors, 15, "cosine")
    # Compile the approximate path (pynndescent) before timing it; the exact ones are warm.
    warm = mapping._umap(300)
    warm.force_approximation_algorithm = True
    warm.fit(vectors[:300])
    warm.transform(new_vectors[:3])
    rows, reference = [], None
    for name, force, shipped in (("exact, per-pair distances (UMAP as shipped)", False, True),
                                 ("exact, matrix-product distances (engine)", False, False),
                                 ("approximate nearest neighbours (pynndescent)", True, False)):
        umap_.pairwise_distances = fast.__wrapped__ if shipped else fast
        try:
            projector = mapping._umap(len(vectors))
            projector.force_approximation_algorithm = force
            t0 = time.monotonic()
            coords = projector.fit_transform(vectors)
            fit_s = time.monotonic() - t0
            t0 = time.monotonic()
            placed = projector.transform(new_vectors)
            place_s = time.monotonic() - t0
        finally:
            umap_.pairwise_distances = fast
        if reference is None:
            reference = coords
        low = knn_sets(coords, 15, "euclidean")
        preserved = np.mean([len(set(a) & set(b)) / 15 for a, b in zip(high, low)])
        # Placement: is a new label's nearest existing point in 2-D among its 15 nearest in meaning?
        sims = new_vectors @ vectors.T
        near_meaning = np.argsort(-sims, axis=1)[:, :15]
        near_2d = np.argmin(((placed[:, None, :] - coords[None, :, :]) ** 2).sum(-1), axis=1)
        placed_ok = np.mean([near_2d[i] in near_meaning[i] for i in range(len(new_vectors))])
        rows.append({"layout": name, "fit_s": round(fit_s, 2), "transform_20_s": round(place_s, 3),
                     "max_coord_diff_vs_shipped": round(float(np.abs(coords - reference).max()), 6),
                     "trustworthiness_15": round(float(trustworthiness(vectors, coords, n_neighbors=15, metric="cosine")), 4),
                     "knn15_preserved": round(float(preserved), 4), "placed_near_neighbour": round(float(placed_ok), 3)})
    del umap
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--labels", type=int, default=2000)
    parser.add_argument("--new", type=int, default=20)
    parser.add_argument("--embedding", choices=["auto", "minilm", "e5"], default="minilm")
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--no-worker", action="store_true", help="skip the two fresh-process warm-ups")
    parser.add_argument("--timeout", type=int, default=900)
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, lambda *a: sys.exit("benchmark exceeded its time bound"))
    signal.alarm(args.timeout)
    os.environ["DISCUSSION_EMBEDDING"] = args.embedding
    print("load before:", os.getloadavg(), flush=True)
    setup_django()
    from discussion import mapping
    from discussion.models import Embedding

    ready = {}
    if not args.no_worker:
        with tempfile.TemporaryDirectory() as empty:
            ready["worker ready, empty numba cache (compiles UMAP)"] = worker_ready(empty)
            ready["worker ready, numba cache filled"] = worker_ready(empty)
        print(json.dumps(ready), flush=True)

    workshop, _fac, members = make_workshop("dmap", participants=30)
    texts = labels(args.labels + args.new)
    seed_codes(workshop, members, texts[:args.labels])

    t0 = time.monotonic()
    mapping.warm_up()
    warm_up_s = time.monotonic() - t0

    Embedding.objects.all().delete()
    mapping.forget_vectors()  # cold: neither the table nor the worker's memory has a vector
    cold = mapping.compute(workshop, full_layout=True)
    seed_codes(workshop, members, texts[args.labels:])
    warm = mapping.compute(workshop)
    relayout = mapping.compute(workshop, full_layout=True)

    rows = [row("cold (empty cache, full layout)", cold), row(f"warm (+{args.new} labels, placed)", warm),
            row("full re-layout, cache full", relayout)]
    out = {"embedding": args.embedding, "warm_up_in_this_process_s": round(warm_up_s, 2), **ready, "runs": rows}
    print(json.dumps(out, indent=1))
    print(f"\n{'run':34} {'labels':>6} {'embedded':>8} {'total s':>8} {'embed s':>8} {'labels/s':>9} {'share':>6} {'project s':>9}")
    for r in rows:
        print(f"{r['run']:34} {r['labels']:>6} {r['embedded']:>8} {r['total_s']:>8} {r['embed_s']:>8} "
              f"{str(r['embed_labels_per_s']):>9} {str(r['embed_share']):>6} {r['project_s']:>9}")
    for name, value in ready.items():
        print(f"{name}: {value} s")
    if args.quality:
        vectors, _ = mapping.embed(texts[:args.labels], backend_key=cold.version.params["embedding"]["backend"])
        new_vectors, _ = mapping.embed(texts[args.labels:], backend_key=cold.version.params["embedding"]["backend"])
        quality = layout_quality(vectors, new_vectors)
        print(json.dumps(quality, indent=1))
    print("load after:", os.getloadavg())


if __name__ == "__main__":
    main()
