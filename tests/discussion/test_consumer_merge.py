"""Merging over the board socket asks for confirmation, and the group can undo it, live
(against the real Redis channel layer; helpers from test_consumers)."""

import pytest
from channels.db import database_sync_to_async

from discussion.models import Axis, AxisStatus
from tests.discussion.test_consumers import board, connect, next_kind, send  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


async def test_merge_needs_confirmation_and_any_member_can_undo_it_live(board):  # noqa: F811
    p1 = await connect(board.workshop, board.people[0].user)
    p2 = await connect(board.workshop, board.people[1].user)
    await send(p1, "card.create", ref=1, name="Bias", definition="Favours one side")
    a = (await next_kind(p1, "created"))["payload"]["id"]
    await send(p2, "card.create", ref=2, name="One-sidedness", definition="Only the British view")
    b = (await next_kind(p2, "created"))["payload"]["id"]

    # A merge without the confirmation flag (a client that did not ask) is refused; nothing changes.
    for flag in (None, False, "yes", 1):
        data = {"ids": [b], "into": a} | ({} if flag is None else {"confirm": flag})
        await send(p1, "card.merge", ref=3, **data)
        refused = await next_kind(p1, "error")
        assert refused["payload"]["action"] == "card.merge" and "confirm" in refused["payload"]["reason"]
    assert (await database_sync_to_async(Axis.objects.get)(pk=b)).status == AxisStatus.ACTIVE

    await send(p1, "card.merge", ref=4, ids=[b], into=a, confirm=True)
    assert (await next_kind(p1, "merged"))["payload"]["ref"] == 4
    assert (await next_kind(p2, "card_removed"))["payload"]["id"] == b
    merged = (await next_kind(p2, "card"))["payload"]["card"]
    assert merged["id"] == a
    assert [(m["axis"], m["name"], m["author"], m["by"]) for m in merged["merges"]] == [(b, "One-sidedness", "P02", "P01")]

    # P02 (not the one who merged) undoes it: both screens get the restored card and the target.
    await send(p2, "card.unmerge", ref=5, event=merged["merges"][0]["event"])
    assert (await next_kind(p2, "unmerged"))["payload"] == {"id": b, "ref": 5}
    seen = {}
    while len(seen) < 2:
        card = (await next_kind(p1, "card"))["payload"]["card"]
        seen[card["id"]] = card
    assert seen[b]["status"] == "active" and seen[b]["name"] == "One-sidedness"
    assert seen[b]["definition"] == "Only the British view" and seen[b]["by"] == "P02"
    assert seen[a]["merges"] == []
    # Undoing twice is refused with a message, not an error page or a crash.
    await send(p1, "card.unmerge", ref=6, event=merged["merges"][0]["event"])
    assert "undone already" in (await next_kind(p1, "error"))["payload"]["reason"]
    await send(p1, "card.unmerge", ref=7, event="not a number")
    assert (await next_kind(p1, "error"))["payload"]["action"] == "card.unmerge"
    await p1.disconnect()
    await p2.disconnect()
