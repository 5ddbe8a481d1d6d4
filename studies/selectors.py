"""Reads of studies: which studies and workshops a person may see, the side-by-side comparison
of final axes (seed paper, Table 2), suggested correspondences by meaning, and the label view
(Table 1)."""

from __future__ import annotations

import logging

import numpy as np
from django.db.models import Q

from studies.models import AxisMatch, MatchStatus, Study, StudyWorkshop, WorkshopOrigin
from workshops import permissions
from workshops.models import Workshop
from workshops.text import normalize

# Label view: a label counts as "near in meaning" to the search term from this cosine similarity.
LABEL_NEAR = 0.5
EXCERPTS_SHOWN = 3

log = logging.getLogger(__name__)


def visible_studies(user):
    """Studies with at least one workshop the person may read as staff, or that they created."""
    if not user.is_authenticated:
        return Study.objects.none()
    readable = permissions.readable_workshops(user, permissions.STAFF)
    return Study.objects.filter(Q(created_by=user) | Q(members__workshop__in=readable)).distinct()


def study_workshops(study: Study, user):
    """The study's workshops the person may read as staff (the one rule of workshops.permissions)."""
    readable = permissions.readable_workshops(user, permissions.STAFF)
    return Workshop.objects.filter(study_link__study=study, pk__in=readable.values("pk")).order_by("created_at", "id")


def study_of(workshop: Workshop) -> Study | None:
    link = StudyWorkshop.objects.filter(workshop=workshop).select_related("study").first()
    return link.study if link else None


def origin_of(workshop: Workshop) -> WorkshopOrigin | None:
    return WorkshopOrigin.objects.filter(workshop=workshop).select_related("template").first()


def templates_for(user):
    """Workshops a person may use as a template: those they facilitate."""
    return permissions.readable_workshops(user, permissions.FACILITATOR).order_by("-created_at")


# --- Final axes side by side --------------------------------------------------------------------


def final_axes(workshop: Workshop) -> list[dict]:
    """The group's final axes: definition, group rank, Likert summary, example excerpts (with
    provenance from discussion.selectors), and rubric and agreement where Evaluate has them."""
    from discussion import selectors as discussion_selectors
    from evaluation import selectors as evaluation_selectors

    axes = discussion_selectors.axis_provenance(workshop)
    evaluation = {}
    for row in evaluation_selectors.agreement(workshop, resamples=200):
        version = row["version"]
        result = row["result"]
        if version is None:  # no rubric yet: nothing of Evaluate to show
            continue
        evaluation[row["axis"].pk] = {
            "rubric_version": version.number, "rubric_scale": version.scale,
            "alpha": result.alpha, "alpha_low": result.low, "alpha_high": result.high,
            "ratings": row["ratings_total"], "raters": row["raters"],
        }
    for axis in axes:
        axis["evaluation"] = evaluation.get(axis["axis_id"])
        axis["workshop"] = workshop.slug
    axes.sort(key=lambda a: (a["group_rank"] is None, a["group_rank"] or 0, a["axis_id"]))
    return axes


def axis_text(name: str, definition: str) -> str:
    return f"{name.strip()}: {definition.strip()}" if definition.strip() else name.strip()


def _embed(texts: list[str]) -> np.ndarray:
    """The affinity map's embedding path (discussion.mapping.embed: same model, same cache)."""
    from discussion import mapping

    matrix, _stats = mapping.embed(texts)
    return matrix


def suggested_pairs(a: Workshop, b: Workshop, *, min_similarity: float) -> list[tuple]:
    """(axis of a, axis of b, cosine similarity) for each axis' best counterpart in the other group,
    both ways, at or above `min_similarity`. Only suggestions: people decide."""
    from discussion import selectors as discussion_selectors

    axes_a = list(discussion_selectors.active_axes(a))
    axes_b = list(discussion_selectors.active_axes(b))
    if not axes_a or not axes_b:
        return []
    matrix = _embed([axis_text(x.name, x.definition) for x in axes_a + axes_b])
    va, vb = matrix[: len(axes_a)], matrix[len(axes_a):]
    sims = va @ vb.T  # unit vectors: the dot product is the cosine
    pairs = set()
    for i in range(len(axes_a)):
        pairs.add((i, int(np.argmax(sims[i]))))
    for j in range(len(axes_b)):
        pairs.add((int(np.argmax(sims[:, j])), j))
    out = []
    for i, j in sorted(pairs):
        s = float(round(float(sims[i, j]), 4))
        if s >= min_similarity:
            out.append((axes_a[i], axes_b[j], s))
    return out


def comparison(study: Study, workshops: list[Workshop]) -> dict:
    """Columns (each group's final axes), the matches between the groups' axes with who decided,
    and per group the axes with no counterpart (no match, or only rejected ones)."""
    columns = [{"workshop": w, "axes": final_axes(w)} for w in workshops]
    by_id = {a["axis_id"]: a for c in columns for a in c["axes"]}
    ids = list(by_id)
    matches = list(AxisMatch.objects.filter(study=study, axis_a_id__in=ids, axis_b_id__in=ids)
                   .select_related("axis_a__workshop", "axis_b__workshop", "decided_by", "suggested_axis_b")
                   .order_by("-similarity", "id"))
    matched = {m.axis_a_id for m in matches if m.status != MatchStatus.REJECTED}
    matched |= {m.axis_b_id for m in matches if m.status != MatchStatus.REJECTED}
    rows = []
    for m in matches:
        rows.append({"match": m, "a": by_id[m.axis_a_id], "b": by_id[m.axis_b_id],
                     "choices": [x for x in columns_of(columns, m.axis_b.workshop_id)]})
    for c in columns:
        c["unmatched"] = [a for a in c["axes"] if a["axis_id"] not in matched]
    return {"columns": columns, "matches": rows, "suggested": any(True for _m in matches)}


