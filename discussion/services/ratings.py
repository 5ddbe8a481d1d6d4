"""Writes of votes, the group ranking, Likert ratings and individual rankings."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from discussion import events, selectors
from discussion.models import GroupRank, GroupVote, IndividualRank, LikertRating, Segment, Session
from discussion.services._common import (
    _active_axis,
    _log,
    _number_in,
    _ordered_axis_ids,
    _require_facilitator,
)
from discussion.services.session import require_participant_in
from workshops.models import Membership, Workshop

# --- votes, rankings, ratings ---------------------------------------------------------------------


@transaction.atomic
def vote_set(*, membership: Membership, axis_ids) -> list[GroupVote]:
    """A member's live vote: their top five in order (the first three are their top three)."""
    require_participant_in(membership, (Segment.BOARD,), _("Only participants vote."))
    axes = _ordered_axis_ids(membership.workshop_id, axis_ids, max_len=5, field="vote")
    GroupVote.objects.filter(membership=membership).delete()
    votes = [GroupVote.objects.create(membership=membership, axis=a, rank=i) for i, a in enumerate(axes, start=1)]
    events.board(membership.workshop_id, "votes", {"tally": selectors.vote_tally(membership.workshop)})
    return votes


@transaction.atomic
def group_ranking_record(*, workshop: Workshop, by: Membership, axis_ids) -> list[GroupRank]:
    """The facilitator records the group's final top five (the first three are the top three)."""
    _require_facilitator(by, workshop)
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
    require_participant_in(membership, (Segment.RATINGS,), _("Only participants rate."))
    value = _number_in(value, int, 1, 5, field="value", refusal=_("Choose a value from 1 to 5."))
    axis = _active_axis(membership.workshop_id, axis_id)
    rating, _created = LikertRating.objects.update_or_create(
        membership=membership, axis=axis, defaults={"value": value, "definition_version": axis.version}
    )
    events.workshop(membership.workshop_id, "discuss.ratings", {})
    return rating


@transaction.atomic
def individual_ranking_set(*, membership: Membership, axis_ids) -> list[IndividualRank]:
    require_participant_in(membership, (Segment.RATINGS,), _("Only participants rank."))
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
