"""What every write of the Discuss stage shares: errors, text cleaning, rights checks, the log,
card lookups and caps, and the card-changed broadcast."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.utils.translation import gettext as _

from discussion import events, selectors
from discussion.models import Axis, AxisEvent, AxisStatus, Session, SessionEvent
from workshops.models import Membership, Stage, Workshop

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


def too_long_message(max_length: int) -> str:
    """The refusal of a text over its limit (also shown by the board page before it sends one:
    discussion/templatetags/discussion_text.py)."""
    return _("At most %(n)d characters.") % {"n": max_length}


def _clean_text(value, *, max_length: int, field: str, required: bool = True) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError({field: _("Expected text.")})
    value = value.replace("\x00", "").strip()
    if required and not value:
        raise ValidationError({field: _("This cannot be empty.")})
    if len(value) > max_length:
        raise ValidationError({field: too_long_message(max_length)})
    return value


def _require_member(membership: Membership, workshop: Workshop | None = None) -> None:
    if membership is None or membership.is_withdrawn:
        raise NotAllowed(_("You are not an active member of this workshop."))
    if workshop is not None and membership.workshop_id != workshop.id:
        raise NotAllowed(_("That belongs to another workshop."))


def _require_facilitator(membership: Membership, workshop: Workshop | None = None) -> None:
    """The facilitator (of `workshop`, where one is given)."""
    _require_member(membership)
    if not membership.is_facilitator:
        raise NotAllowed(_("Only the facilitator can do this."))
    if workshop is not None:
        _require_member(membership, workshop)


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


def _number_in(value, cast, low, high, *, field: str, refusal: str, out_of_range: str | None = None):
    """`value` read with `cast` (int or float), from `low` to `high`; otherwise a ValidationError on
    `field`: `refusal`, or `out_of_range` for a number outside the bounds."""
    try:
        number = cast(value)
    except (TypeError, ValueError):
        raise ValidationError({field: refusal}) from None
    if not low <= number <= high:
        raise ValidationError({field: out_of_range or refusal})
    return number


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
    payload = events.board(axis.workshop_id, kind, {"card": selectors.card_data(axis)})
    # Rendered once: the author's reply carries the same card and HTML.
    axis.board_card, axis.board_html = payload["card"], payload.get("html")


def _id_or_none(value) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        value = int(value)
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def integrity_safe(func, **kwargs):
    """Call a service; a database constraint violation becomes a ValidationError."""
    try:
        return func(**kwargs)
    except IntegrityError:
        log.warning("constraint refused %s", func.__name__, exc_info=True)
        raise ValidationError(_("That change conflicts with another one; reload and try again.")) from None
