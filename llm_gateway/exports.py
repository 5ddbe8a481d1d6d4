"""Research exports of the Interact stage: every message, and the choices made in compare mode.

Columns are stable and documented in docs/llm_gateway.md. Participants appear only by
pseudonym; withdrawn members are left out; every field is quoted; a text cell a spreadsheet
would run as a formula (= + - @, a tab or a carriage return first) gets a leading apostrophe.
The views send them with `workshops.exports.stream_download` (constant memory under ASGI).
"""

from __future__ import annotations

from collections.abc import Iterator

from llm_gateway.models import Message, Preference

MESSAGE_COLUMNS = [
    "participant", "role", "conversation_id", "conversation_title", "model_label", "endpoint_key", "model_id",
    "is_baseline", "is_sandbox", "message_id", "position", "speaker", "status", "text", "reply_to_id",
    "superseded_by_id", "prompt_tokens", "completion_tokens", "stream_chunks", "ttft_ms", "total_ms",
    "attempts", "error_kind", "created_at", "completed_at", "is_candidate", "candidate_column", "variant",
    "finish_reason",
]
PREFERENCE_COLUMNS = [
    "participant", "conversation_id", "question_message_id", "question", "mode", "candidate_ids_in_order_shown",
    "candidate_endpoints", "candidate_variants", "chosen_message_id", "chosen_column", "chosen_endpoint",
    "chosen_variant", "none_of_these", "note", "decided_at",
]
PAGE = 500


# --- Rows ----------------------------------------------------------------------------------------


def message_rows(workshop) -> Iterator[list]:
    """Every message, one row each, in message id order, read page by page (keyset on id)."""
    after = 0
    while True:
        page = list(Message.objects.filter(conversation__workshop_id=workshop.id,
                                           conversation__owner__withdrawn_at__isnull=True, id__gt=after)
                    .select_related("conversation__owner").order_by("id")[:PAGE])
        if not page:
            return
        for m in page:
            c = m.conversation
            yield [
                c.owner.pseudonym, c.owner.role, c.id, c.title, c.model_label, m.endpoint_key or c.endpoint_key,
                m.model_id, int(c.is_baseline), int(c.is_sandbox), m.id, m.position, m.role, m.status, m.content,
                m.reply_to_id, m.superseded_by_id, m.prompt_tokens, m.completion_tokens, m.stream_chunks, m.ttft_ms,
                m.total_ms, m.attempts, m.error_kind, m.created_at.isoformat(),
                m.completed_at.isoformat() if m.completed_at else None,
                int(m.is_candidate), m.slot + 1 if m.is_candidate else None, m.variant, m.finish_reason,
            ]
        after = page[-1].id
        del page  # one page alive at a time: the next is read only after this one is let go


def preference_rows(workshop) -> Iterator[list]:
    """Compare mode: one row per set of candidate answers, with what the participant chose
    (an empty decided_at: not chosen yet). Read page by page (keyset on id); the candidates'
    endpoints are looked up for one page at a time."""
    after = 0
    while True:
        prefs = list(Preference.objects.filter(conversation__workshop_id=workshop.id,
                                               conversation__owner__withdrawn_at__isnull=True, id__gt=after)
                     .select_related("membership", "question", "chosen").order_by("id")[:PAGE])
        if not prefs:
            return
        shown = {m.id: m for m in Message.objects.filter(pk__in=[i for p in prefs for i in p.candidates])
                 .only("id", "endpoint_key", "variant")}
        for p in prefs:
            ordered = [shown[i] for i in p.candidates if i in shown]
            yield [
                p.membership.pseudonym, p.conversation_id, p.question_id, p.question.content, p.mode,
                " ".join(str(m.id) for m in ordered), " | ".join(m.endpoint_key for m in ordered),
                " | ".join(m.variant for m in ordered), p.chosen_id, p.chosen.slot + 1 if p.chosen else None,
                p.chosen.endpoint_key if p.chosen else None, p.chosen.variant if p.chosen else None,
                int(p.none_chosen), p.note, p.decided_at.isoformat() if p.decided_at else None,
            ]
        after = prefs[-1].id
        del prefs, shown  # as above: one page alive at a time
