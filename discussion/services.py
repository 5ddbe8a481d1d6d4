"""Every write of the Discuss stage. Keyword-only arguments, one transaction each.

Rules checked here (views and the socket consumer only translate input):
- facilitator-only actions refuse anyone else (`NotAllowed`);
- participants write only in the segment that takes their input, while it is open;
- card edits carry the version the writer started from; a stale version raises `Conflict`
  with the current text, so nothing is silently overwritten;
- rankings and ratings refuse axes that are not on the board (merged, removed, or of
  another workshop).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from coding.models import Attribute
from discussion import events, selectors
from discussion.models import (
    COMMENT_MAX,
    DEFINITION_MAX,
    NAME_MAX,
    Axis,
    AxisComment,
    AxisEvent,
    AxisEventKind,
    AxisExample,
    AxisSource,
    AxisStatus,
    BoardPresence,
    GroupRank,
    GroupVote,
    IndividualRank,
    LikertRating,
    Pick,
    Segment,
    Session,
    SessionEvent,
)
from workshops import jobs
from workshops.models import Job, JobStatus, Membership, Role, Stage, Workshop
from workshops.text import normalize

log = logging.getLogger(__name__)


# What a card shows instead of the name/definition a withdrawn member wrote (docs/discussion.md).
WITHDRAWN_TEXT = selectors.WITHDRAWN_TEXT


class NotAllowed(ValidationError):
    """The member may not do this (role, segment, or workshop)."""


class Conflict(Exception):
    """A card changed since the writer loaded it."""

    def __init__(self, axis: Axis, attempted: dict):
        super().__init__("conflict")
        self.axis = axis
        self.attempted = attempted


# --- helpers ------------------------------------------------------------------------------


def _clean_text(value, *, max_length: int, field: str, required: bool = True) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError({field: _("Expected text.")})
    value = value.replace("\x00", "").strip()
    if required and not value:
        raise ValidationError({field: _("This cannot be empty.")})
    if len(value) > max_length:
        raise ValidationError({field: _("At most %(n)d characters.") % {"n": max_length}})
    return value


def _require_member(membership: Membership, workshop: Workshop | None = None) -> None:
    if membership is None or membership.is_withdrawn:
        raise NotAllowed(_("You are not an active member of this workshop."))
    if workshop is not None and membership.workshop_id != workshop.id:
        raise NotAllowed(_("That belongs to another workshop."))


def _require_facilitator(membership: Membership) -> None:
    _require_member(membership)
    if not membership.is_facilitator:
        raise NotAllowed(_("Only the facilitator can do this."))


def _require_segment(membership: Membership, session: Session, segments: tuple[int, ...]) -> None:
    """Participants act only in the given segments while open; facilitators always may."""
    _require_member(membership)
    if membership.is_facilitator:
        return
    if not membership.is_participant:
        raise NotAllowed(_("Researchers observe the session; they do not change it."))
    if session.workshop.stage != Stage.DISCUSS:
        raise NotAllowed(_("The Discuss stage is not open."))
    if session.segment not in segments or not session.segment_open:
        raise NotAllowed(_("This part of the session is not open now."))


def _log(workshop_id: int, actor: Membership | None, kind: str, **data) -> None:
    SessionEvent.objects.create(workshop_id=workshop_id, actor=actor, kind=kind, data=data)


def _axis_event(axis: Axis, kind: str, actor: Membership | None, **data) -> AxisEvent:
    """Append one provenance event (called inside the service's transaction, with the change)."""
    return AxisEvent.objects.create(axis=axis, kind=kind, actor=actor, data=data)


def _text_of(axis: Axis) -> dict:
    return {"name": axis.name, "definition": axis.definition}


def _session_changed(session: Session) -> None:
    Session.objects.filter(pk=session.pk).update(version=F("version") + 1)
    session.refresh_from_db()
    payload = selectors.session_data(session)
    events.board(session.workshop_id, "session", payload)
    events.workshop(session.workshop_id, "discuss.session", {"segment": session.segment, "version": session.version})


def _active_axis(workshop_id: int, axis_id, *, lock: bool = False) -> Axis:
    try:
        axis_id = int(axis_id)
    except (TypeError, ValueError):
        raise ValidationError({"axis": _("No such card.")}) from None
    qs = Axis.objects.filter(workshop_id=workshop_id, pk=axis_id).select_related("created_by")
    if lock:
        qs = qs.select_for_update(of=("self",))
    axis = qs.first()
    if axis is None:
        raise ValidationError({"axis": _("No such card.")})
    if axis.status != AxisStatus.ACTIVE:
        raise ValidationError({"axis": _("“%(name)s” is no longer on the board (merged or removed).") % {"name": axis.name}})
    return axis


def _ordered_axis_ids(workshop_id: int, axis_ids, *, max_len: int | None, field: str) -> list[Axis]:
    if not isinstance(axis_ids, (list, tuple)):
        raise ValidationError({field: _("Expected a list of cards.")})
    ids = []
    for value in axis_ids:
        try:
            ids.append(int(value))
        except (TypeError, ValueError):
            raise ValidationError({field: _("No such card.")}) from None
    if len(set(ids)) != len(ids):
        raise ValidationError({field: _("Each axis can take only one place.")})
    if max_len is not None and len(ids) > max_len:
        raise ValidationError({field: _("At most %(n)d places.") % {"n": max_len}})
    axes = {a.pk: a for a in Axis.objects.filter(workshop_id=workshop_id, pk__in=ids)}
    result = []
    for axis_id in ids:
        axis = axes.get(axis_id)
        if axis is None:
            raise ValidationError({field: _("No such card.")})
        if axis.status != AxisStatus.ACTIVE:
            raise ValidationError({field: _("“%(name)s” is no longer on the board (merged or removed).") % {"name": axis.name}})
        result.append(axis)
    return result


class BoardFull(ValidationError):
    """A card cap is reached (DISCUSSION_CARDS_PER_MEMBER / DISCUSSION_CARDS_PER_BOARD)."""


def _check_card_caps(*, membership: Membership, session: Session, adding: int, leaving: Axis | None = None) -> None:
    """Refuse `adding` new cards (while `leaving` goes off the board) beyond the caps.

    Counted under a lock on the board's session row, so concurrent creates from many sockets
    cannot overshoot. Facilitators may write cards for the group: only the board cap binds them.
    """
    Session.objects.select_for_update().filter(pk=session.pk).values_list("pk", flat=True).first()
    active = Axis.objects.filter(workshop_id=membership.workshop_id, status=AxisStatus.ACTIVE)
    on_board = active.count() - (1 if leaving is not None else 0)
    if on_board + adding > settings.DISCUSSION_CARDS_PER_BOARD:
        raise BoardFull(_("The board is full (%(n)d cards): merge or remove cards before adding more.")
                        % {"n": settings.DISCUSSION_CARDS_PER_BOARD}, code="board_full")
    if membership.is_facilitator:
        return
    mine = active.filter(created_by=membership).count()
    if leaving is not None and leaving.created_by_id == membership.pk:
        mine -= 1
    if mine + adding > settings.DISCUSSION_CARDS_PER_MEMBER:
        raise BoardFull(_("You have %(n)d cards on the board, the most one person may add: merge or remove "
                          "some first.") % {"n": settings.DISCUSSION_CARDS_PER_MEMBER}, code="member_full")


def _card_changed(axis: Axis, kind: str = "card") -> None:
    events.board(axis.workshop_id, kind, {"card": selectors.card_data(axis)})


# --- the session -----------------------------------------------------------------------------


def session_get(*, workshop: Workshop) -> Session:
    """The workshop's session (created on first use); called inside other services' transactions."""
    session, _created = Session.objects.get_or_create(workshop=workshop)
    session.workshop = workshop
    return session


@transaction.atomic
def session_set_segment(*, workshop: Workshop, by: Membership, segment: int, open: bool = True) -> Session:
    _require_facilitator(by)
    _require_member(by, workshop)
    try:
        segment = int(segment)
    except (TypeError, ValueError):
        raise ValidationError({"segment": _("No such segment.")}) from None
    if segment not in Segment.values:
        raise ValidationError({"segment": _("No such segment.")})
    session = Session.objects.select_for_update().get_or_create(workshop=workshop)[0]
    session.workshop = workshop
    previous = session.segment
    session.segment = segment
    session.segment_open = bool(open)
    session.timer_ends_at = None if previous != segment else session.timer_ends_at
    if segment == Segment.PRESENTATIONS and previous != segment:
        session.spotlight = None
    session.save()
    _log(workshop.id, by, "segment", segment=segment, previous=previous, open=session.segment_open)
    _session_changed(session)
    return session


@transaction.atomic
def session_set_open(*, workshop: Workshop, by: Membership, open: bool) -> Session:
    _require_facilitator(by)
    _require_member(by, workshop)
    session = Session.objects.select_for_update().get_or_create(workshop=workshop)[0]
    session.workshop = workshop
    session.segment_open = bool(open)
    session.save(update_fields=["segment_open", "updated_at"])
    _log(workshop.id, by, "open" if open else "close", segment=session.segment)
    _session_changed(session)
    return session


@transaction.atomic
def session_reveal_picks(*, workshop: Workshop, by: Membership, revealed: bool = True) -> Session:
    _require_facilitator(by)
    _require_member(by, workshop)
    session = Session.objects.select_for_update().get_or_create(workshop=workshop)[0]
    session.workshop = workshop
    session.picks_revealed = bool(revealed)
    session.save(update_fields=["picks_revealed", "updated_at"])
    _log(workshop.id, by, "reveal" if revealed else "hide")
    _session_changed(session)
    return session


@transaction.atomic
def session_set_spotlight(*, workshop: Workshop, by: Membership, membership_id) -> Session:
    _require_facilitator(by)
    _require_member(by, workshop)
    target = None
    if membership_id not in (None, "", 0, "0"):
        try:
            target = Membership.objects.active().get(workshop=workshop, pk=int(membership_id), role=Role.PARTICIPANT)
        except (Membership.DoesNotExist, TypeError, ValueError):
            raise ValidationError({"spotlight": _("No such participant.")}) from None
    session = Session.objects.select_for_update().get_or_create(workshop=workshop)[0]
    session.workshop = workshop
    session.spotlight = target
    session.save(update_fields=["spotlight", "updated_at"])
    _log(workshop.id, by, "spotlight", participant=target.pseudonym if target else None)
    _session_changed(session)
    return session


@transaction.atomic
def session_set_timer(*, workshop: Workshop, by: Membership, minutes) -> Session:
    _require_facilitator(by)
    _require_member(by, workshop)
    try:
        minutes = float(minutes)
    except (TypeError, ValueError):
        raise ValidationError({"minutes": _("Enter a number of minutes.")}) from None
    if not 0 <= minutes <= 180:
        raise ValidationError({"minutes": _("Between 0 and 180 minutes.")})
    session = Session.objects.select_for_update().get_or_create(workshop=workshop)[0]
    session.workshop = workshop
    session.timer_ends_at = timezone.now() + timedelta(minutes=minutes) if minutes else None
    session.save(update_fields=["timer_ends_at", "updated_at"])
    _log(workshop.id, by, "timer", minutes=minutes)
    _session_changed(session)
    return session


# --- segment 1: picks -------------------------------------------------------------------------


@transaction.atomic
def picks_save(*, membership: Membership, picks: list[dict]) -> list[Pick]:
    """Replace a participant's top three. Each item: {name, definition, attribute_id?}; empty items are skipped."""
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.TOP_THREE,))
    if not membership.is_participant:
        raise NotAllowed(_("Only participants pick a top three."))
    if len(picks) > 3:
        raise ValidationError(_("Pick at most three."))
    cleaned = []
    seen = set()
    for index, item in enumerate(picks, start=1):
        name = _clean_text(item.get("name"), max_length=NAME_MAX, field=f"name_{index}", required=False)
        definition = _clean_text(item.get("definition"), max_length=DEFINITION_MAX, field=f"definition_{index}", required=False)
        attribute = None
        if item.get("attribute_id"):
            attribute = Attribute.objects.filter(pk=item["attribute_id"], membership=membership).first()
            if attribute is None:
                raise ValidationError({f"attribute_{index}": _("Choose one of your own attributes.")})
            name = name or attribute.name
            definition = definition or attribute.definition
        if not name:
            continue
        if not definition:
            raise ValidationError({f"definition_{index}": _("Give a definition in your own words.")})
        if normalize(name) in seen:
            raise ValidationError({f"name_{index}": _("You picked this one already.")})
        seen.add(normalize(name))
        cleaned.append((name, definition, attribute))
    Pick.objects.filter(membership=membership).delete()
    created = [
        Pick.objects.create(membership=membership, position=pos, name=n, definition=d, attribute=a)
        for pos, (n, d, a) in enumerate(cleaned, start=1)
    ]
    _log(membership.workshop_id, membership, "picks", count=len(created))
    events.workshop(membership.workshop_id, "discuss.picks", {})
    return created


