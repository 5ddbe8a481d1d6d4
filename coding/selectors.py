"""Reads of the Reflect stage. Withdrawn members' data never leaves these functions."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field

from functools import cache

from django.db import connection
from django.db.models import Count, F, Max, Prefetch, Q
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from coding import summary
from coding.models import Annotation, AnnotationCode, Attribute, Code
from coding.spans import Span, overlap_clusters, render_annotation_items, render_highlights
from workshops.models import Job, JobStatus, Membership, Role, Stage, Workshop
from workshops.progress import StageStatus, Status
from workshops.text import normalize

CODABLE_STATUSES = ("complete", "interrupted")


def can_edit(workshop: Workshop, membership: Membership) -> bool:
    return membership.is_participant and not membership.is_withdrawn and workshop.stage == Stage.REFLECT


def active_participants(workshop: Workshop):
    return Membership.objects.filter(workshop=workshop, role=Role.PARTICIPANT).active().order_by("pseudonym")


def _conversations(workshop: Workshop):
    from llm_gateway.models import Conversation

    # A facilitator's conversations are sandbox conversations; the ones marked baseline are shared.
    return Conversation.objects.filter(workshop=workshop, owner__withdrawn_at__isnull=True).filter(
        Q(is_sandbox=False) | Q(is_baseline=True)
    )


def baseline_conversations(workshop: Workshop):
    return _conversations(workshop).filter(is_baseline=True).order_by("created_at", "id")


def visible_conversations(workshop: Workshop, membership: Membership):
    """Participants: their own and the baseline set. Staff: every active participant's and the baseline."""
    if not membership.is_participant:
        return research_conversations(workshop)
    qs = _conversations(workshop).filter(Q(owner=membership) | Q(is_baseline=True))
    return qs.select_related("owner").order_by("-is_baseline", "owner__pseudonym", "created_at", "id")


def research_conversations(workshop: Workshop):
    """What the Reflect stage codes and exports: every active participant's conversations and the
    baseline set (baseline first, then by pseudonym)."""
    qs = _conversations(workshop).filter(Q(owner__role=Role.PARTICIPANT) | Q(is_baseline=True))
    return qs.select_related("owner").order_by("-is_baseline", "owner__pseudonym", "created_at", "id")


def conversation_list(workshop: Workshop, membership: Membership, coder: Membership | None) -> list[dict]:
    """Conversations with their number of codable turns and how many `coder` has coded."""
    conversations = list(
        visible_conversations(workshop, membership).annotate(
            turns=Count("messages", filter=Q(messages__role="assistant", messages__status__in=CODABLE_STATUSES))
        )
    )
    coded: dict[int, int] = {}
    if coder is not None:
        rows = (
            Annotation.objects.filter(membership=coder, message__conversation__in=[c.id for c in conversations])
            .values("message__conversation_id")
            .annotate(n=Count("message_id", distinct=True))
        )
        coded = {r["message__conversation_id"]: r["n"] for r in rows}
    return [{"conversation": c, "turns": c.turns, "coded": coded.get(c.id, 0)} for c in conversations]


# --- Transcript --------------------------------------------------------------------------------


@dataclass
class Turn:
    message: object
    codable: bool
    html: str = ""
    annotations: list = field(default_factory=list)
    replaced: int = 0
    number: int = 0
    items_html: str = ""

    @property
    def article(self):
        from coding.rendering import render_turn_article

        return render_turn_article(self)


