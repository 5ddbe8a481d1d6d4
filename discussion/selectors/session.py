"""Reads of the session: segment, picks (segments 1 and 3), progress, the session log."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Q

from coding.models import Attribute
from discussion.models import Axis, AxisStatus, IndividualRank, LikertRating, Pick, Segment, Session
from discussion.selectors.members import active, participants, shown_member
from workshops.progress import StageStatus, Status

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


# --- segment 1 and 3 -------------------------------------------------------------------------


def picks_of(membership) -> list[Pick]:
    return list(Pick.objects.filter(membership=membership).order_by("position"))


def picks_by_participant(workshop) -> list[dict]:
    """[{membership, picks: [...]}] for active participants, in pseudonym order."""
    picks = defaultdict(list)
    for pick in Pick.objects.filter(active(), membership__workshop=workshop).order_by("position"):
        picks[pick.membership_id].append(pick)
    return [{"membership": m, "picks": picks.get(m.pk, [])} for m in participants(workshop)]


def own_attributes(membership):
    return Attribute.objects.filter(membership=membership).order_by("position", "id")


def active_axes(workshop):
    return Axis.objects.filter(workshop=workshop, status=AxisStatus.ACTIVE).order_by("created_at", "id")


def session_log(workshop, limit: int = 500):
    """The session's steps for the report; a withdrawn member's own steps are left out."""
    return (workshop.discussion_events.filter(Q(actor__isnull=True) | active("actor"))
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