# --- segment 4: the board ---------------------------------------------------------------------


@transaction.atomic
def axis_create(*, membership: Membership, name, definition="", pick_id=None) -> Axis:
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.BOARD,))
    name = _clean_text(name, max_length=NAME_MAX, field="name")
    definition = _clean_text(definition, max_length=DEFINITION_MAX, field="definition", required=False)
    pick = None
    if pick_id:
        pick = Pick.objects.filter(pk=pick_id, membership__workshop_id=membership.workshop_id,
                                   membership__withdrawn_at__isnull=True).first()
        if pick is None:
            raise ValidationError({"pick": _("No such pick.")})
    _check_card_caps(membership=membership, session=session, adding=1)
    axis = Axis.objects.create(workshop_id=membership.workshop_id, name=name, definition=definition,
                               created_by=membership, updated_by=membership)
    if pick is not None:
        AxisSource.objects.create(axis=axis, pick=pick, added_by=membership)
        if pick.attribute_id:
            AxisSource.objects.create(axis=axis, attribute_id=pick.attribute_id, added_by=membership)
    _axis_event(axis, AxisEventKind.CREATED, membership, name=name, definition=definition,
                pick=pick.pk if pick else None, split_from=None, version=axis.version)
    _log(membership.workshop_id, membership, "card_create", axis=axis.pk, name=name, definition=definition)
    _card_changed(axis, "card")
    return axis