def transcript(conversation, coder: Membership | None, *, editable: bool = False) -> list[Turn]:
    """The conversation's messages in order, model answers with `coder`'s highlights rendered."""
    from llm_gateway.models import Message

    messages = list(
        Message.objects.filter(conversation=conversation)
        .only("id", "role", "content", "status", "position", "reply_to_id", "conversation_id")
        .order_by("position", "id")
    )
    annotations_by_message: dict[int, list[AnnotationView]] = defaultdict(list)
    if coder is not None:
        for a in annotation_views(membership=coder, message__conversation=conversation):
            annotations_by_message[a.message_id].append(a)
    replaced: dict[int, int] = defaultdict(int)
    for m in messages:
        if m.status == "superseded" and m.reply_to_id:
            replaced[m.reply_to_id] += 1
    turns = []
    number = 0
    for m in messages:
        if m.status == "superseded":
            continue
        if m.role == "assistant":
            number += 1
            anns = annotations_by_message.get(m.id, [])
            codable = m.status in CODABLE_STATUSES
            html = render_highlights(m.content, [Span(a.id, a.start, a.end) for a in anns])
            items = render_annotation_items(anns, editable=editable)
            turns.append(Turn(m, codable, html, anns, replaced.get(m.reply_to_id, 0), number, items))
        else:
            turns.append(Turn(m, False))
    return turns


@dataclass
class AnnotationView:
    """A highlight as the transcript shows it (plain values: hundreds are rendered per page)."""

    id: int
    message_id: int
    start: int
    end: int
    excerpt: str
    memo: str
    codes: list = field(default_factory=list)  # [(code id, text)] in code order (see code_order)


def code_order(code_id: int, normalized: str) -> tuple:
    """How a highlight's codes are listed: by normalized text, in code-point order (the same in
    Python and in any database collation, so a fragment built in memory after a save lists
    them exactly as the page does), then by id."""
    return normalized, code_id


def annotation_order(view: AnnotationView) -> tuple:
    return view.start, view.end, view.id


def annotation_views(**filters) -> list[AnnotationView]:
    """Highlights matching `filters` with their codes: one query (a join), no model instances."""
    rows = (
        Annotation.objects.filter(**filters)
        .order_by("start", "end", "id")
        .values_list("id", "message_id", "start", "end", "excerpt", "memo",
                     "annotationcode__code_id", "annotationcode__code__text", "annotationcode__code__normalized")
    )
    return _views_from_rows(rows)


@cache
def _turn_annotations_sql() -> str:
    a, ac, c = (m._meta.db_table for m in (Annotation, AnnotationCode, Code))
    return (
        f'SELECT a.id, a.message_id, a."start", a."end", a.excerpt, a.memo, c.id, c.text, c.normalized '
        f"FROM {a} a LEFT OUTER JOIN {ac} ac ON ac.annotation_id = a.id LEFT OUTER JOIN {c} c ON c.id = ac.code_id "
        f'WHERE a.membership_id = %s AND a.message_id = %s ORDER BY a."start", a."end", a.id'
    )


def turn_annotations(membership_id: int, message_id: int) -> list[AnnotationView]:
    """annotation_views(membership=…, message=…) for the hot path (every code saved reads it):
    the same rows through one fixed SQL string, because building the ORM query costs several
    times more than running it."""
    with connection.cursor() as cursor:
        cursor.execute(_turn_annotations_sql(), [membership_id, message_id])
        return _views_from_rows(cursor.fetchall())


def _views_from_rows(rows) -> list[AnnotationView]:
    views: dict[int, AnnotationView] = {}
    for pk, message_id, start, end, excerpt, memo, code_id, text, normalized in rows:
        view = views.get(pk)
        if view is None:
            view = views[pk] = AnnotationView(pk, message_id, start, end, excerpt, memo)
        if code_id is not None:
            view.codes.append((normalized, code_id, text))
    for view in views.values():  # code_order: (normalized, id); tuples compare the same way
        if len(view.codes) > 1:
            view.codes.sort()
        view.codes = [(code_id, text) for _n, code_id, text in view.codes]
    return list(views.values())


def annotations_for_message(message, coder: Membership) -> list[AnnotationView]:
    return turn_annotations(coder.id, message.id)


def turn_counts(message) -> tuple[int, int]:
    """(its number among the conversation's shown answers, how many answers it replaced)."""
    from llm_gateway.models import Message

    counts = Message.objects.filter(conversation_id=message.conversation_id, role="assistant").aggregate(
        number=Count("id", filter=Q(position__lte=message.position) & ~Q(status="superseded")),
        replaced=Count("id", filter=Q(status="superseded", reply_to_id=message.reply_to_id)),
    )
    return counts["number"], counts["replaced"] if message.reply_to_id else 0


