"""Board events: sent to the Channels group `board.<workshop id>` after the transaction commits.

The board is shared by every member of the workshop, so its events carry the changed card
itself (names, definitions, comments are visible to all members anyway); anything private
(segment 1 picks before the reveal, individual ratings) is never put on this group.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import time

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
    UPDATE … RETURNING (Postgres; SQLite 3.35+), no savepoint of its own. The number is also
    noted for `seq_taken` (the command's reply carries it without reading it again)."""
    from discussion.models import BoardSequence

    sql = f"UPDATE {BoardSequence._meta.db_table} SET seq = seq + 1 WHERE workshop_id = %s RETURNING seq"
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(sql, [workshop_id])
        row = cursor.fetchone()
        if row is None:  # the board's first change
            BoardSequence.objects.get_or_create(workshop_id=workshop_id)
            cursor.execute(sql, [workshop_id])
            row = cursor.fetchone()
    taken = _taken.get()
    if taken is not None:
        taken.append(row[0])
    return row[0]


_taken: contextvars.ContextVar[list | None] = contextvars.ContextVar("board_seq_taken", default=None)


@contextlib.contextmanager
def seq_taken():
    """The sequence numbers the board changes made inside the block took (a list, in order)."""
    taken: list[int] = []
    token = _taken.set(taken)
    try:
        yield taken
    finally:
        _taken.reset(token)


# A failing broadcast is logged once per outage (not once per change), and its end too.
_failing = False


def _delivered(workshop_id: int, kind: str, seq: int):
    def report(ok: bool) -> None:
        global _failing
        if not ok:
            # The change itself is saved; clients notice the missing event from the next event's
            # sequence number or their heartbeat, and re-fetch the board over HTTP.
            if not _failing:
                _failing = True
                log.error("board events cannot be sent (%s for workshop %s, seq %s): clients will re-sync from "
                          "their heartbeat until the channel layer is back", kind, workshop_id, seq, exc_info=True)
        elif _failing:
            _failing = False
            log.warning("board events are sent again (workshop %s, seq %s)", workshop_id, seq)
    return report


def send_now(workshop_id: int, kind: str, payload: dict | None = None, *, seq: int | None = None) -> None:
    """Send one board event now (workshops.events.deliver: in the server, handed to its loop,
    so the command's thread does not wait for Redis). The event carries the board's sequence
    number (taken here if the caller did not), so clients that miss it find out."""
    layer = get_channel_layer(BOARD_LAYER)
    if layer is None:
        return
    if seq is None:
        seq = next_seq(workshop_id)
    # Serialised once here, not once per receiving socket.
    text = json.dumps({"kind": kind, "seq": seq, "payload": payload or {}}, separators=(",", ":"), cls=DjangoJSONEncoder)
    workshop_events.deliver(layer, board_group(workshop_id), {"type": "board.event", "text": text},
                            done=_delivered(workshop_id, kind, seq))


# The workshop's language, for the HTML a change is rendered in (read at most every 30 s per
# process: a board change does not pay a query for it).
_languages: dict[int, tuple[float, str]] = {}


def _language(workshop_id: int) -> str | None:
    now = time.monotonic()
    cached = _languages.get(workshop_id)
    if cached is None or now - cached[0] > 30:
        from workshops.models import Workshop

        language = Workshop.objects.filter(pk=workshop_id).values_list("language", flat=True).first() or ""
        cached = _languages[workshop_id] = (now, language)
    return cached[1] or None


def with_html(workshop_id: int, kind: str, payload: dict | None, shown: dict | None = None) -> dict | None:
    """The payload with the change rendered once as HTML (`html`), for the kinds the board shows
    from the server's templates (discussion/render.py): a card, a card's text, the vote tally,
    the group ranking. The JSON stays beside it (tests, the map, the picker read it). `shown`:
    what the HTML shows beyond the JSON (a text edit's card author)."""
    from discussion import render

    if payload is None:
        return payload
    if kind == "card" and payload["card"].get("status") == "active":
        html = render.card_html(payload["card"], _language(workshop_id))
    elif kind == "card_text":
        html = render.card_text_html({**payload["card"], **(shown or {})}, _language(workshop_id))
    elif kind == "votes":
        html = render.tally_html(payload["tally"], _language(workshop_id))
    elif kind == "ranking":
        html = render.ranking_html(payload["ranking"], _language(workshop_id))
    else:
        return payload
    return {**payload, "html": html}


def board(workshop_id: int, kind: str, payload: dict | None = None, *, shown: dict | None = None) -> dict | None:
    """A board change: numbered now, in the change's transaction; sent after it commits. The
    payload is rendered to HTML here, once for every receiving socket; returned (with `html`)
    for the author's own reply."""
    seq = next_seq(workshop_id)
    payload = with_html(workshop_id, kind, payload, shown)
    transaction.on_commit(lambda: send_now(workshop_id, kind, payload, seq=seq))
    return payload


def workshop(workshop_id: int, kind: str, payload: dict | None = None) -> None:
    """A change notification on the workshop stream (htmx partials with data-live-refresh re-fetch)."""
    workshop_events.broadcast(workshop_id, kind, payload)
