"""Every read of the Discuss stage. Withdrawn members' data never leaves here."""

from __future__ import annotations

import math
import re
from collections import defaultdict

from django.db.models import Prefetch, Q
from django.utils import timezone

from coding.models import Annotation, AnnotationCode, Attribute, Code
from discussion.models import (
    Axis,
    AxisComment,
    AxisStatus,
    BoardPresence,
    GroupRank,
    GroupVote,
    IndividualRank,
    LikertRating,
    MapVersion,
    Pick,
    Segment,
    Session,
)
from llm_gateway.models import Message
from workshops import jobs
from workshops.models import Job, Membership, Role

EXCERPTS_PER_LABEL = 5
EXCERPT_CHARS = 400


def normalize(text: str) -> str:
    return " ".join((text or "").casefold().split())


# --- the session ------------------------------------------------------------------------------


def session_for(workshop) -> Session:
    session = Session.objects.select_related("spotlight").filter(workshop=workshop).first()
    if session is None:
        session = Session(workshop=workshop)
    session.workshop = workshop
    return session


def session_data(session: Session) -> dict:
    return {
        "segment": session.segment,
        "segment_label": str(Segment(session.segment).label),
        "open": session.segment_open,
        "picks_revealed": session.picks_revealed,
        "spotlight": session.spotlight.pseudonym if session.spotlight_id and session.spotlight else None,
        "timer_ends_at": session.timer_ends_at.isoformat() if session.timer_ends_at else None,
        "version": session.version,
    }


def participants(workshop):
    return Membership.objects.active().filter(workshop=workshop, role=Role.PARTICIPANT).order_by("pseudonym")


# --- segment 1 and 3 -------------------------------------------------------------------------


def picks_of(membership) -> list[Pick]:
    return list(Pick.objects.filter(membership=membership).order_by("position"))


def picks_by_participant(workshop) -> list[dict]:
    """[{membership, picks: [...]}] for active participants, in pseudonym order."""
    picks = defaultdict(list)
    for pick in Pick.objects.filter(membership__workshop=workshop, membership__withdrawn_at__isnull=True).order_by("position"):
        picks[pick.membership_id].append(pick)
    return [{"membership": m, "picks": picks.get(m.pk, [])} for m in participants(workshop)]


def own_attributes(membership):
    return Attribute.objects.filter(membership=membership).order_by("position", "id")


# --- the board --------------------------------------------------------------------------------


def _active_members_q(prefix: str) -> Q:
    return Q(**{f"{prefix}__withdrawn_at__isnull": True})


def card_data(axis: Axis) -> dict:
    """Everything a client shows for one card (texts are rendered as text by the client)."""
    sources = []
    for s in axis.sources.select_related("code__membership", "attribute__membership", "pick__membership"):
        row = s.code or s.attribute or s.pick
        if row is None or row.membership.withdrawn_at is not None:
            continue
        kind = "code" if s.code_id else "attribute" if s.attribute_id else "pick"
        sources.append({"kind": kind, "label": getattr(row, "text", None) or row.name, "by": row.membership.pseudonym})
    examples = [
        {"id": e.pk, "excerpt": e.excerpt[:EXCERPT_CHARS], "message": e.message_id,
         "conversation": e.message.conversation_id}
        for e in axis.examples.select_related("message__conversation__owner")
        if e.message.conversation.is_baseline or e.message.conversation.owner.withdrawn_at is None
    ]
    comments = [
        {"id": c.pk, "by": c.membership.pseudonym, "text": c.text, "at": c.created_at.isoformat()}
        for c in AxisComment.objects.filter(axis=axis, membership__withdrawn_at__isnull=True).select_related("membership")
    ]
    return {
        "id": axis.pk,
        "name": axis.name,
        "definition": axis.definition,
        "status": axis.status,
        "merged_into": axis.merged_into_id,
        "split_from": axis.split_from_id,
        "version": axis.version,
        "by": axis.created_by.pseudonym if axis.created_by_id and axis.created_by else None,
        "edited_by": axis.updated_by.pseudonym if axis.updated_by_id and axis.updated_by else None,
        "sources": sources,
        "examples": examples,
        "comments": comments,
    }