def render_turn(message, coder: Membership, *, editable: bool = True, annotations=None) -> Turn:
    """One model answer as the transcript shows it (the fragment a save returns).

    `annotations`: the coder's highlights on it, when the caller already has them (a save
    returns the turn as it wrote it); `message.turn_number` / `message.turn_replaced`, when
    the message was read with them (services._codable_message), save the count query."""
    anns = annotations_for_message(message, coder) if annotations is None else annotations
    html = render_highlights(message.content, [Span(a.id, a.start, a.end) for a in anns])
    if getattr(message, "turn_number", None) is not None:
        number, replaced = message.turn_number, (message.turn_replaced or 0) if message.reply_to_id else 0
    else:
        number, replaced = turn_counts(message)
    return Turn(message, message.status in CODABLE_STATUSES, html, anns, replaced=replaced, number=number,
                items_html=render_annotation_items(anns, editable=editable))


# --- Codes and suggestions -------------------------------------------------------------------


def code_suggestions(membership: Membership) -> dict[str, list[str]]:
    """Autocomplete: the member's own codes; other participants' only if the facilitator allows it."""
    own = list(Code.objects.filter(membership=membership).order_by("text").values_list("text", flat=True))
    group: list[str] = []
    if membership.workshop.share_code_suggestions and membership.is_participant:
        own_keys = {normalize(t) for t in own}
        seen = set()
        rows = (
            Code.objects.filter(workshop_id=membership.workshop_id, membership__withdrawn_at__isnull=True,
                                membership__role=Role.PARTICIPANT)
            .exclude(membership=membership)
            .order_by("normalized")
            .values_list("text", "normalized")
        )
        for text, normalized in rows:
            if normalized not in own_keys and normalized not in seen:
                seen.add(normalized)
                group.append(text)
    return {"own": own, "group": group}


def codebook(membership: Membership) -> list[Code]:
    return list(
        Code.objects.filter(membership=membership)
        .annotate(uses=Count("annotations", distinct=True), groups=Count("attributes", distinct=True))
        .order_by("normalized")
    )


def focus_board(membership: Membership) -> dict:
    codes = codebook(membership)
    attributes = list(
        Attribute.objects.filter(membership=membership)
        .prefetch_related(Prefetch("codes", queryset=Code.objects.order_by("normalized")))
        .order_by("position", "id")
    )
    pool = [c for c in codes if c.groups == 0]
    return {"codes": codes, "attributes": attributes, "pool": pool}


def attribute_excerpts(attribute: Attribute) -> list[dict]:
    """The highlights behind an attribute's codes, with the code(s) that brought each in."""
    code_ids = list(attribute.codes.values_list("id", flat=True))
    anns = (
        Annotation.objects.filter(membership_id=attribute.membership_id, codes__in=code_ids)
        .distinct()
        .select_related("message__conversation")
        .prefetch_related(Prefetch("codes", queryset=Code.objects.filter(id__in=code_ids).order_by("text"), to_attr="via"))
        .order_by("message__conversation_id", "message__position", "start")
    )
    return [{"annotation": a, "conversation": a.message.conversation, "via": a.via} for a in anns]


# --- Progress (dashboard) -----------------------------------------------------------------------


