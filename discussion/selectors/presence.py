"""Who is on the board now (and which card each is editing)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from discussion.models import BoardPresence
from discussion.selectors.members import active

# A socket not heard from for this long is not counted (its heartbeat is every 15 s).
PRESENCE_TTL = timedelta(seconds=90)


def presence(workshop_id: int) -> list[dict]:
    rows = (
        BoardPresence.objects.filter(active(), workshop_id=workshop_id, last_seen__gte=timezone.now() - PRESENCE_TTL)
        .select_related("membership").order_by("membership__pseudonym")
    )
    people: dict[str, dict] = {}
    for row in rows:
        entry = people.setdefault(row.membership.pseudonym, {"who": row.membership.pseudonym, "editing": None})
        if row.editing_id:
            entry["editing"] = row.editing_id
    return list(people.values())
