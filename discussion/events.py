"""Board events: sent to the Channels group `board.<workshop id>` after the transaction commits.

The board is shared by every member of the workshop, so its events carry the changed card
itself (names, definitions, comments are visible to all members anyway); anything private
(segment 1 picks before the reveal, individual ratings) is never put on this group.
"""

from __future__ import annotations

import json
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

from workshops import events as workshop_events

log = logging.getLogger(__name__)


# The board's own channel layer alias (calma/settings.py: a Redis pub/sub layer by default,
# DISCUSSION_BOARD_LAYER); the workshop stream below stays on the default layer.
BOARD_LAYER = "board"


def board_group(workshop_id: int) -> str:
    return f"board.{workshop_id}"


def next_seq(workshop_id: int) -> int:
    """Take the board's next sequence number, in the caller's transaction (the row stays
    locked until it commits, so numbers follow the order in which changes commit). One
    UPDATE … RETURNING (Postgres; SQLite 3.35+)."""
    from discussion.models import BoardSequence

    sql = f"UPDATE {BoardSequence._meta.db_table} SET seq = seq + 1 WHERE workshop_id = %s RETURNING seq"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [workshop_id])
        row = cursor.fetchone()
        if row is None:  # the board's first change
            BoardSequence.objects.get_or_create(workshop_id=workshop_id)
            cursor.execute(sql, [workshop_id])
            row = cursor.fetchone()
    return row[0]


# A failing broadcast is logged once per outage (not once per change), and its end too.
_failing = False


def send_now(workshop_id: int, kind: str, payload: dict | None = None, *, seq: int | None = None) -> bool:
    """Send one board event now; False if it could not be sent. The event carries the board's
    sequence number (taken here if the caller did not), so clients that miss it find out."""
    global _failing
    layer = get_channel_layer(BOARD_LAYER)
    if layer is None:
        return False
    if seq is None:
        seq = next_seq(workshop_id)
    try:
        # Serialised once here, not once per receiving socket.
        text = json.dumps({"kind": kind, "seq": seq, "payload": payload or {}}, separators=(",", ":"), cls=DjangoJSONEncoder)
        async_to_sync(layer.group_send)(board_group(workshop_id), {"type": "board.event", "text": text})
    except Exception:
        # The change itself is saved; clients notice the missing event from the next event's
        # sequence number or their heartbeat, and re-fetch the board over HTTP.
        if not _failing:
            _failing = True
            log.error("board events cannot be sent (%s for workshop %s, seq %s): clients will re-sync from "
                      "their heartbeat until the channel layer is back", kind, workshop_id, seq, exc_info=True)
        return False
    if _failing:
        _failing = False
        log.warning("board events are sent again (workshop %s, seq %s)", workshop_id, seq)
    return True


def board(workshop_id: int, kind: str, payload: dict | None = None) -> None:
    """A board change: numbered now, in the change's transaction; sent after it commits."""
    seq = next_seq(workshop_id)
    transaction.on_commit(lambda: send_now(workshop_id, kind, payload, seq=seq))


def workshop(workshop_id: int, kind: str, payload: dict | None = None) -> None:
    """A change notification on the workshop stream (htmx partials with data-live-refresh re-fetch)."""
    workshop_events.broadcast(workshop_id, kind, payload)