@transaction.atomic
def axis_update(*, membership: Membership, axis_id, name, definition, version) -> Axis:
    """Change a card's name and definition; `version` is the one the writer started from.

    One conditional UPDATE (no lock held across round trips): it changes the row only if the
    card is still on the board at that version; otherwise the writer gets a Conflict with the
    current text. The log keeps every version's text (the previous one is the prior event).
    """
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.BOARD,))
    name = _clean_text(name, max_length=NAME_MAX, field="name")
    definition = _clean_text(definition, max_length=DEFINITION_MAX, field="definition", required=False)
    try:
        axis_id, version = int(axis_id), int(version)
    except (TypeError, ValueError):
        raise ValidationError({"version": _("Missing card or version.")}) from None
    # The text at `version` (a version number names one text: every text change raises it), read
    # for the edit's provenance; the conditional UPDATE below is what decides.
    before = Axis.objects.filter(pk=axis_id, workshop_id=membership.workshop_id, version=version).values(
        "name", "definition").first()
    updated = Axis.objects.filter(
        pk=axis_id, workshop_id=membership.workshop_id, status=AxisStatus.ACTIVE, version=version
    ).update(name=name, definition=definition, version=F("version") + 1, updated_by=membership,
             updated_at=timezone.now())
    if not updated:
        axis = _active_axis(membership.workshop_id, axis_id)  # refuses a missing, merged or removed card
        raise Conflict(axis, {"name": name, "definition": definition, "version": version})
    after = {"name": name, "definition": definition}
    AxisEvent.objects.create(axis_id=axis_id, kind=AxisEventKind.EDITED, actor=membership,
                             data={"before": before, "after": after, "version": version + 1})
    _log(membership.workshop_id, membership, "card_edit", axis=axis_id, after=after, version=version + 1)
    # The most frequent change carries only the text (no provenance queries, a small frame).
    events.board(membership.workshop_id, "card_text", {"card": {
        "id": axis_id, "name": name, "definition": definition, "version": version + 1,
        "edited_by": membership.pseudonym}})
    return Axis(pk=axis_id, workshop_id=membership.workshop_id, name=name, definition=definition,
                version=version + 1, updated_by=membership)