def active_axes(workshop):
    return Axis.objects.filter(workshop=workshop, status=AxisStatus.ACTIVE).order_by("created_at", "id")


def presence(workshop_id: int) -> list[dict]:
    from discussion.services import PRESENCE_TTL

    rows = (
        BoardPresence.objects.filter(workshop_id=workshop_id, last_seen__gte=timezone.now() - PRESENCE_TTL,
                                     membership__withdrawn_at__isnull=True)
        .select_related("membership").order_by("membership__pseudonym")
    )
    people: dict[str, dict] = {}
    for row in rows:
        entry = people.setdefault(row.membership.pseudonym, {"who": row.membership.pseudonym, "editing": None})
        if row.editing_id:
            entry["editing"] = row.editing_id
    return list(people.values())


def vote_tally(workshop) -> list[dict]:
    """Live vote result: Borda points (5 for first .. 1 for fifth), votes in top three and top five."""
    tally: dict[int, dict] = {}
    votes = GroupVote.objects.filter(
        axis__workshop=workshop, axis__status=AxisStatus.ACTIVE, membership__withdrawn_at__isnull=True
    ).select_related("axis")
    voters = set()
    for vote in votes:
        voters.add(vote.membership_id)
        entry = tally.setdefault(vote.axis_id, {"id": vote.axis_id, "name": vote.axis.name, "points": 0, "top3": 0, "top5": 0})
        entry["points"] += 6 - vote.rank
        entry["top5"] += 1
        entry["top3"] += 1 if vote.rank <= 3 else 0
    result = sorted(tally.values(), key=lambda e: (-e["points"], -e["top3"], e["name"].casefold()))
    for entry in result:
        entry["voters"] = len(voters)
    return result


def my_votes(membership) -> list[int]:
    return list(GroupVote.objects.filter(membership=membership).order_by("rank").values_list("axis_id", flat=True))


def group_ranking(workshop) -> list[GroupRank]:
    return list(GroupRank.objects.filter(workshop=workshop).select_related("axis").order_by("rank"))


def job_data(job: Job | None) -> dict:
    """The map job as the board shows it (workshops.jobs.state plus the map version it made)."""
    if job is None:
        return {}
    return {**jobs.state(job), "result": (job.result or {}).get("version") if isinstance(job.result, dict) else None}


def latest_job(workshop) -> Job | None:
    return Job.objects.filter(workshop=workshop, kind="map").order_by("-created_at", "-id").first()


def board_state(workshop, membership) -> dict:
    session = session_for(workshop)
    axes = active_axes(workshop).select_related("created_by", "updated_by")
    return {
        "session": session_data(session),
        "me": membership.pseudonym,
        "role": membership.role,
        "cards": [card_data(a) for a in axes],
        "present": presence(workshop.id),
        "tally": vote_tally(workshop),
        "my_vote": my_votes(membership),
        "ranking": [{"id": r.axis_id, "name": r.axis.name, "rank": r.rank} for r in group_ranking(workshop)],
        "job": job_data(latest_job(workshop)),
    }


# --- labels for the map -----------------------------------------------------------------------


def visible_annotations(membership):
    """Annotations a member may attach on the board: every active member's (the board is shared)."""
    return Annotation.objects.filter(
        membership__workshop_id=membership.workshop_id, membership__withdrawn_at__isnull=True
    )


def visible_messages(membership):
    """Messages a member may quote on the board: those of the conversations they can read
    (participants: their own and the baseline set; staff: every active participant's and the
    baseline), never a facilitator's sandbox or another participant's private conversation."""
    from coding.selectors import visible_conversations

    conversations = visible_conversations(membership.workshop, membership).order_by().values("id")
    return Message.objects.filter(conversation_id__in=conversations).exclude(status="superseded")


