"""The excerpt picker: passages of transcripts and highlights a member may attach to a card."""

from __future__ import annotations

import re
from collections import defaultdict

from django.db.models import Q

from coding.models import Annotation
from discussion.selectors.members import active
from llm_gateway.models import Message
from workshops.text import clean

# --- labels for the map -----------------------------------------------------------------------


def visible_annotations(membership):
    """Annotations a member may attach on the board: every active member's (the board is shared)."""
    return Annotation.objects.filter(
        active(), membership__workshop_id=membership.workshop_id
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

    q = clean(q)[:100]  # NFC, like the stored text typed in the browser
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