@transaction.atomic
def axis_comment(*, membership: Membership, axis_id, text) -> AxisComment:
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.BOARD,))
    text = _clean_text(text, max_length=COMMENT_MAX, field="text")
    axis = _active_axis(membership.workshop_id, axis_id)
    comment = AxisComment.objects.create(axis=axis, membership=membership, text=text)
    _card_changed(axis)
    return comment


@transaction.atomic
def axis_archive(*, membership: Membership, axis_id) -> Axis:
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.BOARD,))
    axis = _active_axis(membership.workshop_id, axis_id, lock=True)
    axis.status = AxisStatus.ARCHIVED
    axis.version += 1
    axis.updated_by = membership
    axis.save()
    GroupVote.objects.filter(axis=axis).delete()
    _log(membership.workshop_id, membership, "card_remove", axis=axis.pk)
    events.board(axis.workshop_id, "card_removed", {"id": axis.pk, "card": selectors.card_data(axis)})
    return axis


def _copy_provenance(source: Axis, target: Axis, by: Membership) -> dict:
    """Copy a card's sources and examples onto another; returns the ids of the rows it created
    (what an undo of a merge takes back)."""
    created = {"sources": [], "examples": []}
    for s in source.sources.all():
        exists = AxisSource.objects.filter(axis=target, code_id=s.code_id, attribute_id=s.attribute_id, pick_id=s.pick_id)
        if not exists.exists():
            row = AxisSource.objects.create(axis=target, code_id=s.code_id, attribute_id=s.attribute_id,
                                            pick_id=s.pick_id, added_by=s.added_by or by)
            created["sources"].append(row.pk)
    for e in source.examples.all():
        if e.annotation_id and AxisExample.objects.filter(axis=target, annotation_id=e.annotation_id).exists():
            continue
        if not e.annotation_id and AxisExample.objects.filter(axis=target, message_id=e.message_id, excerpt=e.excerpt).exists():
            continue
        row = AxisExample.objects.create(axis=target, annotation_id=e.annotation_id, message_id=e.message_id,
                                         excerpt=e.excerpt, added_by=e.added_by or by)
        created["examples"].append(row.pk)
    return created


