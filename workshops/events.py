"""Live change notifications for a workshop.

Services call `broadcast` inside their transaction; the message is sent after commit to the
Channels group `workshop.<id>`. Events carry only what changed (kind and ids), never private
content: every client re-fetches what it may see over HTTP, with its own permissions.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)


def group_name(workshop_id: int) -> str:
    return f"workshop.{workshop_id}"


def send_now(workshop_id: int, kind: str, payload: dict | None = None) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            group_name(workshop_id), {"type": "workshop.event", "kind": kind, "payload": payload or {}}
        )
    except Exception:  # a live update is best-effort; the page also refreshes on reconnect
        log.warning("could not broadcast %s for workshop %s", kind, workshop_id, exc_info=True)


def broadcast(workshop_id: int, kind: str, payload: dict | None = None) -> None:
    transaction.on_commit(lambda: send_now(workshop_id, kind, payload))