# --- the excerpt picker (attach a passage of a transcript or a highlight to a card) -------------

PICKER_RESULTS = 30
PICKER_SNIPPET = 90
_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\u0964]+[\"'\u201d\u2019)\]]*\s+|\n\s*")


def picker_text(content: str) -> str:
    """A message's text as the picker shows it and slices it (line ends as the browser has them)."""
    return (content or "").replace("\r\n", "\n").replace("\r", "\n")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, trailing spaces included: together they cover it all."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if match.end() > start:
            spans.append((start, match.end()))
            start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def _conversation_label(conversation, membership) -> str:
    from django.utils.translation import gettext as _

    title = conversation.title or _("Conversation %(n)d") % {"n": conversation.pk}
    if conversation.is_baseline:
        return _("Baseline · %(title)s") % {"title": title}
    if conversation.owner_id == membership.pk:
        return _("Yours · %(title)s") % {"title": title}
    return f"{conversation.owner.pseudonym} · {title}"


def _snippet(text: str, q: str) -> str:
    at = text.casefold().find(q.casefold()) if q else -1
    if at < 0:
        return text[: PICKER_SNIPPET * 2] + ("…" if len(text) > PICKER_SNIPPET * 2 else "")
    start = max(0, at - PICKER_SNIPPET)
    end = min(len(text), at + len(q) + PICKER_SNIPPET)
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")


def _my_highlights(membership, conversation_ids, *, q: str = "", message_ids=None) -> list:
    from coding.selectors import annotation_views

    filters = {"membership": membership, "message__conversation_id__in": conversation_ids}
    if message_ids is not None:
        filters["message_id__in"] = message_ids
    if q:
        filters["pk__in"] = Annotation.objects.filter(
            Q(excerpt__icontains=q) | Q(memo__icontains=q) | Q(codes__text__icontains=q), membership=membership
        ).values("pk")
    return annotation_views(**filters)


def picker_browse(membership, *, q: str = "") -> dict:
    """The picker's first view: the member's highlights, the transcripts they can read and,
    with a query, the messages that contain it."""
    from coding.selectors import visible_conversations

    q = " ".join((q or "").split())[:100]
    conversations = list(visible_conversations(membership.workshop, membership))
    by_id = {c.pk: c for c in conversations}
    highlights = _my_highlights(membership, list(by_id), q=q)
    message_conv = dict(Message.objects.filter(pk__in=[h.message_id for h in highlights])
                        .values_list("pk", "conversation_id"))
    rows = []
    for h in highlights[:PICKER_RESULTS]:
        conversation = by_id.get(message_conv.get(h.message_id))
        rows.append({"highlight": h, "conversation": conversation,
                     "where": _conversation_label(conversation, membership) if conversation else ""})
    matches = []
    if q:
        found = (visible_messages(membership).filter(content__icontains=q)
                 .only("id", "content", "role", "conversation_id", "position").order_by("conversation_id", "position")
                 [:PICKER_RESULTS])
        for m in found:
            conversation = by_id.get(m.conversation_id)
            if conversation is not None:
                matches.append({"message": m, "conversation": conversation, "snippet": _snippet(picker_text(m.content), q),
                                "where": _conversation_label(conversation, membership)})
    return {
        "q": q,
        "highlights": rows,
        "more_highlights": len(highlights) > PICKER_RESULTS,
        "matches": matches,
        "conversations": [{"conversation": c, "label": _conversation_label(c, membership)} for c in conversations],
    }