@transaction.atomic
def axis_merge(*, membership: Membership, axis_ids, into_id, name=None, definition=None) -> Axis:
    """Merge cards into one; the merged cards keep their history and point to the target.

    One `merged` event per absorbed card on the target: a snapshot of the absorbed card (name,
    definition, author, votes) and the rows the merge copied, so the group can undo it
    (`axis_unmerge`)."""
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.BOARD,))
    target = _active_axis(membership.workshop_id, into_id, lock=True)
    sources = [a for a in _ordered_axis_ids(membership.workshop_id, axis_ids, max_len=50, field="axes") if a.pk != target.pk]
    if not sources:
        raise ValidationError({"axes": _("Choose at least one other card to merge.")})
    before = _text_of(target)
    absorbed = []
    for source in Axis.objects.select_for_update().filter(pk__in=[a.pk for a in sources]).order_by("pk"):
        undo = _copy_provenance(source, target, membership)
        undo["comments"] = []
        for comment in source.comments.all():
            copy = AxisComment.objects.create(axis=target, membership=comment.membership,
                                              text=f"[{source.name}] {comment.text}"[:COMMENT_MAX], created_at=comment.created_at)
            undo["comments"].append(copy.pk)
        undo["votes"] = [{"membership": m, "rank": r} for m, r in
                         GroupVote.objects.filter(axis=source).order_by("membership_id").values_list("membership_id", "rank")]
        snapshot = {"axis": source.pk, "name": source.name, "definition": source.definition,
                    "created_by": source.created_by_id, "created_at": source.created_at.isoformat(),
                    "version": source.version}
        absorbed.append((snapshot, undo))
        source.status = AxisStatus.MERGED
        source.merged_into = target
        source.version += 1
        source.updated_by = membership
        source.save()
        GroupVote.objects.filter(axis=source).delete()
        events.board(source.workshop_id, "card_removed", {"id": source.pk, "card": selectors.card_data(source)})
    if name is not None:
        target.name = _clean_text(name, max_length=NAME_MAX, field="name")
    if definition is not None:
        target.definition = _clean_text(definition, max_length=DEFINITION_MAX, field="definition", required=False)
    target.version += 1
    target.updated_by = membership
    target.save()
    for snapshot, undo in absorbed:  # a rename shows once, on the first: the history stays a chain
        _axis_event(target, AxisEventKind.MERGED, membership, absorbed=snapshot, before=before,
                    after=_text_of(target), undo=undo, version=target.version)
        before = _text_of(target)
    renamed = {"after": {"name": target.name, "definition": target.definition}} if name is not None or definition is not None else {}
    _log(membership.workshop_id, membership, "card_merge", into=target.pk, merged=[a.pk for a in sources], **renamed)
    _card_changed(target)
    return target


@transaction.atomic
def axis_unmerge(*, membership: Membership, merge_event_id) -> Axis:
    """Undo one merge (any member in the board segment): the absorbed card comes back on the
    board as it was (its own name, definition, sources, examples and comments never left it;
    the votes the merge dropped are put back where the voter's place is still free), the rows
    the merge copied onto the target are taken back, and the target's text returns to what it
    was before the merge unless someone edited it since. Refused if the target has left the
    board (merged further, split or removed: undo that first) or the merge was undone already."""
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.BOARD,))
    event = AxisEvent.objects.filter(pk=_id_or_none(merge_event_id), kind=AxisEventKind.MERGED,
                                     axis__workshop_id=membership.workshop_id).first()
    if event is None or "undo" not in event.data:
        raise ValidationError({"merge": _("No such merge, or it cannot be undone.")})
    target = _active_axis(membership.workshop_id, event.axis_id, lock=True)
    absorbed = Axis.objects.select_for_update().filter(
        pk=event.data["absorbed"]["axis"], workshop_id=membership.workshop_id).first()
    undone = AxisEvent.objects.filter(axis=target, kind=AxisEventKind.UNMERGED, data__merge_event=event.pk).exists()
    if absorbed is None or undone or absorbed.status != AxisStatus.MERGED or absorbed.merged_into_id != target.pk:
        raise ValidationError({"merge": _("This merge was undone already.")})
    if absorbed.created_by_id and Membership.objects.filter(pk=absorbed.created_by_id, withdrawn_at__isnull=False).exists():
        raise ValidationError({"merge": _("This card's author has withdrawn: it cannot be brought back.")})
    undo = event.data["undo"]
    AxisSource.objects.filter(axis=target, pk__in=undo.get("sources", [])).delete()
    AxisExample.objects.filter(axis=target, pk__in=undo.get("examples", [])).delete()
    AxisComment.objects.filter(axis=target, pk__in=undo.get("comments", [])).delete()
    absorbed.status = AxisStatus.ACTIVE
    absorbed.merged_into = None
    absorbed.version += 1
    absorbed.updated_by = membership
    absorbed.save()
    restored_votes, lost_votes = 0, 0
    for vote in undo.get("votes", []):
        taken = GroupVote.objects.filter(membership_id=vote["membership"]).filter(
            Q(rank=vote["rank"]) | Q(axis=absorbed)).exists()
        if taken or not Membership.objects.filter(pk=vote["membership"]).exists():
            lost_votes += 1
            continue
        GroupVote.objects.create(membership_id=vote["membership"], axis=absorbed, rank=vote["rank"])
        restored_votes += 1
    before = _text_of(target)
    if event.data.get("before") and event.data["before"] != event.data.get("after") and before == event.data.get("after"):
        target.name = event.data["before"]["name"]
        target.definition = event.data["before"]["definition"]
    target.version += 1
    target.updated_by = membership
    target.save()
    _axis_event(target, AxisEventKind.UNMERGED, membership, merge_event=event.pk, restored=absorbed.pk,
                before=before, after=_text_of(target), votes_restored=restored_votes, votes_not_restored=lost_votes,
                version=target.version)
    _log(membership.workshop_id, membership, "card_unmerge", into=target.pk, restored=absorbed.pk, merge_event=event.pk)
    _card_changed(target)
    _card_changed(absorbed)
    if undo.get("votes"):
        events.board(membership.workshop_id, "votes", {"tally": selectors.vote_tally(membership.workshop)})
    return absorbed


