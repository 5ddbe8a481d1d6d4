"""Writes of the session: segment, open/close, reveal, spotlight, timer; segment 1 picks."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from coding.models import Attribute
from discussion import events, selectors
from discussion.models import DEFINITION_MAX, NAME_MAX, Pick, Segment, Session
from discussion.services._common import (
    NotAllowed,
    _clean_text,
    _log,
    _number_in,
    _require_facilitator,
    _require_segment,
)
from workshops.models import Membership, Role, Workshop
from workshops.text import normalize


def _locked_session(workshop: Workshop) -> Session:
    """The workshop's session, locked for this transaction (created on first use)."""
    session = Session.objects.select_for_update().get_or_create(workshop=workshop)[0]
    session.workshop = workshop
    return session


def _session_saved(session: Session, by: Membership, fields: list[str], event: str, **log) -> Session:
    """Save a facilitator's change of `fields`, log it as `event`, and tell every screen."""
    session.save(update_fields=[*fields, "updated_at"])
    _log(session.workshop_id, by, event, **log)
    _session_changed(session)
    return session


def _session_changed(session: Session) -> None:
    Session.objects.filter(pk=session.pk).update(version=F("version") + 1)
    session.refresh_from_db()
    payload = selectors.session_data(session)
    events.board(session.workshop_id, "session", payload)
    events.workshop(session.workshop_id, "discuss.session", {"segment": session.segment, "version": session.version})


# --- the session -----------------------------------------------------------------------------


def session_get(*, workshop: Workshop) -> Session:
    """The workshop's session (created on first use); called inside other services' transactions.
    A session loaded with the workshop (select_related("workshop__discussion"), as the board's
    socket does for every command) is used as it is: one query fewer on the board's hot path."""
    descriptor = type(workshop).discussion
    if descriptor.is_cached(workshop) and descriptor.related.get_cached_value(workshop) is not None:
        return workshop.discussion
    session, _created = Session.objects.get_or_create(workshop=workshop)
    session.workshop = workshop
    return session


def require_participant_in(membership: Membership, segments: tuple[int, ...], refusal: str) -> None:
    """A participant's own input, taken only in one of `segments` while it is open: anyone else
    is refused with `refusal` (facilitators, who pass _require_segment, included)."""
    _require_segment(membership, session_get(workshop=membership.workshop), segments)
    if not membership.is_participant:
        raise NotAllowed(refusal)


@transaction.atomic
def session_set_segment(*, workshop: Workshop, by: Membership, segment: int, open: bool = True) -> Session:
    _require_facilitator(by, workshop)
    try:
        segment = int(segment)
    except (TypeError, ValueError):
        raise ValidationError({"segment": _("No such segment.")}) from None
    if segment not in Segment.values:
        raise ValidationError({"segment": _("No such segment.")})
    session = _locked_session(workshop)
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
    _require_facilitator(by, workshop)
    session = _locked_session(workshop)
    session.segment_open = bool(open)
    return _session_saved(session, by, ["segment_open"], "open" if open else "close", segment=session.segment)


@transaction.atomic
def session_reveal_picks(*, workshop: Workshop, by: Membership, revealed: bool = True) -> Session:
    _require_facilitator(by, workshop)
    session = _locked_session(workshop)
    session.picks_revealed = bool(revealed)
    return _session_saved(session, by, ["picks_revealed"], "reveal" if revealed else "hide")


@transaction.atomic
def session_set_spotlight(*, workshop: Workshop, by: Membership, membership_id) -> Session:
    _require_facilitator(by, workshop)
    target = None
    if membership_id not in (None, "", 0, "0"):
        try:
            target = Membership.objects.active().get(workshop=workshop, pk=int(membership_id), role=Role.PARTICIPANT)
        except (Membership.DoesNotExist, TypeError, ValueError):
            raise ValidationError({"spotlight": _("No such participant.")}) from None
    session = _locked_session(workshop)
    session.spotlight = target
    return _session_saved(session, by, ["spotlight"], "spotlight", participant=target.pseudonym if target else None)


@transaction.atomic
def session_set_timer(*, workshop: Workshop, by: Membership, minutes) -> Session:
    _require_facilitator(by, workshop)
    minutes = _number_in(minutes, float, 0, 180, field="minutes", refusal=_("Enter a number of minutes."),
                         out_of_range=_("Between 0 and 180 minutes."))
    session = _locked_session(workshop)
    session.timer_ends_at = timezone.now() + timedelta(minutes=minutes) if minutes else None
    return _session_saved(session, by, ["timer_ends_at"], "timer", minutes=minutes)


# --- segment 1: picks -------------------------------------------------------------------------


@transaction.atomic
def picks_save(*, membership: Membership, picks: list[dict]) -> list[Pick]:
    """Replace a participant's top three. Each item: {name, definition, attribute_id?}; empty items are skipped."""
    require_participant_in(membership, (Segment.TOP_THREE,), _("Only participants pick a top three."))
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