def picker_transcript(membership, conversation_id) -> dict | None:
    """One readable conversation for the picker: each message cut into sentences (with their
    offsets in the text), and the member's own highlights on it. None if not readable."""
    from coding.selectors import CODABLE_STATUSES, visible_conversations

    try:
        conversation_id = int(conversation_id)
    except (TypeError, ValueError):
        return None
    conversation = visible_conversations(membership.workshop, membership).filter(pk=conversation_id).first()
    if conversation is None:
        return None
    messages = [
        m for m in Message.objects.filter(conversation=conversation).exclude(status="superseded")
        .only("id", "role", "content", "status", "position").order_by("position", "id")
        if m.content and (m.role == "user" or m.status in CODABLE_STATUSES)
    ]
    highlights = defaultdict(list)
    for h in _my_highlights(membership, [conversation.pk], message_ids=[m.pk for m in messages]):
        highlights[h.message_id].append(h)
    turns = []
    for m in messages:
        text = picker_text(m.content)
        turns.append({"message": m, "sentences": [{"start": s, "end": e, "text": text[s:e]} for s, e in sentence_spans(text)],
                      "highlights": highlights.get(m.pk, [])})
    return {"conversation": conversation, "label": _conversation_label(conversation, membership), "turns": turns}


def label_rows(workshop, kind: str, norm: str) -> list:
    if kind == "code":
        return list(Code.objects.filter(workshop=workshop, normalized=norm, membership__withdrawn_at__isnull=True))
    if kind == "attribute":
        return [a for a in Attribute.objects.filter(workshop=workshop, membership__withdrawn_at__isnull=True)
                if normalize(a.name) == norm]
    return []


def annotations_for_label(workshop, kind: str, norm: str) -> list[Annotation]:
    if kind == "code":
        codes = Code.objects.filter(workshop=workshop, normalized=norm, membership__withdrawn_at__isnull=True)
    else:
        codes = Code.objects.filter(
            attributes__in=[a.pk for a in label_rows(workshop, "attribute", norm)], membership__withdrawn_at__isnull=True
        )
    return list(
        Annotation.objects.filter(codes__in=codes, membership__withdrawn_at__isnull=True)
        .distinct().order_by("id")
    )


def map_labels(workshop) -> list[dict]:
    """Every distinct label of the group: initial codes and attributes of active members.

    One entry per (kind, normalised text): label, who used it, definitions/memos, excerpts
    (with conversation and message ids). Ordered by key, so the same data gives the same order.
    """
    labels: dict[str, dict] = {}
    code_key: dict[int, str] = {}
    codes = Code.objects.filter(workshop=workshop, membership__withdrawn_at__isnull=True).select_related("membership")
    for code in codes.order_by("id"):
        norm = normalize(code.normalized or code.text)
        key = f"code:{norm}"
        entry = labels.setdefault(key, {"key": key, "kind": "code", "label": code.text, "users": set(),
                                        "definitions": [], "excerpts": [], "code_ids": [], "attribute_ids": []})
        entry["users"].add(code.membership.pseudonym)
        entry["code_ids"].append(code.pk)
        if code.memo:
            entry["definitions"].append(code.memo)
        code_key[code.pk] = key
    attributes = (
        Attribute.objects.filter(workshop=workshop, membership__withdrawn_at__isnull=True)
        .select_related("membership").prefetch_related(Prefetch("codes", queryset=Code.objects.only("id")))
    )
    attribute_codes: dict[str, set[int]] = defaultdict(set)
    for attribute in attributes.order_by("id"):
        norm = normalize(attribute.name)
        key = f"attribute:{norm}"
        entry = labels.setdefault(key, {"key": key, "kind": "attribute", "label": attribute.name, "users": set(),
                                        "definitions": [], "excerpts": [], "code_ids": [], "attribute_ids": []})
        entry["users"].add(attribute.membership.pseudonym)
        entry["attribute_ids"].append(attribute.pk)
        if attribute.definition:
            entry["definitions"].append(attribute.definition)
        attribute_codes[key].update(c.pk for c in attribute.codes.all())
    # Excerpts behind the labels, few queries however many labels there are.
    links = (
        AnnotationCode.objects.filter(code__workshop=workshop, annotation__membership__withdrawn_at__isnull=True)
        .select_related("annotation__message").order_by("annotation_id")
    )
    by_code: dict[int, list] = defaultdict(list)
    for link in links:
        a = link.annotation
        by_code[link.code_id].append({"excerpt": a.excerpt[:EXCERPT_CHARS], "message": a.message_id,
                                      "conversation": a.message.conversation_id, "annotation": a.pk})
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
    missing = len([k for k in labels if version is None or k not in {p["key"] for p in points}])
    return {
        "version": version.number if version else None,
        "method": version.method if version else None,
        "created_at": version.created_at.isoformat() if version else None,
        "points": points,
        "participants": sorted({u for e in labels.values() for u in e["users"]}),
        "unplaced": missing,
        "me": membership.pseudonym,
        "job": job_data(latest_job(workshop)),
    }