@transaction.atomic
def axis_split(*, membership: Membership, axis_id, parts: list[dict]) -> list[Axis]:
    """Split a card into two or more; each part keeps the original's provenance; the original leaves the board."""
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.BOARD,))
    original = _active_axis(membership.workshop_id, axis_id, lock=True)
    if not isinstance(parts, list) or not 2 <= len(parts) <= 6:
        raise ValidationError({"parts": _("Split into two to six cards.")})
    cleaned = [
        (_clean_text(p.get("name"), max_length=NAME_MAX, field="name"),
         _clean_text(p.get("definition", ""), max_length=DEFINITION_MAX, field="definition", required=False))
        for p in parts if isinstance(p, dict)
    ]
    if len(cleaned) != len(parts):
        raise ValidationError({"parts": _("Each part needs a name.")})
    _check_card_caps(membership=membership, session=session, adding=len(cleaned), leaving=original)
    created = []
    for name, definition in cleaned:
        axis = Axis.objects.create(workshop_id=original.workshop_id, name=name, definition=definition,
                                   split_from=original, created_by=membership, updated_by=membership)
        _copy_provenance(original, axis, membership)
        _axis_event(axis, AxisEventKind.CREATED, membership, name=name, definition=definition, pick=None,
                    split_from=original.pk, version=axis.version)
        created.append(axis)
    _axis_event(original, AxisEventKind.SPLIT, membership, version=original.version,
                parts=[{"axis": a.pk, "name": a.name, "definition": a.definition} for a in created])
    original.status = AxisStatus.ARCHIVED
    original.version += 1
    original.updated_by = membership
    original.save()
    GroupVote.objects.filter(axis=original).delete()
    _log(membership.workshop_id, membership, "card_split", axis=original.pk, into=[a.pk for a in created],
         parts=[{"axis": a.pk, "name": a.name, "definition": a.definition} for a in created])
    events.board(original.workshop_id, "card_removed", {"id": original.pk, "card": selectors.card_data(original)})
    for axis in created:
        _card_changed(axis)
    return created


@transaction.atomic
def axis_attach_label(*, membership: Membership, axis_id, key: str) -> Axis:
    """Attach a map label ("code:<normalised>" or "attribute:<normalised>") to a card: all the
    active members' codes or attributes with that label become sources, their annotations examples."""
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.BOARD, Segment.MAP))
    axis = _active_axis(membership.workshop_id, axis_id, lock=True)
    kind, _sep, norm = (key or "").partition(":")
    rows = selectors.label_rows(membership.workshop, kind, norm)
    if not rows:
        raise ValidationError({"key": _("No such label on the map.")})
    for row in rows:
        field = "code" if kind == "code" else "attribute"
        AxisSource.objects.get_or_create(axis=axis, **{field: row}, defaults={"added_by": membership})
    annotations = selectors.annotations_for_label(membership.workshop, kind, norm)[:5]
    for annotation in annotations:
        AxisExample.objects.get_or_create(
            axis=axis, annotation=annotation,
            defaults={"message_id": annotation.message_id, "excerpt": annotation.excerpt[:5000], "added_by": membership},
        )
    axis.version += 1
    axis.save(update_fields=["version", "updated_at"])
    _log(membership.workshop_id, membership, "card_attach_label", axis=axis.pk, key=key)
    _card_changed(axis)
    return axis


