"""Every read of the Discuss stage. Withdrawn members' data never leaves here."""

from __future__ import annotations

import math
import re
from collections import defaultdict

from django.db.models import Prefetch, Q, prefetch_related_objects
from django.utils import timezone
from django.utils.translation import gettext_lazy

from coding.models import Annotation, AnnotationCode, Attribute, Code
from discussion.models import (
    Axis,
    AxisComment,
    AxisEvent,
    AxisEventKind,
    AxisExample,
    AxisSource,
    AxisStatus,
    BoardPresence,
    BoardSequence,
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
from workshops.progress import StageStatus, Status

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
        "spotlight": (session.spotlight.pseudonym
                      if session.spotlight_id and shown_member(session.spotlight) else None),
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


def shown_pseudonym(membership) -> str | None:
    """A member's pseudonym where their data may be shown, None for a withdrawn member (or none)."""
    if membership is None or membership.is_withdrawn:
        return None
    return membership.pseudonym


def _active_members_q(prefix: str) -> Q:
    return Q(**{f"{prefix}__withdrawn_at__isnull": True})


# --- withdrawal: what of a withdrawn member may still be shown -----------------------------------
#
# The one rule of the Discuss stage (docs/discussion.md, "Withdrawal"): nothing a withdrawn
# member wrote or did is shown — not their picks, labels, comments, the excerpts they attached,
# their votes, ratings or rankings, nor their pseudonym as a card's author or editor. Their
# cards are dealt with once, when they withdraw (services.withdrawal_apply): a card nobody
# else touched leaves the board; a card others worked on stays as the group's, with their text
# replaced. Every read below filters with these helpers.


def active_members(workshop):
    """Members whose contributions may be shown: everyone in the workshop who has not withdrawn."""
    return Membership.objects.active().filter(workshop=workshop)


def shown_member(membership) -> Membership | None:
    """`membership` if it may be named, None if it is gone or withdrawn (author/editor of a card)."""
    return membership if membership is not None and membership.withdrawn_at is None else None


def visible_examples(axes):
    """Example excerpts of these cards that may be shown: not attached by a withdrawn member, not
    from a withdrawn member's conversation (baseline conversations stay), not a withdrawn
    member's highlight."""
    return (
        AxisExample.objects.filter(axis__in=axes, added_by__withdrawn_at__isnull=True)
        .filter(Q(message__conversation__is_baseline=True) | Q(message__conversation__owner__withdrawn_at__isnull=True))
        .filter(annotation__membership__withdrawn_at__isnull=True)
        .order_by("created_at", "id")
    )


def visible_comments(axes):
    return AxisComment.objects.filter(axis__in=axes, membership__withdrawn_at__isnull=True).order_by("created_at", "id")


def example_shown(example) -> bool:
    """`visible_examples` for an example already in memory (the board's prefetched cards)."""
    conversation = example.message.conversation
    return ((example.added_by is None or example.added_by.withdrawn_at is None)
            and (conversation.is_baseline or conversation.owner.withdrawn_at is None)
            and (example.annotation is None or example.annotation.membership.withdrawn_at is None))


# What card_data reads, fetched for all cards at once (board_state: a constant number of
# queries however many cards; a single card gets the same three queries it always had).
CARD_PREFETCH = (
    Prefetch("sources", queryset=AxisSource.objects.select_related(
        "code__membership", "attribute__membership", "pick__membership")),
    Prefetch("examples", queryset=AxisExample.objects.select_related(
        "message__conversation__owner", "added_by", "annotation__membership").order_by("created_at", "id")),
    Prefetch("comments", queryset=AxisComment.objects.select_related("membership").order_by("created_at", "id")),
    Prefetch("events", queryset=AxisEvent.objects.filter(kind__in=["merged", "unmerged"]).select_related("actor")
             .order_by("at", "id"), to_attr="merge_events"),
)


def card_data(axis: Axis) -> dict:
    """Everything a client shows for one card (texts are rendered as text by the client)."""
    if "comments" not in getattr(axis, "_prefetched_objects_cache", {}):  # board_state prefetched them
        prefetch_related_objects([axis], *CARD_PREFETCH)
    sources = []
    for s in axis.sources.all():
        row = s.code or s.attribute or s.pick
        if row is None or row.membership.withdrawn_at is not None:
            continue
        kind = "code" if s.code_id else "attribute" if s.attribute_id else "pick"
        sources.append({"kind": kind, "label": getattr(row, "text", None) or row.name, "by": row.membership.pseudonym})
    examples = [
        {"id": e.pk, "excerpt": e.excerpt[:EXCERPT_CHARS], "message": e.message_id,
         "conversation": e.message.conversation_id}
        for e in axis.examples.all() if example_shown(e)
    ]
    comments = [
        {"id": c.pk, "by": c.membership.pseudonym, "text": c.text, "at": c.created_at.isoformat()}
        for c in axis.comments.all() if c.membership.withdrawn_at is None
    ]
    created_by, updated_by = shown_member(axis.created_by), shown_member(axis.updated_by)
    return {
        "id": axis.pk,
        "name": axis.name,
        "definition": axis.definition,
        "status": axis.status,
        "merges": undoable_merges(axis),
        "merged_into": axis.merged_into_id,
        "split_from": axis.split_from_id,
        "version": axis.version,
        "by": created_by.pseudonym if created_by else None,
        "edited_by": updated_by.pseudonym if updated_by else None,
        "sources": sources,
        "examples": examples,
        "comments": comments,
    }


def undoable_merges(axis: Axis) -> list[dict]:
    """The merges into this card that the group can still undo (newest first): the merge event,
    the absorbed card's id and name, who merged it and when."""
    rows = getattr(axis, "merge_events", None)  # prefetched with the card (CARD_PREFETCH)
    if rows is None:
        rows = list(AxisEvent.objects.filter(axis=axis, kind__in=[AxisEventKind.MERGED, AxisEventKind.UNMERGED])
                    .select_related("actor").order_by("at", "id"))
    undone = {e.data.get("merge_event") for e in rows if e.kind == AxisEventKind.UNMERGED}
    authors = {e.data["absorbed"].get("created_by") for e in rows if e.kind == AxisEventKind.MERGED}
    members = Membership.objects.in_bulk([m for m in authors if m]) if authors else {}
    return [
        {"event": e.pk, "axis": e.data["absorbed"]["axis"], "name": e.data["absorbed"]["name"],
         "author": shown_pseudonym(members.get(e.data["absorbed"].get("created_by"))),
         "by": shown_pseudonym(e.actor), "at": e.at.isoformat()}
        for e in reversed(rows)
        if e.kind == AxisEventKind.MERGED and "undo" in e.data and e.pk not in undone
        # A withdrawn member's card is not brought back (nor its name shown) by an undo.
        and not _withdrawn_author(members.get(e.data["absorbed"].get("created_by")))
    ]


def _withdrawn_author(membership) -> bool:
    return membership is not None and membership.is_withdrawn


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


def board_seq(workshop_id: int) -> int:
    """The board's current event sequence number (0 before its first change)."""
    return BoardSequence.objects.filter(workshop_id=workshop_id).values_list("seq", flat=True).first() or 0


def board_state(workshop, membership) -> dict:
    # The sequence number is read first: the state below includes at least every change up
    # to it, so a client replays only later events on top (replaying one twice is harmless).
    seq = board_seq(workshop.id)
    session = session_for(workshop)
    axes = active_axes(workshop).select_related("created_by", "updated_by").prefetch_related(*CARD_PREFETCH)
    return {
        "seq": seq,
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
        "embedding": _embedding_note(version),
    }


def _embedding_note(version):
    from discussion.mapping import embedding_note  # mapping imports this module

    return embedding_note(version)


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


def session_log(workshop, limit: int = 500):
    """The session's steps for the report; a withdrawn member's own steps are left out."""
    return (workshop.discussion_events.filter(Q(actor__isnull=True) | Q(actor__withdrawn_at__isnull=True))
            .select_related("actor").order_by("created_at", "id")[:limit])


def progress_counts(workshop) -> dict[int, dict]:
    """Dashboard columns: picks made, Likert ratings given, axes ranked (0 for people with none)."""
    result: dict[int, dict] = defaultdict(lambda: {"picks": 0, "ratings": 0, "ranked": 0})
    for mid in Pick.objects.filter(membership__workshop=workshop).values_list("membership_id", flat=True):
        result[mid]["picks"] += 1
    for mid in LikertRating.objects.filter(membership__workshop=workshop, axis__status=AxisStatus.ACTIVE).values_list("membership_id", flat=True):
        result[mid]["ratings"] += 1
    for mid in IndividualRank.objects.filter(membership__workshop=workshop).values_list("membership_id", flat=True):
        result[mid]["ranked"] += 1
    return dict(result)


def progress_status(workshop, member_ids, values) -> StageStatus:
    """Discuss: the individual task of the current segment (1: save a top three; 5: submit
    ratings and a ranking). The other segments are done together: nobody is behind in them."""
    from django.utils.translation import gettext as _
    from django.utils.translation import ngettext

    segment = session_for(workshop).segment
    label = str(Segment(segment).label)
    members = {}
    if segment == Segment.TOP_THREE:
        for mid in member_ids:
            picks = values.get(mid, {}).get("picks", 0)
            step = (ngettext("Top three: %(n)d pick saved", "Top three: %(n)d picks saved", picks) % {"n": picks}
                    if picks else _("Top three: not saved yet"))
            members[mid] = Status(step, picks > 0)
        return StageStatus(_("saved a top three"), members)
    if segment == Segment.RATINGS:
        total = active_axes(workshop).count()
        for mid in member_ids:
            v = values.get(mid, {})
            ranked = v.get("ranked", 0) > 0
            step = _("Ratings: %(n)d of %(total)d axes rated") % {"n": v.get("ratings", 0), "total": total}
            step += " · " + (_("ranked") if ranked else _("not ranked yet"))
            members[mid] = Status(step, ranked)
        return StageStatus(_("submitted ratings and a ranking"), members)
    for mid in member_ids:
        members[mid] = Status(label, None)
    return StageStatus("", members)


# --- export ---------------------------------------------------------------------------------------


# What is shown instead of a withdrawn member's own text (board, results, exports).
WITHDRAWN_TEXT = gettext_lazy("(withdrawn)")


class AxisHistory:
    """Every card of a workshop with its provenance events (three queries, then in memory), as
    the exports show them: pseudonyms only; a withdrawn member's events and cards are left out,
    and so are references to them, so every axis id the export mentions is in the export."""

    def __init__(self, workshop):
        self.axes = {a.pk: a for a in Axis.objects.filter(workshop=workshop)}
        self.members = {m.pk: m for m in Membership.objects.filter(workshop=workshop)}
        self.picks = {pk for pk, m in Pick.objects.filter(membership__workshop=workshop).values_list("pk", "membership_id")
                      if self.pseudonym(m) is not None}
        self.events: dict[int, list[AxisEvent]] = defaultdict(list)
        self.merge_of: dict[int, AxisEvent] = {}  # absorbed card -> the (latest) merge that absorbed it
        self.split_of: dict[int, AxisEvent] = {}  # original card -> its split
        for e in AxisEvent.objects.filter(axis__workshop=workshop).order_by("at", "id"):
            self.events[e.axis_id].append(e)
            if e.kind == AxisEventKind.MERGED:
                self.merge_of[e.data["absorbed"]["axis"]] = e
            elif e.kind == AxisEventKind.SPLIT:
                self.split_of[e.axis_id] = e
        self.merged_from: dict[int, list[int]] = defaultdict(list)
        for a in self.axes.values():
            if a.status == AxisStatus.MERGED and a.merged_into_id:
                self.merged_from[a.merged_into_id].append(a.pk)

    # -- who and what may be shown --
    def pseudonym(self, membership_id) -> str | None:
        return shown_pseudonym(self.members.get(membership_id)) if membership_id else None

    def member_shown(self, membership_id) -> bool:
        """A deleted membership (id gone) is shown as unknown; a withdrawn one is left out."""
        return membership_id is None or self.pseudonym(membership_id) is not None

    def card_shown(self, axis_id) -> bool:
        axis = self.axes.get(axis_id)
        return axis is not None and self.member_shown(axis.created_by_id)

    def ref(self, axis_id) -> int | None:
        return axis_id if axis_id is not None and self.card_shown(axis_id) else None

    def event_shown(self, e: AxisEvent) -> bool:
        if not self.member_shown(e.actor_id):
            return False
        if e.kind == AxisEventKind.MERGED:
            return self.card_shown(e.data["absorbed"]["axis"]) and self.member_shown(e.data["absorbed"].get("created_by"))
        if e.kind == AxisEventKind.UNMERGED:
            return self.card_shown(e.data.get("restored"))
        return True

    # -- one card --
    def event_out(self, e: AxisEvent) -> dict:
        d = e.data
        out = {"event_id": e.pk, "kind": e.kind, "at": e.at.isoformat(), "by": self.pseudonym(e.actor_id),
               "version": d.get("version")}
        if e.kind == AxisEventKind.CREATED:
            out.update(after={"name": d.get("name", ""), "definition": d.get("definition", "")},
                       split_from=self.ref(d.get("split_from")),
                       pick_id=d.get("pick") if d.get("pick") in self.picks else None)
        elif e.kind == AxisEventKind.EDITED:
            out.update(before=d.get("before"), after=d.get("after"))
        elif e.kind == AxisEventKind.MERGED:
            a = d["absorbed"]
            out.update(absorbed_axis_id=a["axis"], before=d.get("before"), after=d.get("after"), absorbed={
                "axis_id": a["axis"], "name": a["name"], "definition": a["definition"],
                "proposed_by": self.pseudonym(a.get("created_by")), "proposed_at": a.get("created_at")})
        elif e.kind == AxisEventKind.UNMERGED:
            out.update(restored_axis_id=d.get("restored"), merge_event_id=d.get("merge_event"),
                       before=d.get("before"), after=d.get("after"))
        elif e.kind == AxisEventKind.SPLIT:
            parts = [p for p in d.get("parts", []) if self.card_shown(p["axis"])]
            out.update(parts_axis_ids=[p["axis"] for p in parts],
                       parts=[{"axis_id": p["axis"], "name": p["name"], "definition": p["definition"]} for p in parts])
        if d.get("backfilled"):
            out["backfilled"] = True
        return out

    # -- whose text: a text a withdrawn member wrote is never shown, also not as the "before" of
    # someone else's later edit (issue: withdrawal removes what they wrote from every export) --
    def withdrawn(self, membership_id) -> bool:
        return membership_id in self.members and self.pseudonym(membership_id) is None

    def _masked(self, text: dict | None, author) -> dict | None:
        if text is None or not self.withdrawn(author):
            return text
        placeholder = str(WITHDRAWN_TEXT)
        return {"name": placeholder, "definition": placeholder if text.get("definition") else ""}

    def _walk(self, axis_id):
        """(event, author of the text before it, author of the text after it), in order."""
        author = self.axes[axis_id].created_by_id if axis_id in self.axes else None
        for e in self.events.get(axis_id, []):
            before_author = author
            if e.kind in (AxisEventKind.CREATED, AxisEventKind.EDITED) or (
                    e.kind in (AxisEventKind.MERGED, AxisEventKind.UNMERGED) and e.data.get("before") != e.data.get("after")):
                author = e.actor_id
            yield e, before_author, author

    def text_author(self, axis_id):
        """Who wrote the card's current name and definition (None: the group, or unknown)."""
        author = self.axes[axis_id].created_by_id if axis_id in self.axes else None
        for _e, _before, after in self._walk(axis_id):
            author = after
        return author

    def shown_text(self, axis_id) -> dict:
        a = self.axes[axis_id]
        return self._masked({"name": a.name, "definition": a.definition}, self.text_author(axis_id))

    def history(self, axis_id) -> list[dict]:
        out = []
        for e, before_author, after_author in self._walk(axis_id):
            if not self.event_shown(e):
                continue
            row = self.event_out(e)
            if "before" in row:
                row["before"] = self._masked(row["before"], before_author)
            if "after" in row:
                row["after"] = self._masked(row["after"], after_author)
            out.append(row)
        return out

    def shown_merged_from(self, axis_id) -> list[int]:
        return [pk for pk in self.merged_from.get(axis_id, []) if self.card_shown(pk)]

    def lineage(self, axis_id) -> list[int]:
        """Every earlier card this one grew from: cards merged into it (and into those), the card
        it was split from (and that card's own lineage)."""
        seen, stack = set(), [axis_id]
        while stack:
            current = stack.pop()
            parents = list(self.shown_merged_from(current))
            origin = self.ref(self.axes[current].split_from_id) if current in self.axes else None
            if origin is not None:
                parents.append(origin)
            for pk in parents:
                if pk not in seen and pk != axis_id:
                    seen.add(pk)
                    stack.append(pk)
        return sorted(seen)

    def contributors(self, axis_id) -> set[int]:
        """Membership ids behind a card: who proposed it or any card of its lineage, and who
        changed any of them (edits, merges, splits, undos)."""
        people = set()
        for pk in [axis_id, *self.lineage(axis_id)]:
            people.add(self.axes[pk].created_by_id)
            people.update(e.actor_id for e in self.events.get(pk, []) if self.event_shown(e))
        return {m for m in people if m is not None and self.pseudonym(m) is not None}

    def participant_pseudonyms(self, membership_ids) -> set[str]:
        return {self.members[m].pseudonym for m in membership_ids if m in self.members and self.members[m].is_participant}

    def card_out(self, axis_id) -> dict:
        a = self.axes[axis_id]
        text = self.shown_text(axis_id)
        return {"axis_id": a.pk, "status": a.status, "name": text["name"], "definition": text["definition"],
                "proposed_by": self.pseudonym(a.created_by_id), "proposed_at": a.created_at.isoformat(),
                "merged_into": self.ref(a.merged_into_id), "split_from": self.ref(a.split_from_id),
                "merged_from": self.shown_merged_from(a.pk), "history": self.history(a.pk)}

    def referenced(self, card: dict) -> set[int]:
        ids = {card["merged_into"], card["split_from"], *card["merged_from"]}
        for e in card["history"]:
            ids.update({e.get("split_from"), e.get("absorbed_axis_id"), e.get("restored_axis_id"), *e.get("parts_axis_ids", [])})
        return {pk for pk in ids if pk is not None}

    def cards_for(self, axis_ids) -> list[dict]:
        """The cards (not among `axis_ids`) that the given axes' provenance refers to, and the
        ones those refer to, until every reference resolves."""
        have, queue, out = set(axis_ids), [], []
        for pk in axis_ids:
            queue.extend(self.lineage(pk))
            queue.extend(self.referenced(self.card_out(pk)))
        while queue:
            pk = queue.pop(0)
            if pk in have or not self.card_shown(pk):
                continue
            have.add(pk)
            card = self.card_out(pk)
            out.append(card)
            queue.extend(self.referenced(card))
        return sorted(out, key=lambda c: c["axis_id"])

    # -- the CSV's self-contained cells --
    def merged_cards(self, axis_id) -> list[dict]:
        """Every card merged into this axis or into a card of its lineage, each with its text,
        author, when and by whom it was merged, and its own history."""
        rows = []
        for pk in self.lineage(axis_id):
            a = self.axes[pk]
            if a.status != AxisStatus.MERGED:
                continue
            merge = self.merge_of.get(pk)
            text = self.shown_text(pk)
            rows.append({"axis_id": pk, "name": text["name"], "definition": text["definition"],
                         "proposed_by": self.pseudonym(a.created_by_id), "proposed_at": a.created_at.isoformat(),
                         "merged_into": self.ref(a.merged_into_id),
                         "merged_at": merge.at.isoformat() if merge else None,
                         "merged_by": self.pseudonym(merge.actor_id) if merge else None,
                         "history": self.history(pk)})
        return rows

    def split_origin(self, axis_id) -> dict | None:
        origin = self.ref(self.axes[axis_id].split_from_id)
        if origin is None:
            return None
        a, split = self.axes[origin], self.split_of.get(origin)
        text = self.shown_text(origin)
        return {"axis_id": a.pk, "name": text["name"], "definition": text["definition"],
                "proposed_by": self.pseudonym(a.created_by_id), "proposed_at": a.created_at.isoformat(),
                "split_at": split.at.isoformat() if split else None,
                "split_by": self.pseudonym(split.actor_id) if split and self.event_shown(split) else None,
                "history": self.history(origin), "split_from": self.split_origin(origin)}


def axis_provenance(workshop, history: AxisHistory | None = None) -> list[dict]:
    """For each active axis: sources (codes, attributes, picks) with their excerpts and messages,
    who proposed it, its history (AxisEvent), the cards merged into it and the card it was split
    from (`AxisHistory`).

    Only active members' labels, annotations and events, and pseudonyms only.
    """
    axes = list(active_axes(workshop).prefetch_related("sources"))
    history = history or AxisHistory(workshop)
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
        examples = [
            {"excerpt": e.excerpt, "conversation_id": e.message.conversation_id, "message_id": e.message_id,
             "annotation_id": e.annotation_id}
            for e in visible_examples([axis.pk]).select_related("message")
        ]
        labels = [p["name"] for p in picks_out] + [a["name"] for a in attributes] + [c["text"] for c in codes]
        seen, source_labels = set(), []
        for label in labels:
            if normalize(label) not in seen:
                seen.add(normalize(label))
                source_labels.append(label)
        ranks = indiv.get(axis.pk, [])
        lk = likert.get(axis.pk, {"n": 0, "mean": None, "counts": [0] * 5})
        participants_set |= history.participant_pseudonyms(history.contributors(axis.pk))
        result.append({
            "axis_id": axis.pk, "name": axis.name, "definition": axis.definition, "version": axis.version,
            "proposed_by": history.pseudonym(axis.created_by_id), "proposed_at": axis.created_at.isoformat(),
            "group_rank": group.get(axis.pk), "in_group_top_three": bool(group.get(axis.pk) and group[axis.pk] <= 3),
            "likert": {"n": lk["n"], "mean": lk["mean"], "counts": lk["counts"]},
            "mean_individual_rank": round(sum(ranks) / len(ranks), 3) if ranks else None,
            "individual_rank_n": len(ranks),
            "source_labels": source_labels, "participants": sorted(participants_set),
            "merged_from": history.shown_merged_from(axis.pk),
            "split_from": history.ref(axis.split_from_id),
            "lineage": history.lineage(axis.pk),
            "history": history.history(axis.pk),
            "merged_cards": history.merged_cards(axis.pk),
            "split_origin": history.split_origin(axis.pk),
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