def progress_by_member(workshop: Workshop, only: Membership | None = None) -> dict[int, dict]:
    """{membership id: {turns_coded: "3/10", baseline_coded: "1/2", codes: n, attributes: n}} for the
    workshop's active participants (or only one of them)."""
    from llm_gateway.models import Message

    members = active_participants(workshop)
    if only is not None:
        members = members.filter(pk=only.pk)
    members = list(members.values_list("id", flat=True))
    own_turns = dict(
        Message.objects.filter(conversation__workshop=workshop, conversation__owner_id__in=members,
                               conversation__is_sandbox=False, role="assistant", status__in=CODABLE_STATUSES)
        .values("conversation__owner_id").annotate(n=Count("id")).values_list("conversation__owner_id", "n")
    )
    own_coded = dict(
        Annotation.objects.filter(membership_id__in=members, message__conversation__owner_id=F("membership_id"))
        .values("membership_id").annotate(n=Count("message_id", distinct=True)).values_list("membership_id", "n")
    )
    baseline_ids = list(baseline_conversations(workshop).values_list("id", flat=True))
    baseline_coded = dict(
        Annotation.objects.filter(membership_id__in=members, message__conversation_id__in=baseline_ids)
        .values("membership_id").annotate(n=Count("message__conversation_id", distinct=True))
        .values_list("membership_id", "n")
    )
    codes = dict(Code.objects.filter(membership_id__in=members).values("membership_id").annotate(n=Count("id"))
                 .values_list("membership_id", "n"))
    attributes = dict(Attribute.objects.filter(membership_id__in=members).values("membership_id")
                      .annotate(n=Count("id")).values_list("membership_id", "n"))
    out = {}
    for m in members:
        out[m] = {
            "turns_coded": f"{own_coded.get(m, 0)}/{own_turns.get(m, 0)}",
            "baseline_coded": f"{baseline_coded.get(m, 0)}/{len(baseline_ids)}",
            "codes": codes.get(m, 0),
            "attributes": attributes.get(m, 0),
        }
    return out


def progress_status(workshop: Workshop, member_ids, values) -> StageStatus:
    """Reflect: done once a participant has coded every baseline conversation and grouped codes
    into at least one attribute (focused coding)."""
    def fraction(text) -> tuple[int, int]:  # "3/10", as progress_by_member writes it
        done, _sep, total = str(text or "0/0").partition("/")
        return int(done or 0), int(total or 0)

    members = {}
    for mid in member_ids:
        v = values.get(mid, {})
        codes, attributes = v.get("codes", 0), v.get("attributes", 0)
        baseline_done, baseline_total = fraction(v.get("baseline_coded"))
        if attributes:
            step = _("Focused coding") + " · " + ngettext("%(n)d attribute", "%(n)d attributes", attributes) % {
                "n": attributes}
        elif codes or fraction(v.get("turns_coded"))[0]:
            step = _("Initial coding") + " · " + ngettext("%(n)d code", "%(n)d codes", codes) % {"n": codes}
        else:
            step = _("Has not started coding")
        if baseline_total and baseline_done < baseline_total:
            step += " · " + _("baseline %(done)d/%(total)d") % {"done": baseline_done, "total": baseline_total}
        members[mid] = Status(step, attributes > 0 and baseline_done >= baseline_total)
    return StageStatus(_("coded the baseline conversations and defined an attribute"), members)


def member_progress(membership: Membership) -> dict:
    return progress_by_member(membership.workshop, only=membership).get(membership.id, {
        "turns_coded": "0/0", "baseline_coded": "0/0", "codes": 0, "attributes": 0,
    })


# --- Baseline comparison ------------------------------------------------------------------------