def _id_or_none(value) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        value = int(value)
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def _passage(message, start, end) -> str:
    """The text between two offsets of a message (as the picker shows it), trimmed."""
    text = selectors.picker_text(message.content)
    if isinstance(start, bool) or isinstance(end, bool) or not isinstance(start, int) or not isinstance(end, int):
        raise ValidationError({"excerpt": _("Choose a passage of the message.")})
    if not 0 <= start < end <= len(text):
        raise ValidationError({"excerpt": _("Choose a passage of the message.")})
    passage = text[start:end].strip()
    if not passage:
        raise ValidationError({"excerpt": _("Choose a passage of the message.")})
    if len(passage) > 5000:
        raise ValidationError({"excerpt": _("At most %(n)d characters.") % {"n": 5000}})
    return passage


@transaction.atomic
def axis_add_example(*, membership: Membership, axis_id, annotation_id=None, message_id=None, excerpt="",
                     start=None, end=None) -> AxisExample:
    """Attach an example: an annotation the member can see, or a passage of a message they can
    read (given as its text, or as `start`/`end` offsets in the text the excerpt picker shows)."""
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.BOARD,))
    axis = _active_axis(membership.workshop_id, axis_id, lock=True)
    if annotation_id:
        annotation = selectors.visible_annotations(membership).filter(pk=_id_or_none(annotation_id)).first()
        if annotation is None:
            raise ValidationError({"annotation": _("No such excerpt.")})
        example, created = AxisExample.objects.get_or_create(
            axis=axis, annotation=annotation,
            defaults={"message_id": annotation.message_id, "excerpt": annotation.excerpt[:5000], "added_by": membership},
        )
    else:
        message = selectors.visible_messages(membership).filter(pk=_id_or_none(message_id)).first()
        if message is None:
            raise ValidationError({"message": _("No such message.")})
        if start is not None or end is not None:
            excerpt = _passage(message, start, end)
        else:
            excerpt = _clean_text(excerpt, max_length=5000, field="excerpt", required=False) or message.content[:5000]
            if excerpt not in message.content:
                raise ValidationError({"excerpt": _("The excerpt must be text from that message.")})
        # The same passage twice is one example (a double click, or two people at once).
        example, created = AxisExample.objects.get_or_create(
            axis=axis, message=message, excerpt=excerpt, defaults={"added_by": membership})
    if not created:
        return example
    _log(membership.workshop_id, membership, "card_example", axis=axis.pk, example=example.pk, message=example.message_id)
    axis.version += 1
    axis.save(update_fields=["version", "updated_at"])
    _card_changed(axis)
    return example


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


# --- votes, rankings, ratings ---------------------------------------------------------------------


@transaction.atomic
def vote_set(*, membership: Membership, axis_ids) -> list[GroupVote]:
    """A member's live vote: their top five in order (the first three are their top three)."""
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.BOARD,))
    if not membership.is_participant:
        raise NotAllowed(_("Only participants vote."))
    axes = _ordered_axis_ids(membership.workshop_id, axis_ids, max_len=5, field="vote")
    GroupVote.objects.filter(membership=membership).delete()
    votes = [GroupVote.objects.create(membership=membership, axis=a, rank=i) for i, a in enumerate(axes, start=1)]
    events.board(membership.workshop_id, "votes", {"tally": selectors.vote_tally(membership.workshop)})
    return votes


@transaction.atomic
def group_ranking_record(*, workshop: Workshop, by: Membership, axis_ids) -> list[GroupRank]:
    """The facilitator records the group's final top five (the first three are the top three)."""
    _require_facilitator(by)
    _require_member(by, workshop)
    axes = _ordered_axis_ids(workshop.id, axis_ids, max_len=5, field="ranking")
    if not axes:
        raise ValidationError({"ranking": _("Choose at least one axis.")})
    GroupRank.objects.filter(workshop=workshop).delete()
    ranks = [GroupRank.objects.create(workshop=workshop, axis=a, rank=i, recorded_by=by) for i, a in enumerate(axes, start=1)]
    Session.objects.filter(workshop=workshop).update(ranking_final_at=timezone.now())
    _log(workshop.id, by, "group_ranking", axes=[a.pk for a in axes], names=[a.name for a in axes])
    events.board(workshop.id, "ranking", {"ranking": [{"id": a.pk, "name": a.name, "rank": i} for i, a in enumerate(axes, 1)]})
    events.workshop(workshop.id, "discuss.ranking", {})
    return ranks


@transaction.atomic
def rating_set(*, membership: Membership, axis_id, value) -> LikertRating:
    """A Likert rating 1-5 of agreement with an axis definition; a second rating updates the first."""
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.RATINGS,))
    if not membership.is_participant:
        raise NotAllowed(_("Only participants rate."))
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise ValidationError({"value": _("Choose a value from 1 to 5.")}) from None
    if not 1 <= value <= 5:
        raise ValidationError({"value": _("Choose a value from 1 to 5.")})
    axis = _active_axis(membership.workshop_id, axis_id)
    rating, _created = LikertRating.objects.update_or_create(
        membership=membership, axis=axis, defaults={"value": value, "definition_version": axis.version}
    )
    events.workshop(membership.workshop_id, "discuss.ratings", {})
    return rating