# --- results -------------------------------------------------------------------------------------


def likert_distribution(workshop) -> list[dict]:
    axes = list(active_axes(workshop))
    counts = {a.pk: [0, 0, 0, 0, 0] for a in axes}
    for axis_id, value in LikertRating.objects.filter(
        axis__in=axes, membership__withdrawn_at__isnull=True, membership__role=Role.PARTICIPANT
    ).values_list("axis_id", "value"):
        counts[axis_id][value - 1] += 1
    result = []
    for a in axes:
        c = counts[a.pk]
        n = sum(c)
        result.append({"id": a.pk, "name": a.name, "counts": c, "n": n,
                       "mean": round(sum((i + 1) * k for i, k in enumerate(c)) / n, 3) if n else None})
    return result


def _rank_vector(order: dict[int, float], axis_ids: list[int]) -> list[float]:
    """Ranks over all axes; unranked axes share the place after the last ranked one."""
    worst = (max(order.values()) if order else 0) + 1
    return [order.get(a, worst) for a in axis_ids]


def _corr(a: list[float], b: list[float], method: str):
    from scipy import stats

    if len(a) < 2 or len(set(a)) < 2 or len(set(b)) < 2:
        return None
    value = (stats.spearmanr(a, b) if method == "spearman" else stats.kendalltau(a, b))[0]
    return None if value is None or math.isnan(value) else round(float(value), 3)


def pick_axes(workshop) -> dict[int, set[int]]:
    """For each pick, the active axes it fed (directly, through its attribute, or the attribute's codes)."""
    axes = list(active_axes(workshop).prefetch_related("sources"))
    picks = list(Pick.objects.filter(membership__workshop=workshop).select_related("attribute").prefetch_related("attribute__codes"))
    result: dict[int, set[int]] = defaultdict(set)
    for axis in axes:
        src = list(axis.sources.all())
        pick_ids = {s.pick_id for s in src if s.pick_id}
        attr_ids = {s.attribute_id for s in src if s.attribute_id}
        code_ids = {s.code_id for s in src if s.code_id}
        for pick in picks:
            if pick.pk in pick_ids or (pick.attribute_id and pick.attribute_id in attr_ids):
                result[pick.pk].add(axis.pk)
            elif pick.attribute_id and code_ids & {c.pk for c in pick.attribute.codes.all()}:
                result[pick.pk].add(axis.pk)
    return result


