"""What a member's withdrawal does to the board (docs/discussion.md, "Withdrawal")."""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone, translation

from discussion import events, selectors
from discussion.models import (
    COMMENT_MAX,
    DEFINITION_MAX,
    NAME_MAX,
    Axis,
    AxisComment,
    AxisEventKind,
    AxisExample,
    AxisSource,
    AxisStatus,
    GroupRank,
    GroupVote,
    IndividualRank,
    LikertRating,
    SessionEvent,
)
from discussion.services._common import WITHDRAWN_TEXT, _axis_event, _card_changed, _log, _text_of
from workshops.models import Membership, Workshop

# --- withdrawal ------------------------------------------------------------------------------------

# Log entries that carry the text someone wrote on a card (see _text_history).
_TEXT_EVENTS = ("card_create", "card_edit", "card_merge", "card_split", "card_withdrawn_text")


def _text_history(workshop_id: int) -> dict[int, list[tuple[int | None, str | None, str | None]]]:
    """For each card, every (writer, name, definition) written on it, oldest first (the session log)."""
    history: dict[int, list] = defaultdict(list)
    for e in SessionEvent.objects.filter(workshop_id=workshop_id, kind__in=_TEXT_EVENTS).order_by("created_at", "id"):
        data = e.data if isinstance(e.data, dict) else {}
        if e.kind == "card_create":
            history[data.get("axis")].append((e.actor_id, data.get("name"), data.get("definition")))
        elif e.kind in ("card_edit", "card_withdrawn_text") or (e.kind == "card_merge" and data.get("after")):
            after = data.get("after") or {}
            history[data.get("axis", data.get("into"))].append((e.actor_id, after.get("name"), after.get("definition")))
        elif e.kind == "card_split":
            for part in data.get("parts") or []:
                history[part.get("axis")].append((e.actor_id, part.get("name"), part.get("definition")))
    return history


def _touched_by_others(axis_ids: list[int], history: dict) -> set[int]:
    """Cards among `axis_ids` that an active (not withdrawn) member worked on: edited, commented,
    voted, rated, ranked, attached to, merged into it, split it off their card, or ranked by the group."""
    if not axis_ids:
        return set()
    active = {"membership__withdrawn_at__isnull": True}
    touched: set[int] = set()
    for model in (AxisComment, GroupVote, LikertRating, IndividualRank):
        touched |= set(model.objects.filter(axis_id__in=axis_ids, **active).values_list("axis_id", flat=True))
    touched |= set(GroupRank.objects.filter(axis_id__in=axis_ids).values_list("axis_id", flat=True))
    for model in (AxisSource, AxisExample):
        touched |= set(model.objects.filter(axis_id__in=axis_ids, added_by__isnull=False,
                                            added_by__withdrawn_at__isnull=True).values_list("axis_id", flat=True))
    touched |= set(Axis.objects.filter(merged_into_id__in=axis_ids, created_by__isnull=False,
                                       created_by__withdrawn_at__isnull=True).values_list("merged_into_id", flat=True))
    touched |= set(Axis.objects.filter(pk__in=axis_ids).filter(
        Q(split_from__created_by__isnull=False, split_from__created_by__withdrawn_at__isnull=True)
        | Q(updated_by__isnull=False, updated_by__withdrawn_at__isnull=True)).values_list("pk", flat=True))
    withdrawn = set(Membership.objects.filter(pk__in=[w for a in axis_ids for w, _n, _d in history.get(a, []) if w],
                                              withdrawn_at__isnull=False).values_list("pk", flat=True))
    touched |= {a for a in axis_ids if any(w and w not in withdrawn for w, _n, _d in history.get(a, []))}
    return touched