@transaction.atomic
def individual_ranking_set(*, membership: Membership, axis_ids) -> list[IndividualRank]:
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.RATINGS,))
    if not membership.is_participant:
        raise NotAllowed(_("Only participants rank."))
    axes = _ordered_axis_ids(membership.workshop_id, axis_ids, max_len=None, field="ranking")
    IndividualRank.objects.filter(membership=membership).delete()
    ranks = [IndividualRank.objects.create(membership=membership, axis=a, rank=i) for i, a in enumerate(axes, start=1)]
    events.workshop(membership.workshop_id, "discuss.ratings", {})
    return ranks


@transaction.atomic
def segment5_submit(*, membership: Membership, ratings: dict, ranking: list) -> None:
    """Ratings and ranking in one submission (the segment 5 form)."""
    for axis_id, value in ratings.items():
        rating_set(membership=membership, axis_id=axis_id, value=value)
    individual_ranking_set(membership=membership, axis_ids=ranking)


# --- presence ---------------------------------------------------------------------------------------


PRESENCE_TTL = timedelta(seconds=90)


def _presence_of(membership_id: int) -> dict | None:
    """One member's presence (a member may have several sockets: tabs, devices)."""
    rows = list(BoardPresence.objects.filter(membership_id=membership_id, last_seen__gte=timezone.now() - PRESENCE_TTL)
                .order_by("-last_seen").values_list("editing_id", flat=True))
    if not rows:
        return None
    return {"editing": next((e for e in rows if e), None)}


def _presence_changed(membership: Membership) -> None:
    """Broadcast only what changed for this member (the full list is in the HTTP state): with
    N people joining, full lists would cost N² frames."""
    state = _presence_of(membership.pk)
    events.board(membership.workshop_id, "presence", {
        "who": membership.pseudonym, "here": state is not None, "editing": state["editing"] if state else None,
    })


@transaction.atomic
def presence_join(*, membership: Membership, channel_name: str) -> None:
    BoardPresence.objects.update_or_create(
        channel_name=channel_name,
        defaults={"workshop_id": membership.workshop_id, "membership": membership, "last_seen": timezone.now(), "editing": None},
    )
    _presence_changed(membership)


@transaction.atomic
def presence_leave(*, workshop_id: int, channel_name: str) -> None:
    row = BoardPresence.objects.filter(channel_name=channel_name).select_related("membership").first()
    if row is None:
        return
    row.delete()
    _presence_changed(row.membership)


@transaction.atomic
def presence_editing(*, membership: Membership, channel_name: str, axis_id) -> None:
    axis = None
    if axis_id is not None:
        axis = _active_axis(membership.workshop_id, axis_id)
    changed = BoardPresence.objects.filter(channel_name=channel_name, membership=membership).exclude(
        editing=axis
    ).update(editing=axis, last_seen=timezone.now())
    if changed:
        _presence_changed(membership)


@transaction.atomic
def presence_touch(*, channel_name: str) -> None:
    row = BoardPresence.objects.filter(channel_name=channel_name).first()
    if row is None:
        return
    BoardPresence.objects.filter(pk=row.pk).update(last_seen=timezone.now())
    # Rows of sockets that vanished without a disconnect (a crashed server) expire here.
    stale = BoardPresence.objects.filter(workshop_id=row.workshop_id, last_seen__lt=timezone.now() - PRESENCE_TTL)
    for gone in stale.select_related("membership"):
        gone.delete()
        _presence_changed(gone.membership)


# --- the map job -------------------------------------------------------------------------------------


@transaction.atomic
def map_request(*, workshop: Workshop, by: Membership | None, full_layout: bool = False) -> Job:
    """Queue a map computation (a `map` job, workshops/jobs.py). A queued or running job whose
    worker is alive is reused, not doubled; one whose worker went silent is replaced."""
    if by is not None:
        _require_facilitator(by)
        _require_member(by, workshop)
    job = jobs.job_request(workshop=workshop, kind="map", by=by, params={"full_layout": bool(full_layout)})
    if full_layout and not job.params.get("full_layout") and job.status == JobStatus.QUEUED:
        Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(params={**job.params, "full_layout": True})
        job.params = {**job.params, "full_layout": True}
    return job


def map_notify(job: Job) -> None:
    """Push a map job's state to the board (the map shows its progress and reloads when done)."""
    events.board(job.workshop_id, "job", selectors.job_data(job))


def integrity_safe(func, **kwargs):
    """Call a service; a database constraint violation becomes a ValidationError."""
    try:
        return func(**kwargs)
    except IntegrityError:
        log.warning("constraint refused %s", func.__name__, exc_info=True)
        raise ValidationError(_("That change conflicts with another one; reload and try again.")) from None