def consensus_shift(workshop) -> dict:
    """Segment 1 picks versus segment 5 rankings, per participant and for the group.

    Each participant's picks induce a ranking of the final axes (an axis fed by their first
    pick is ranked 1, ... unfed axes share the last place). Both that ranking ("before") and
    their segment 5 ranking ("after") are compared with the group's final ranking (Spearman
    rho and Kendall tau). A participant converged if their agreement with the group rose.
    """
    axes = list(active_axes(workshop))
    axis_ids = [a.pk for a in axes]
    group = {r.axis_id: r.rank for r in group_ranking(workshop) if r.axis_id in set(axis_ids)}
    group_vec = _rank_vector(group, axis_ids)
    fed = pick_axes(workshop)
    rows = []
    picks = defaultdict(list)
    for pick in Pick.objects.filter(membership__workshop=workshop).order_by("position"):
        picks[pick.membership_id].append(pick)
    after_ranks = defaultdict(dict)
    for r in IndividualRank.objects.filter(axis__in=axes):
        after_ranks[r.membership_id][r.axis_id] = r.rank
    for m in participants(workshop):
        before: dict[int, float] = {}
        for pick in picks.get(m.pk, []):
            for axis_id in fed.get(pick.pk, ()):
                before[axis_id] = min(before.get(axis_id, 99), pick.position)
        after = after_ranks.get(m.pk, {})
        b = _rank_vector(before, axis_ids)
        a = _rank_vector(after, axis_ids)
        row = {
            "participant": m.pseudonym,
            "picks": [p.name for p in picks.get(m.pk, [])],
            "picks_on_board": len(before),
            "ranked": len(after),
            "before_rho": _corr(b, group_vec, "spearman") if before and group else None,
            "after_rho": _corr(a, group_vec, "spearman") if after and group else None,
            "before_tau": _corr(b, group_vec, "kendall") if before and group else None,
            "after_tau": _corr(a, group_vec, "kendall") if after and group else None,
            "self_tau": _corr(b, a, "kendall") if before and after else None,
        }
        if row["before_rho"] is not None and row["after_rho"] is not None:
            row["shift"] = round(row["after_rho"] - row["before_rho"], 3)
            row["converged"] = row["after_rho"] > row["before_rho"]
        else:
            row["shift"] = None
            row["converged"] = None
        rows.append(row)

    def mean(key):
        values = [r[key] for r in rows if r[key] is not None]
        return round(sum(values) / len(values), 3) if values else None

    comparable = [r for r in rows if r["converged"] is not None]
    return {
        "rows": rows,
        "group": {
            "before_rho": mean("before_rho"), "after_rho": mean("after_rho"),
            "before_tau": mean("before_tau"), "after_tau": mean("after_tau"),
            "converged": sum(1 for r in comparable if r["converged"]), "comparable": len(comparable),
            "participants": len(rows),
        },
        "has_group_ranking": bool(group),
    }


def rating_state(membership) -> dict:
    ratings = dict(LikertRating.objects.filter(membership=membership).values_list("axis_id", "value"))
    ranks = dict(IndividualRank.objects.filter(membership=membership).values_list("axis_id", "rank"))
    return {"ratings": ratings, "ranks": ranks}


def progress_counts(workshop) -> dict[int, dict]:
    """Dashboard columns: picks made, Likert ratings given, ranking submitted."""
    result: dict[int, dict] = defaultdict(lambda: {"picks": 0, "ratings": 0, "ranked": "–"})
    for mid in Pick.objects.filter(membership__workshop=workshop).values_list("membership_id", flat=True):
        result[mid]["picks"] += 1
    for mid in LikertRating.objects.filter(membership__workshop=workshop, axis__status=AxisStatus.ACTIVE).values_list("membership_id", flat=True):
        result[mid]["ratings"] += 1
    for mid in set(IndividualRank.objects.filter(membership__workshop=workshop).values_list("membership_id", flat=True)):
        result[mid]["ranked"] = "✓"
    return dict(result)


# --- export ---------------------------------------------------------------------------------------