@transaction.atomic
def withdrawal_apply(*, workshop: Workshop) -> dict:
    """Take withdrawn members' contributions off the board (called when someone withdraws; idempotent).

    - A card a withdrawn member created that no active member touched leaves the board
      (archived, logged as `card_withdrawn` without its text).
    - A card whose current name and definition a withdrawn member wrote (created and nobody
      rewrote it, or their edit was the last) stays as the group's: its text goes back to the
      last version an active member wrote, or becomes "(withdrawn)" if there is none.
    - Comments copied onto a card by a merge keep their author but lose the "[card name]"
      prefix when that name was a withdrawn member's text.
    Their comments, attached excerpts, votes, ratings and rankings stay in the database and are
    filtered out by every read (selectors.visible_examples, visible_comments, ...); a withdrawn
    author or editor is never named (selectors.shown_member).
    """
    withdrawn = set(Membership.objects.filter(workshop=workshop, withdrawn_at__isnull=False).values_list("pk", flat=True))
    outcome = {"removed": [], "rewritten": []}
    if not withdrawn:
        return outcome
    with translation.override(workshop.language or None):
        placeholder = str(WITHDRAWN_TEXT)
    history = _text_history(workshop.id)
    cards = list(Axis.objects.select_for_update().filter(workshop=workshop).order_by("id"))
    by_id = {c.pk: c for c in cards}

    def written_by_withdrawn(card: Axis) -> bool:
        writes = [w for w in history.get(card.pk, []) if w[1] is not None]
        if card.updated_by_id in withdrawn:
            return True
        if writes:
            return writes[-1][0] in withdrawn
        return card.created_by_id in withdrawn

    theirs = [c.pk for c in cards if c.status == AxisStatus.ACTIVE and c.created_by_id in withdrawn]
    touched = _touched_by_others(theirs, history)
    now = timezone.now()
    for card in cards:
        if card.status != AxisStatus.ACTIVE:
            continue
        if card.pk in theirs and card.pk not in touched:
            Axis.objects.filter(pk=card.pk).update(status=AxisStatus.ARCHIVED, version=F("version") + 1, updated_at=now)
            _log(workshop.id, None, "card_withdrawn", axis=card.pk)
            card.status, card.version = AxisStatus.ARCHIVED, card.version + 1
            events.board(workshop.id, "card_removed", {"id": card.pk, "card": {"id": card.pk, "status": card.status}})
            outcome["removed"].append(card.pk)
            continue
        if not written_by_withdrawn(card):
            continue
        kept = next((w for w in reversed(history.get(card.pk, [])) if w[0] and w[0] not in withdrawn and w[1]), None)
        if kept is not None:
            name, definition, editor = kept[1][:NAME_MAX], (kept[2] or "")[:DEFINITION_MAX], kept[0]
        else:
            name, definition, editor = placeholder, placeholder if card.definition else "", None
        Axis.objects.filter(pk=card.pk).update(name=name, definition=definition, updated_by_id=editor,
                                               version=F("version") + 1, updated_at=now)
        # The provenance chain ends at the text now shown; the exports never show the "before".
        _axis_event(card, AxisEventKind.EDITED, None, before=_text_of(card), withdrawal=True,
                    after={"name": name, "definition": definition}, version=card.version + 1)
        # Logged with the text it now shows (never theirs), so running this again changes nothing.
        _log(workshop.id, None, "card_withdrawn_text", axis=card.pk, restored=kept is not None,
             after={"name": name, "definition": definition})
        outcome["rewritten"].append(card.pk)
    # "[name] comment" copies made by a merge, where the merged card's name was theirs.
    for card in cards:
        target = by_id.get(card.merged_into_id)
        if card.status == AxisStatus.MERGED and target is not None and written_by_withdrawn(card):
            prefix = f"[{card.name}] "
            for comment in AxisComment.objects.filter(axis=target, text__startswith=prefix):
                comment.text = f"[{placeholder}] {comment.text[len(prefix):]}"[:COMMENT_MAX]
                comment.save(update_fields=["text"])
                outcome["rewritten"].append(target.pk)
    for axis in Axis.objects.filter(pk__in=set(outcome["rewritten"])).select_related("created_by", "updated_by"):
        _card_changed(axis)
    events.board(workshop.id, "votes", {"tally": selectors.vote_tally(workshop)})
    return outcome


def on_withdrawal(membership: Membership) -> None:
    """The withdrawal hook (workshops.withdrawal): runs in the withdrawal's transaction."""
    withdrawal_apply(workshop=membership.workshop)
