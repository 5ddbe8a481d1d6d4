"""Who is on the board: one row per socket, broadcast as a per-member delta."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from discussion import events
from discussion.models import BoardPresence
from discussion.selectors.presence import PRESENCE_TTL
from discussion.services._common import _active_axis
from workshops.models import Membership

# --- presence ---------------------------------------------------------------------------------------



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