def baseline_comparison(workshop: Workshop) -> list[dict]:
    """For each baseline answer: every participant's spans and codes, grouped by overlapping excerpt."""
    from llm_gateway.models import Message

    participants = list(active_participants(workshop))
    by_id = {m.id: m for m in participants}
    conversations = list(baseline_conversations(workshop))
    messages = list(
        Message.objects.filter(conversation__in=conversations, role="assistant", status__in=CODABLE_STATUSES)
        .order_by("conversation_id", "position")
    )
    anns = (
        Annotation.objects.filter(message__in=messages, membership_id__in=by_id)
        .prefetch_related(Prefetch("codes", queryset=Code.objects.order_by("text")))
        .order_by("start", "end", "id")
    )
    per_message: dict[int, list[Annotation]] = defaultdict(list)
    for a in anns:
        per_message[a.message_id].append(a)
    out = []
    for conv in conversations:
        turns = []
        for msg in (m for m in messages if m.conversation_id == conv.id):
            msg_anns = per_message.get(msg.id, [])
            spans = [Span(a.id, a.start, a.end) for a in msg_anns]
            ann_by_id = {a.id: a for a in msg_anns}
            clusters = []
            for start, end, members in overlap_clusters(spans):
                rows: dict[int, list[Annotation]] = defaultdict(list)
                for s in members:
                    rows[ann_by_id[s.id].membership_id].append(ann_by_id[s.id])
                coders = [
                    {"membership": by_id[mid], "annotations": rows[mid]}
                    for mid in sorted(rows, key=lambda i: by_id[i].pseudonym)
                ]
                clusters.append({
                    "start": start, "end": end, "excerpt": msg.content[start:end],
                    "html": render_highlights(msg.content[start:end],
                                              [Span(s.id, s.start - start, s.end - start) for s in members]),
                    "coders": coders, "coder_count": len(coders),
                })
            coded_by = {a.membership_id for a in msg_anns}
            turns.append({
                "message": msg,
                "html": render_highlights(msg.content, spans),
                "clusters": clusters,
                "not_coded_by": [m for m in participants if m.id not in coded_by],
            })
        out.append({"conversation": conv, "turns": turns})
    return out


# --- Group summary ------------------------------------------------------------------------------