def axis_provenance(workshop) -> list[dict]:
    """For each active axis: sources (codes, attributes, picks) with their excerpts and messages.

    Only active members' labels and annotations, and pseudonyms only.
    """
    axes = list(active_axes(workshop).prefetch_related("sources", "examples__message"))
    likert = {row["id"]: row for row in likert_distribution(workshop)}
    group = {r.axis_id: r.rank for r in group_ranking(workshop)}
    indiv = defaultdict(list)
    for axis_id, rank in IndividualRank.objects.filter(
        axis__in=axes, membership__withdrawn_at__isnull=True, membership__role=Role.PARTICIPANT
    ).values_list("axis_id", "rank"):
        indiv[axis_id].append(rank)
    result = []
    for axis in axes:
        attributes, codes, picks_out, participants_set = [], [], [], set()
        code_ids = set()
        for s in axis.sources.all():
            if s.attribute_id:
                attr = Attribute.objects.select_related("membership").filter(pk=s.attribute_id, membership__withdrawn_at__isnull=True).first()
                if attr is None:
                    continue
                participants_set.add(attr.membership.pseudonym)
                attr_codes = []
                for code in attr.codes.filter(membership__withdrawn_at__isnull=True):
                    code_ids.add(code.pk)
                    attr_codes.append(_code_tree(code))
                attributes.append({"attribute_id": attr.pk, "name": attr.name, "definition": attr.definition,
                                   "participant": attr.membership.pseudonym, "codes": attr_codes})
            elif s.code_id:
                code = Code.objects.select_related("membership").filter(pk=s.code_id, membership__withdrawn_at__isnull=True).first()
                if code is None or code.pk in code_ids:
                    continue
                code_ids.add(code.pk)
                participants_set.add(code.membership.pseudonym)
                codes.append(_code_tree(code))
            elif s.pick_id:
                pick = Pick.objects.select_related("membership").filter(pk=s.pick_id, membership__withdrawn_at__isnull=True).first()
                if pick is None:
                    continue
                participants_set.add(pick.membership.pseudonym)
                picks_out.append({"pick_id": pick.pk, "name": pick.name, "definition": pick.definition,
                                  "participant": pick.membership.pseudonym, "position": pick.position,
                                  "attribute_id": pick.attribute_id})
        examples = []
        for e in axis.examples.all():
            conv = e.message.conversation
            if not conv.is_baseline and conv.owner.withdrawn_at is not None:
                continue
            examples.append({"excerpt": e.excerpt, "conversation_id": conv.pk, "message_id": e.message_id,
                             "annotation_id": e.annotation_id})
        labels = [p["name"] for p in picks_out] + [a["name"] for a in attributes] + [c["text"] for c in codes]
        seen, source_labels = set(), []
        for label in labels:
            if normalize(label) not in seen:
                seen.add(normalize(label))
                source_labels.append(label)
        ranks = indiv.get(axis.pk, [])
        lk = likert.get(axis.pk, {"n": 0, "mean": None, "counts": [0] * 5})
        result.append({
            "axis_id": axis.pk, "name": axis.name, "definition": axis.definition, "version": axis.version,
            "group_rank": group.get(axis.pk), "in_group_top_three": bool(group.get(axis.pk) and group[axis.pk] <= 3),
            "likert": {"n": lk["n"], "mean": lk["mean"], "counts": lk["counts"]},
            "mean_individual_rank": round(sum(ranks) / len(ranks), 3) if ranks else None,
            "individual_rank_n": len(ranks),
            "source_labels": source_labels, "participants": sorted(participants_set),
            "merged_from": list(Axis.objects.filter(merged_into=axis).values_list("pk", flat=True)),
            "split_from": axis.split_from_id,
            "picks": picks_out, "attributes": attributes, "codes": codes, "examples": examples,
        })
    return result


def _code_tree(code: Code) -> dict:
    annotations = code.annotations.filter(membership__withdrawn_at__isnull=True).select_related("message")
    return {
        "code_id": code.pk, "text": code.text, "participant": code.membership.pseudonym,
        "excerpts": [{"annotation_id": a.pk, "excerpt": a.excerpt, "start": a.start, "end": a.end,
                      "message_id": a.message_id, "conversation_id": a.message.conversation_id} for a in annotations],
    }
