"""The affinity map's labels, their embedding text, and the latest map as the page shows it."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Prefetch

from coding.models import Annotation, AnnotationCode, Attribute, Code
from discussion.models import MapVersion
from discussion.selectors.cards import job_data, latest_job
from discussion.selectors.members import EXCERPT_CHARS, EXCERPTS_PER_LABEL, active, normalize


def label_rows(workshop, kind: str, norm: str) -> list:
    if kind == "code":
        return list(Code.objects.filter(active(), workshop=workshop, normalized=norm))
    if kind == "attribute":
        return [a for a in Attribute.objects.filter(active(), workshop=workshop)
                if normalize(a.name) == norm]
    return []


def annotations_for_label(workshop, kind: str, norm: str) -> list[Annotation]:
    if kind == "code":
        codes = Code.objects.filter(active(), workshop=workshop, normalized=norm)
    else:
        codes = Code.objects.filter(active(), attributes__in=[a.pk for a in label_rows(workshop, "attribute", norm)])
    return list(
        Annotation.objects.filter(active(), codes__in=codes)
        .distinct().order_by("id")
    )


def _label(labels: dict[str, dict], kind: str, norm: str, text: str) -> tuple[str, dict]:
    """The map label of `kind` whose text compares as `norm` (the first spelling seen names it)."""
    key = f"{kind}:{norm}"
    return key, labels.setdefault(key, {"key": key, "kind": kind, "label": text, "users": set(),
                                        "definitions": [], "excerpts": [], "code_ids": [], "attribute_ids": []})


def map_labels(workshop) -> list[dict]:
    """Every distinct label of the group: initial codes and attributes of active members.

    One entry per (kind, normalised text): label, who used it, definitions/memos, excerpts
    (with conversation and message ids). Ordered by key, so the same data gives the same order.
    """
    labels: dict[str, dict] = {}
    code_key: dict[int, str] = {}
    # Rows, not model instances: a map of 2,000 labels is read on every refresh.
    codes = (Code.objects.filter(active(), workshop=workshop).order_by("id")
             .values_list("pk", "normalized", "text", "memo", "membership__pseudonym"))
    for pk, normalized, text, memo, pseudonym in codes:
        key, entry = _label(labels, "code", normalize(normalized or text), text)
        entry["users"].add(pseudonym)
        entry["code_ids"].append(pk)
        if memo:
            entry["definitions"].append(memo)
        code_key[pk] = key
    attributes = (
        Attribute.objects.filter(active(), workshop=workshop)
        .select_related("membership").prefetch_related(Prefetch("codes", queryset=Code.objects.only("id")))
    )
    attribute_codes: dict[str, set[int]] = defaultdict(set)
    for attribute in attributes.order_by("id"):
        key, entry = _label(labels, "attribute", normalize(attribute.name), attribute.name)
        entry["users"].add(attribute.membership.pseudonym)
        entry["attribute_ids"].append(attribute.pk)
        if attribute.definition:
            entry["definitions"].append(attribute.definition)
        attribute_codes[key].update(c.pk for c in attribute.codes.all())
    # Excerpts behind the labels, few queries however many labels there are.
    links = (
        AnnotationCode.objects.filter(active("annotation__membership"), code__workshop=workshop)
        .order_by("annotation_id")
        .values_list("code_id", "annotation_id", "annotation__excerpt", "annotation__message_id",
                     "annotation__message__conversation_id")
    )
    by_code: dict[int, list] = defaultdict(list)
    for code_id, annotation_id, excerpt, message_id, conversation_id in links.iterator(chunk_size=2000):
        shown = by_code[code_id]
        if len(shown) < EXCERPTS_PER_LABEL:  # no label shows more: the rest is not kept
            shown.append({"excerpt": excerpt[:EXCERPT_CHARS], "message": message_id,
                          "conversation": conversation_id, "annotation": annotation_id})
    for code_id, key in code_key.items():
        entry = labels[key]
        if len(entry["excerpts"]) < EXCERPTS_PER_LABEL:
            entry["excerpts"].extend(by_code.get(code_id, [])[: EXCERPTS_PER_LABEL - len(entry["excerpts"])])
    for key, code_ids in attribute_codes.items():
        entry = labels[key]
        for code_id in sorted(code_ids):
            if len(entry["excerpts"]) >= EXCERPTS_PER_LABEL:
                break
            entry["excerpts"].extend(by_code.get(code_id, [])[: EXCERPTS_PER_LABEL - len(entry["excerpts"])])
    result = []
    for key in sorted(labels):
        entry = labels[key]
        entry["users"] = sorted(entry["users"])
        result.append(entry)
    return result


def embed_text(entry: dict, mode: str) -> str:
    """The text embedded for a label under the DISCUSSION_EMBED_TEXT mode."""
    label = entry["label"].strip()
    if mode == "label_definition" and entry["definitions"]:
        return f"{label}: {' '.join(entry['definitions'][:2])}"[:1000]
    if mode == "label_excerpts" and entry["excerpts"]:
        return f"{label}: {' '.join(e['excerpt'] for e in entry['excerpts'][:2])}"[:1000]
    return label


def latest_map(workshop) -> MapVersion | None:
    return MapVersion.objects.filter(workshop=workshop).order_by("-number").first()


def map_data(workshop, membership) -> dict:
    """The latest map's points joined with the current label details (withdrawn members' labels drop out)."""
    version = latest_map(workshop)
    labels = {e["key"]: e for e in map_labels(workshop)}
    points = []
    if version is not None:
        for p in version.points.order_by("key"):
            entry = labels.get(p.key)
            if entry is None:
                continue
            points.append({
                "key": p.key, "kind": p.kind, "label": entry["label"], "x": round(p.x, 4), "y": round(p.y, 4),
                "cluster": p.cluster, "users": entry["users"], "mine": membership.pseudonym in entry["users"],
                "definitions": [d[:EXCERPT_CHARS] for d in entry["definitions"][:3]],
                "excerpts": entry["excerpts"],
            })
    placed = {p["key"] for p in points}
    missing = len([k for k in labels if k not in placed])
    return {
        "version": version.number if version else None,
        "method": version.method if version else None,
        "created_at": version.created_at.isoformat() if version else None,
        "points": points,
        "participants": sorted({u for e in labels.values() for u in e["users"]}),
        "unplaced": missing,
        "me": membership.pseudonym,
        "job": job_data(latest_job(workshop)),
        "embedding": _embedding_note(version),
    }


def _embedding_note(version):
    from discussion.mapping import embedding_note  # mapping imports this module

    return embedding_note(version)