def summary_fingerprint(workshop: Workshop) -> str:
    """Changes whenever anything the summary reads changes (cheap aggregate queries)."""
    from llm_gateway.models import Message

    members = active_participants(workshop)
    withdrawn = Membership.objects.filter(workshop=workshop, withdrawn_at__isnull=False).order_by("id")
    parts = [
        f"format:{summary.FORMAT}",
        ",".join(str(i) for i in members.values_list("id", flat=True)),
        "withdrawn:" + ",".join(str(i) for i in withdrawn.values_list("id", flat=True)),
        str(Message.objects.filter(conversation__workshop=workshop).aggregate(n=Count("id"), m=Max("id"),
                                                                             c=Max("completed_at"))),
        str(Annotation.objects.filter(membership__workshop=workshop).aggregate(n=Count("id"), m=Max("id"),
                                                                              u=Max("updated_at"))),
        str(AnnotationCode.objects.filter(annotation__membership__workshop=workshop).aggregate(n=Count("id"),
                                                                                              m=Max("id"))),
        str(Code.objects.filter(workshop=workshop).aggregate(n=Count("id"), m=Max("id"), u=Max("updated_at"))),
        str(Attribute.objects.filter(workshop=workshop).aggregate(n=Count("id"), m=Max("id"), u=Max("updated_at"),
                                                                 c=Count("codes"))),
        str(list(baseline_conversations(workshop).values_list("id", flat=True))),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def latest_summary_job(workshop: Workshop) -> Job | None:
    return Job.objects.filter(workshop=workshop, kind="summary").order_by("-created_at", "-id").first()


def latest_done_summary(workshop: Workshop) -> Job | None:
    return (
        Job.objects.filter(workshop=workshop, kind="summary", status=JobStatus.DONE)
        .order_by("-created_at", "-id").first()
    )


def summary_contributors(result: dict) -> set[int]:
    """The members whose data a computed summary holds (older results: from their rows)."""
    if "contributors" in result:
        return set(result["contributors"])
    ids = {p["membership_id"] for p in result.get("participants", [])}
    ids |= {c["owner_id"] for c in result.get("conversations", []) if "owner_id" in c}
    return ids


def shown_summary(workshop: Workshop) -> Job | None:
    """The latest finished summary that may still be shown: none of the members whose data it
    holds has withdrawn since (a withdrawal queues a new one: services.summary_refresh)."""
    done = latest_done_summary(workshop)
    if done is None or not done.result:
        return None
    withdrawn = set(Membership.objects.filter(workshop=workshop, withdrawn_at__isnull=False).values_list("id", flat=True))
    if withdrawn & summary_contributors(done.result):
        return None
    if withdrawn and "contributors" not in done.result:
        # An old result does not say who owns its conversations: only show it if their
        # pseudonyms are all still active.
        owners = {c["owner"] for c in done.result.get("conversations", [])}
        if Membership.objects.filter(workshop=workshop, pseudonym__in=owners, withdrawn_at__isnull=False).exists():
            return None
    return done


def summary_for(result: dict, workshop: Workshop, membership: Membership) -> dict:
    """A computed summary as `membership` may read it. The group's topics and label frequencies
    are shared (the paper's session artifact); conversations (title, owner, keywords) only those
    the reader may read in Reflect (visible_conversations: a participant's own and the baseline
    set); per-participant sections only their own for a participant."""
    readable = set(visible_conversations(workshop, membership).values_list("id", flat=True))
    participants = result["participants"]
    topics = result.get("topics", [])
    if membership.is_participant:
        participants = [p for p in participants if p["membership_id"] == membership.id]
        # A topic from one other person's private conversation would show their words: only
        # topics of conversations the reader can read, or of several other people's.
        topics = [t for t in topics if "owners" in t and (
            readable.intersection(t.get("conversation_ids", ()))
            or len(set(t["owners"]) - {membership.id}) >= summary.TOPIC_MIN_PEOPLE)]
    return {**result, "topics": topics[:summary.MAX_TOPICS],
            "conversations": [c for c in result["conversations"] if c["id"] in readable],
            "participants": participants}


def summary_inputs(workshop: Workshop) -> dict:
    """Everything the summary task needs, read in a few queries."""
    from llm_gateway.models import Message

    participants = list(active_participants(workshop))
    ids = [m.id for m in participants]
    conversations = list(
        _conversations(workshop).filter(Q(owner_id__in=ids) | Q(is_baseline=True)).select_related("owner")
        .order_by("id")
    )
    texts: dict[int, list[str]] = defaultdict(list)
    turns: dict[int, int] = defaultdict(int)
    for conv_id, role, content in (
        Message.objects.filter(conversation__in=conversations).exclude(status__in=("superseded", "failed"))
        .order_by("conversation_id", "position").values_list("conversation_id", "role", "content")
    ):
        texts[conv_id].append(content)
        if role == "user":
            turns[conv_id] += 1
    labels = list(
        AnnotationCode.objects.filter(annotation__membership_id__in=ids)
        .values_list("annotation__membership_id", "code__text", "code__normalized")
    )
    codes = list(
        Code.objects.filter(membership_id__in=ids).annotate(uses=Count("annotations", distinct=True))
        .values_list("membership_id", "text", "uses")
    )
    ann_counts = dict(Annotation.objects.filter(membership_id__in=ids).values("membership_id")
                      .annotate(n=Count("id")).values_list("membership_id", "n"))
    attributes = defaultdict(list)
    for a in Attribute.objects.filter(membership_id__in=ids).prefetch_related("codes").order_by("position", "id"):
        attributes[a.membership_id].append({"name": a.name, "definition": a.definition,
                                            "codes": sorted(c.text for c in a.codes.all())})
    highlights = defaultdict(list)
    for view, membership_id, conversation_id in _highlights_with_owner(ids):
        highlights[membership_id].append({"excerpt": view.excerpt[:300], "codes": [t for _i, t in view.codes],
                                          "memo": view.memo[:300], "conversation": conversation_id})
    return {
        "participants": participants, "conversations": conversations, "texts": texts, "turns": turns,
        "labels": labels, "codes": codes, "annotation_counts": ann_counts, "attributes": attributes,
        "highlights": highlights,
    }


def _highlights_with_owner(membership_ids: list[int]):
    owners = dict(Annotation.objects.filter(membership_id__in=membership_ids)
                  .values_list("id", "membership_id"))
    conversations = dict(Annotation.objects.filter(membership_id__in=membership_ids)
                         .values_list("id", "message__conversation_id"))
    views = annotation_views(membership_id__in=membership_ids)
    views.sort(key=lambda v: (conversations[v.id], v.message_id, v.start, v.end, v.id))
    for v in views:
        yield v, owners[v.id], conversations[v.id]