def columns_of(columns: list[dict], workshop_id: int) -> list[dict]:
    for c in columns:
        if c["workshop"].pk == workshop_id:
            return c["axes"]
    return []


def comparison_rows(study: Study, workshops: list[Workshop]):
    """Flat rows of the comparison export: every match (with its decision), then every axis with
    no counterpart. Pseudonyms only; who decided is the researcher's username."""
    data = comparison(study, workshops)
    for row in data["matches"]:
        m, a, b = row["match"], row["a"], row["b"]
        yield {
            "kind": "match", "status": m.status, "similarity": m.similarity,
            "workshop_a": a["workshop"], "axis_a_id": a["axis_id"], "axis_a_name": a["name"],
            "axis_a_definition": a["definition"], "axis_a_group_rank": a["group_rank"],
            "axis_a_likert_mean": a["likert"]["mean"],
            "workshop_b": b["workshop"], "axis_b_id": b["axis_id"], "axis_b_name": b["name"],
            "axis_b_definition": b["definition"], "axis_b_group_rank": b["group_rank"],
            "axis_b_likert_mean": b["likert"]["mean"],
            "edited_from_axis_b_id": m.suggested_axis_b_id, "note": m.note,
            "decided_by": m.decided_by.get_username() if m.decided_by else "",
            "decided_at": m.decided_at.isoformat() if m.decided_at else "",
        }
    for column in data["columns"]:
        for a in column["unmatched"]:
            yield {
                "kind": "unmatched", "status": "", "similarity": None,
                "workshop_a": a["workshop"], "axis_a_id": a["axis_id"], "axis_a_name": a["name"],
                "axis_a_definition": a["definition"], "axis_a_group_rank": a["group_rank"],
                "axis_a_likert_mean": a["likert"]["mean"],
                "workshop_b": "", "axis_b_id": None, "axis_b_name": "", "axis_b_definition": "",
                "axis_b_group_rank": None, "axis_b_likert_mean": None, "edited_from_axis_b_id": None, "note": "",
                "decided_by": "", "decided_at": "",
            }


COMPARISON_COLUMNS = ["kind", "status", "similarity", "workshop_a", "axis_a_id", "axis_a_name", "axis_a_definition",
                      "axis_a_group_rank", "axis_a_likert_mean", "workshop_b", "axis_b_id", "axis_b_name",
                      "axis_b_definition", "axis_b_group_rank", "axis_b_likert_mean", "edited_from_axis_b_id", "note",
                      "decided_by", "decided_at"]


# --- Label view (Table 1) -----------------------------------------------------------------------


def label_view(workshops: list[Workshop], term: str) -> list[dict]:
    """For a search term: per group, every initial code and attribute whose label contains it or
    is near it in meaning (same embeddings as the map), with how many participants used it, how
    many codes/attributes and annotations stand behind it, and excerpts."""
    from discussion import selectors as discussion_selectors

    term = " ".join(term.replace("\x00", "").split())[:200]  # a NUL byte cannot be stored (embedding cache)
    groups = [{"workshop": w, "labels": discussion_selectors.map_labels(w)} for w in workshops]
    if not term:
        return [{"workshop": g["workshop"], "codes": [], "attributes": []} for g in groups]
    every = [entry for g in groups for entry in g["labels"]]
    sims = {}
    if every:
        try:
            matrix = _embed([term] + [e["label"] for e in every])
        except ImportError:
            # A web process installed without the `worker` extra has no embedding model: the
            # labels containing the term are still shown, nearness in meaning is left out.
            log.warning("label view: no embedding model in this process; showing text matches only")
        else:
            scores = matrix[1:] @ matrix[0]
            for entry, score in zip(every, scores):
                sims[id(entry)] = float(score)
    needle = normalize(term)
    out = []
    for g in groups:
        codes, attributes = [], []
        for entry in g["labels"]:
            contains = needle in normalize(entry["label"])
            similarity = sims.get(id(entry), 0.0)
            if not contains and similarity < LABEL_NEAR:
                continue
            row = {"label": entry["label"], "kind": entry["kind"], "contains": contains,
                   "similarity": round(similarity, 3), "participants": len(entry["users"]),
                   "pseudonyms": entry["users"], "count": len(entry["code_ids"]) or len(entry["attribute_ids"]),
                   "excerpts": entry["excerpts"][:EXCERPTS_SHOWN], "definitions": entry["definitions"][:2]}
            (codes if entry["kind"] == "code" else attributes).append(row)
        for rows in (codes, attributes):
            rows.sort(key=lambda r: (not r["contains"], -r["similarity"], r["label"].casefold()))
        out.append({"workshop": g["workshop"], "codes": codes, "attributes": attributes})
    return out


def match_job(workshops: list[Workshop]):
    """The latest suggestion job for this comparison (None before the first)."""
    from workshops.models import Job

    if not workshops:
        return None
    return Job.objects.filter(workshop=workshops[0], kind="study_match").order_by("-created_at", "-id").first()
