"""Reads of the board: a card as clients show it, the board's snapshot and sequence number."""

from __future__ import annotations

from django.db.models import Prefetch, prefetch_related_objects

from discussion import models
from discussion.selectors.members import EXCERPT_CHARS, example_shown, shown_member, shown_pseudonym, withdrawn
from discussion.selectors.presence import presence
from discussion.selectors.ratings import group_ranking, my_votes, vote_tally
from discussion.selectors.session import active_axes, session_data, session_for
from workshops import jobs
from workshops.models import Job, Membership

# What card_data reads, fetched for all cards at once (board_state: a constant number of
# queries however many cards; a single card gets the same three queries it always had).
CARD_PREFETCH = (
    Prefetch("sources", queryset=models.AxisSource.objects.select_related(
        "code__membership", "attribute__membership", "pick__membership")),
    Prefetch("examples", queryset=models.AxisExample.objects.select_related(
        "message__conversation__owner", "added_by", "annotation__membership").order_by("created_at", "id")),
    Prefetch("comments", queryset=models.AxisComment.objects.select_related("membership").order_by("created_at", "id")),
    Prefetch("events", queryset=models.AxisEvent.objects.filter(kind__in=["merged", "unmerged"]).select_related("actor")
             .order_by("at", "id"), to_attr="merge_events"),
)


def card_data(axis: models.Axis) -> dict:
    """Everything a client shows for one card (texts are rendered as text by the client)."""
    if "comments" not in getattr(axis, "_prefetched_objects_cache", {}):  # board_state prefetched them
        prefetch_related_objects([axis], *CARD_PREFETCH)
    sources = []
    for s in axis.sources.all():
        row = s.code or s.attribute or s.pick
        if row is None or withdrawn(row.membership):
            continue
        kind = "code" if s.code_id else "attribute" if s.attribute_id else "pick"
        sources.append({"kind": kind, "label": getattr(row, "text", None) or row.name, "by": row.membership.pseudonym})
    examples = [
        {"id": e.pk, "excerpt": e.excerpt[:EXCERPT_CHARS], "message": e.message_id,
         "conversation": e.message.conversation_id}
        for e in axis.examples.all() if example_shown(e)
    ]
    comments = [
        {"id": c.pk, "by": c.membership.pseudonym, "text": c.text, "at": c.created_at.isoformat()}
        for c in axis.comments.all() if not withdrawn(c.membership)
    ]
    created_by, updated_by = shown_member(axis.created_by), shown_member(axis.updated_by)
    return {
        "id": axis.pk,
        "name": axis.name,
        "definition": axis.definition,
        "status": axis.status,
        "merges": undoable_merges(axis),
        "merged_into": axis.merged_into_id,
        "split_from": axis.split_from_id,
        "version": axis.version,
        "by": created_by.pseudonym if created_by else None,
        "edited_by": updated_by.pseudonym if updated_by else None,
        "sources": sources,
        "examples": examples,
        "comments": comments,
    }


def undoable_merges(axis: models.Axis) -> list[dict]:
    """The merges into this card that the group can still undo (newest first): the merge event,
    the absorbed card's id and name, who merged it and when."""
    rows = getattr(axis, "merge_events", None)  # prefetched with the card (CARD_PREFETCH)
    if rows is None:
        kinds = [models.AxisEventKind.MERGED, models.AxisEventKind.UNMERGED]
        rows = list(models.AxisEvent.objects.filter(axis=axis, kind__in=kinds)
                    .select_related("actor").order_by("at", "id"))
    undone = {e.data.get("merge_event") for e in rows if e.kind == models.AxisEventKind.UNMERGED}
    authors = {e.data["absorbed"].get("created_by") for e in rows if e.kind == models.AxisEventKind.MERGED}
    members = Membership.objects.in_bulk([m for m in authors if m]) if authors else {}
    return [
        {"event": e.pk, "axis": e.data["absorbed"]["axis"], "name": e.data["absorbed"]["name"],
         "author": shown_pseudonym(members.get(e.data["absorbed"].get("created_by"))),
         "by": shown_pseudonym(e.actor), "at": e.at.isoformat()}
        for e in reversed(rows)
        if e.kind == models.AxisEventKind.MERGED and "undo" in e.data and e.pk not in undone
        # A withdrawn member's card is not brought back (nor its name shown) by an undo.
        and not withdrawn(members.get(e.data["absorbed"].get("created_by")))
    ]


def job_data(job: Job | None) -> dict:
    """The map job as the board shows it (workshops.jobs.state plus the map version it made)."""
    if job is None:
        return {}
    return {**jobs.state(job), "result": (job.result or {}).get("version") if isinstance(job.result, dict) else None}


def latest_job(workshop) -> Job | None:
    return Job.objects.filter(workshop=workshop, kind="map").order_by("-created_at", "-id").first()


def board_seq(workshop_id: int) -> int:
    """The board's current event sequence number (0 before its first change)."""
    return models.BoardSequence.objects.filter(workshop_id=workshop_id).values_list("seq", flat=True).first() or 0


def board_cards(workshop) -> list[dict]:
    """Every card on the board as clients show it (a constant number of queries)."""
    axes = active_axes(workshop).select_related("created_by", "updated_by").prefetch_related(*CARD_PREFETCH)
    return [card_data(a) for a in axes]


def group_ranking_data(workshop) -> list[dict]:
    return [{"id": r.axis_id, "name": r.axis.name, "rank": r.rank} for r in group_ranking(workshop)]


def board_state(workshop, membership) -> dict:
    # The sequence number is read first: the state below includes at least every change up
    # to it, so a client replays only later events on top (replaying one twice is harmless).
    seq = board_seq(workshop.id)
    session = session_for(workshop)
    return {
        "seq": seq,
        "session": session_data(session),
        "me": membership.pseudonym,
        "role": membership.role,
        "cards": board_cards(workshop),
        "present": presence(workshop.id),
        "tally": vote_tally(workshop),
        "my_vote": my_votes(membership),
        "ranking": group_ranking_data(workshop),
        "job": job_data(latest_job(workshop)),
    }
