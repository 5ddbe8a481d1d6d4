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
from django.db import transaction

from workshops import events as workshop_events

log = logging.getLogger(__name__)


# The board's own channel layer alias (calma/settings.py: a Redis pub/sub layer by default,
# DISCUSSION_BOARD_LAYER); the workshop stream below stays on the default layer.
BOARD_LAYER = "board"


def board_group(workshop_id: int) -> str:
    return f"board.{workshop_id}"


def send_now(workshop_id: int, kind: str, payload: dict | None = None) -> None:
    layer = get_channel_layer(BOARD_LAYER)
    if layer is None:
        return
    try:
        # Serialised once here, not once per receiving socket.
        text = json.dumps({"kind": kind, "payload": payload or {}}, separators=(",", ":"), cls=DjangoJSONEncoder)
        async_to_sync(layer.group_send)(board_group(workshop_id), {"type": "board.event", "text": text})
    except Exception:  # best effort: clients re-sync over HTTP on reconnect
        log.warning("could not send board event %s for workshop %s", kind, workshop_id, exc_info=True)


def board(workshop_id: int, kind: str, payload: dict | None = None) -> None:
    transaction.on_commit(lambda: send_now(workshop_id, kind, payload))


def workshop(workshop_id: int, kind: str, payload: dict | None = None) -> None:
    """A change notification on the workshop stream (htmx partials with data-live-refresh re-fetch)."""
    workshop_events.broadcast(workshop_id, kind, payload)
