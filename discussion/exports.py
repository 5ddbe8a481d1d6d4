"""Derived-axes exports: a streamed CSV with stable, documented columns and a JSON provenance tree.

Columns are documented in docs/discussion.md. Every field is quoted; cells that begin with
= + - @ (or a tab / carriage return) are prefixed with ' so spreadsheets do not run them as
formulas; participants appear only by pseudonym; withdrawn members' data is excluded.
"""

from __future__ import annotations

import json

from django.utils import timezone

from discussion import selectors
from workshops.exports import stream_csv

CSV_COLUMNS = [
    "workshop",
    "axis_id",
    "name",
    "definition",
    "group_rank",
    "in_group_top_three",
    "likert_n",
    "likert_mean",
    "likert_1",
    "likert_2",
    "likert_3",
    "likert_4",
    "likert_5",
    "mean_individual_rank",
    "individual_rank_n",
    "source_labels",
    "example_excerpts",
    "participants",
    "proposed_by",
    "merged_cards",
    "split_from",
    "definition_history",
]

def axis_row(workshop, axis: dict) -> list:
    lk = axis["likert"]
    examples = [{"excerpt": e["excerpt"], "conversation_id": e["conversation_id"], "message_id": e["message_id"]}
                for e in axis["examples"]]
    values = [
        workshop.slug,
        axis["axis_id"],
        axis["name"],
        axis["definition"],
        axis["group_rank"],
        "true" if axis["in_group_top_three"] else "false",
        lk["n"],
        lk["mean"],
        *lk["counts"],
        axis["mean_individual_rank"],
        axis["individual_rank_n"],
        " | ".join(axis["source_labels"]),
        json.dumps(examples, ensure_ascii=False),
        " ".join(axis["participants"]),
        axis["proposed_by"],
        json.dumps(axis["merged_cards"], ensure_ascii=False),
        json.dumps(axis["split_origin"], ensure_ascii=False) if axis["split_origin"] else "",
        json.dumps(axis["history"], ensure_ascii=False),
    ]
    return values


def axes_csv_rows(workshop):
    """Yield the CSV line by line (workshops.exports.stream_csv: quoted, formulas neutralised)."""
    return stream_csv(CSV_COLUMNS, (axis_row(workshop, axis) for axis in selectors.axis_provenance(workshop)))


_PSEUDONYM_KEYS = ("by", "proposed_by", "participant", "merged_by", "split_by")


def _pseudonyms_in(node, found: set) -> set:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _PSEUDONYM_KEYS and isinstance(value, str):
                found.add(value)
            elif key == "participants" and isinstance(value, list):
                found.update(v for v in value if isinstance(v, str))
            else:
                _pseudonyms_in(value, found)
    elif isinstance(node, list):
        for value in node:
            _pseudonyms_in(value, found)
    return found


def axes_json(workshop) -> dict:
    """The provenance tree. `axes` are the cards on the board; `cards` every earlier card their
    provenance names (merged, split, restored); `participants` every pseudonym in the file."""
    history = selectors.AxisHistory(workshop)
    axes = selectors.axis_provenance(workshop, history)
    for axis in axes:  # the CSV's self-contained cells; here the same facts are in `cards`
        axis.pop("merged_cards")
        axis.pop("split_origin")
    cards = history.cards_for([a["axis_id"] for a in axes])
    roles = {m.pseudonym: m.role for m in history.members.values()}
    people = _pseudonyms_in([axes, cards], set())
    return {
        "format": "calma-derived-axes/1",
        "workshop": {"slug": workshop.slug, "title": workshop.title, "deployment_context": workshop.deployment_context},
        "exported_at": timezone.now().isoformat(),
        "columns_doc": "docs/discussion.md",
        "group_ranking": [{"rank": r.rank, "axis_id": r.axis_id} for r in selectors.group_ranking(workshop)],
        "participants": [{"pseudonym": p, "role": roles.get(p)} for p in sorted(people)],
        "axes": axes,
        "cards": cards,
    }
