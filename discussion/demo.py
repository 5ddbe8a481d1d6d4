"""Demo data for the Discuss stage (called by `manage.py seed_demo` while the workshop is in
Discuss): each demo participant's top three from their attributes, and a group board with
cards made from some of them, left open at segment 4 so the board can be tried at once."""

from __future__ import annotations

from coding.models import Annotation
from discussion import services
from discussion.models import Axis, Pick, Segment
from workshops.models import Role

CARDS = [
    ("Acknowledges historical debate", "Says where historians or communities disagree instead of giving one story.",
     "Honest about uncertainty"),
    ("Centres the students' context", "Starts from what a high-school student in India knows and lives with.",
     "Student-centred"),
    ("Many voices", "Shows more than one community's view of the past, including the ones textbooks leave out.",
     "Many voices"),
]


def seed(*, workshop, facilitator, stdout=None):
    """Idempotent: picks only for participants without any, cards only on an empty board."""
    participants = list(workshop.memberships.filter(role=Role.PARTICIPANT).active().order_by("pseudonym"))
    services.session_set_segment(workshop=workshop, by=facilitator, segment=Segment.TOP_THREE)
    for membership in participants:
        if Pick.objects.filter(membership=membership).exists():
            continue
        attributes = list(membership.attributes.order_by("position", "id")[:3])
        if attributes:
            services.picks_save(membership=membership, picks=[{"attribute_id": a.id} for a in attributes])
    services.session_set_segment(workshop=workshop, by=facilitator, segment=Segment.BOARD)
    if Axis.objects.filter(workshop=workshop).exists():
        return
    picks = {p.name: p for p in Pick.objects.filter(membership__workshop=workshop)}
    for name, definition, pick_name in CARDS:
        pick = picks.get(pick_name)
        axis = services.axis_create(membership=facilitator, name=name, definition=definition,
                                    pick_id=pick.id if pick else None)
        if pick and pick.attribute_id:
            annotation = (Annotation.objects.filter(codes__attributes__id=pick.attribute_id)
                          .order_by("id").first())
            if annotation is not None:
                services.axis_add_example(membership=facilitator, axis_id=axis.id, annotation_id=annotation.id)
    if stdout is not None:
        stdout.write(f"{workshop.slug}: top-three picks and {len(CARDS)} board cards")
