"""Writes of the board's cards: create, edit (versioned), comment, remove, merge/unmerge, split,
attach labels and excerpts."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from discussion import events, selectors
from discussion.models import (
    COMMENT_MAX,
    DEFINITION_MAX,
    NAME_MAX,
    Axis,
    AxisComment,
    AxisEvent,
    AxisEventKind,
    AxisExample,
    AxisSource,
    AxisStatus,
    GroupVote,
    Pick,
    Segment,
    SessionEvent,
)
from discussion.services._common import (
    Conflict,
    _active_axis,
    _axis_event,
    _card_changed,
    _check_card_caps,
    _clean_text,
    _id_or_none,
    _log,
    _ordered_axis_ids,
    _require_segment,
    _text_of,
)
from discussion.services.session import session_get
from workshops.models import Membership

# --- segment 4: the board ---------------------------------------------------------------------


@transaction.atomic
def axis_create(*, membership: Membership, name, definition="", pick_id=None) -> Axis:
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.BOARD,))
    name = _clean_text(name, max_length=NAME_MAX, field="name")
    definition = _clean_text(definition, max_length=DEFINITION_MAX, field="definition", required=False)
    pick = None
    if pick_id:
        pick = Pick.objects.filter(pk=pick_id, membership__workshop_id=membership.workshop_id,
                                   membership__withdrawn_at__isnull=True).first()
        if pick is None:
            raise ValidationError({"pick": _("No such pick.")})
    _check_card_caps(membership=membership, session=session, adding=1)
    axis = Axis.objects.create(workshop_id=membership.workshop_id, name=name, definition=definition,
                               created_by=membership, updated_by=membership)
    if pick is not None:
        AxisSource.objects.create(axis=axis, pick=pick, added_by=membership)
        if pick.attribute_id:
            AxisSource.objects.create(axis=axis, attribute_id=pick.attribute_id, added_by=membership)
    _axis_event(axis, AxisEventKind.CREATED, membership, name=name, definition=definition,
                pick=pick.pk if pick else None, split_from=None, version=axis.version)
    _log(membership.workshop_id, membership, "card_create", axis=axis.pk, name=name, definition=definition)
    _card_changed(axis, "card")
    return axis


@transaction.atomic
def axis_update(*, membership: Membership, axis_id, name, definition, version) -> Axis:
    """Change a card's name and definition; `version` is the one the writer started from.

    One conditional UPDATE (no lock held across round trips): it changes the row only if the
    card is still on the board at that version; otherwise the writer gets a Conflict with the
    current text. The log keeps every version's text (the previous one is the prior event).
    """
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.BOARD,))
    name = _clean_text(name, max_length=NAME_MAX, field="name")
    definition = _clean_text(definition, max_length=DEFINITION_MAX, field="definition", required=False)
    try:
        axis_id, version = int(axis_id), int(version)
    except (TypeError, ValueError):
        raise ValidationError({"version": _("Missing card or version.")}) from None
    # The card's proposer as the board names them ("" for none or a withdrawn member).
    author = _write_edit(membership=membership, axis_id=axis_id, version=version, name=name, definition=definition)
    if author is None:
        axis = _active_axis(membership.workshop_id, axis_id)  # refuses a missing, merged or removed card
        raise Conflict(axis, {"name": name, "definition": definition, "version": version})
    # The most frequent change carries only the text (no provenance queries, a small frame).
    payload = events.board(membership.workshop_id, "card_text", {"card": {
        "id": axis_id, "name": name, "definition": definition, "version": version + 1,
        "edited_by": membership.pseudonym}}, shown={"by": author or None})
    axis = Axis(pk=axis_id, workshop_id=membership.workshop_id, name=name, definition=definition,
                version=version + 1, updated_by=membership)
    axis.board_html = payload["html"]  # the author's reply carries the same HTML
    return axis


# A card's text edit has two writes, chosen in one place (_write_edit), as the Reflect stage's
# create does (coding/services.py):
# - on Postgres, one statement (_write_edit_sql) reads the text at `version`, changes the card
#   and appends both log rows. Why: the edit is the board's most frequent change, and its time
#   before the commit is what every screen waits for. The ORM write's four statements cost
#   0.3-0.5 ms each in the database and as much again compiling and building rows
#   (benchmarks/discussion_command.py prints each; docs/discussion.md "Where a change's time goes");
# - elsewhere (SQLite in the embedded mode, `make run`), the portable ORM write.
# FAST_WRITE = False sends Postgres through the ORM write too: the tests run both paths there
# (tests/discussion/test_edit_path.py), so the two cannot drift apart.
FAST_WRITE = True


def _write_edit(**kwargs) -> str | None:
    """Change the card's text if it is still on the board at `version`, with its provenance
    (the AxisEvent with the text before and after) and the session's log row. Returns the
    card's proposer as the board names them ("" for none or a withdrawn member), or None
    when nothing was changed (the caller says why: a conflict, or no such card)."""
    if connection.vendor == "postgresql" and FAST_WRITE:
        return _write_edit_sql(**kwargs)
    return _write_edit_orm(**kwargs)


def _write_edit_orm(*, membership, axis_id, version, name, definition) -> str | None:
    """The portable write: the text at `version` (a version number names one text: every text
    change raises it), read for the edit's provenance; the conditional UPDATE is what decides
    (no lock held across round trips)."""
    before = Axis.objects.filter(pk=axis_id, workshop_id=membership.workshop_id, version=version).values(
        "name", "definition", "created_by__pseudonym", "created_by__withdrawn_at").first()
    updated = Axis.objects.filter(
        pk=axis_id, workshop_id=membership.workshop_id, status=AxisStatus.ACTIVE, version=version
    ).update(name=name, definition=definition, version=F("version") + 1, updated_by=membership,
             updated_at=timezone.now())
    if not updated:
        return None
    author = ""
    if before is not None:
        pseudonym, withdrawn_at = before.pop("created_by__pseudonym"), before.pop("created_by__withdrawn_at")
        author = (pseudonym or "") if withdrawn_at is None else ""
    after = {"name": name, "definition": definition}
    AxisEvent.objects.create(axis_id=axis_id, kind=AxisEventKind.EDITED, actor=membership,
                             data={"before": before, "after": after, "version": version + 1})
    _log(membership.workshop_id, membership, "card_edit", axis=axis_id, after=after, version=version + 1)
    return author


def _write_edit_sql(*, membership, axis_id, version, name, definition) -> str | None:
    """The Postgres write: the same rows as _write_edit_orm in one statement. Its parts share one
    snapshot, so `old` is the text before the change; a concurrent edit of the same version
    makes the UPDATE match nothing (it re-checks the version once the other commits), and then
    nothing else is written either (the inserts read from `upd`)."""
    ax, mem, ev, log = Axis._meta.db_table, Membership._meta.db_table, AxisEvent._meta.db_table, SessionEvent._meta.db_table
    sql = f"""
        WITH old AS (SELECT a.name, a.definition, m.pseudonym, m.withdrawn_at FROM {ax} a
                     LEFT JOIN {mem} m ON m.id = a.created_by_id
                     WHERE a.id = %(axis)s AND a.workshop_id = %(workshop)s AND a.version = %(version)s),
        upd AS (UPDATE {ax} SET name = %(name)s, definition = %(definition)s, version = version + 1,
                       updated_by_id = %(member)s, updated_at = %(now)s
                WHERE id = %(axis)s AND workshop_id = %(workshop)s AND status = %(active)s AND version = %(version)s
                RETURNING id),
        after AS (SELECT jsonb_build_object('name', %(name)s::text, 'definition', %(definition)s::text) AS text),
        event AS (INSERT INTO {ev} (axis_id, kind, actor_id, at, data)
                  SELECT upd.id, %(kind)s, %(member)s, %(now)s, jsonb_build_object(
                      'before', (SELECT jsonb_build_object('name', old.name, 'definition', old.definition) FROM old),
                      'after', after.text, 'version', %(version)s::integer + 1)
                  FROM upd, after),
        logged AS (INSERT INTO {log} (workshop_id, actor_id, kind, data, created_at)
                   SELECT %(workshop)s, %(member)s, 'card_edit', jsonb_build_object(
                       'axis', upd.id, 'after', after.text, 'version', %(version)s::integer + 1), %(now)s
                   FROM upd, after)
        SELECT CASE WHEN old.withdrawn_at IS NULL THEN coalesce(old.pseudonym, '') ELSE '' END
        FROM upd LEFT JOIN old ON true
    """
    params = {"axis": axis_id, "workshop": membership.workshop_id, "version": version, "name": name,
              "definition": definition, "member": membership.pk, "now": timezone.now(),
              "active": AxisStatus.ACTIVE.value, "kind": AxisEventKind.EDITED.value}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else row[0]


@transaction.atomic
def axis_comment(*, membership: Membership, axis_id, text) -> AxisComment:
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.BOARD,))
    text = _clean_text(text, max_length=COMMENT_MAX, field="text")
    axis = _active_axis(membership.workshop_id, axis_id)
    comment = AxisComment.objects.create(axis=axis, membership=membership, text=text)
    _card_changed(axis)
    return comment


@transaction.atomic
def axis_archive(*, membership: Membership, axis_id) -> Axis:
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.BOARD,))
    axis = _active_axis(membership.workshop_id, axis_id, lock=True)
    axis.status = AxisStatus.ARCHIVED
    axis.version += 1
    axis.updated_by = membership
    axis.save()
    GroupVote.objects.filter(axis=axis).delete()
    _log(membership.workshop_id, membership, "card_remove", axis=axis.pk)
    events.board(axis.workshop_id, "card_removed", {"id": axis.pk, "card": selectors.card_data(axis)})
    return axis


def _copy_provenance(source: Axis, target: Axis, by: Membership) -> dict:
    """Copy a card's sources and examples onto another; returns the ids of the rows it created
    (what an undo of a merge takes back)."""
    created = {"sources": [], "examples": []}
    for s in source.sources.all():
        exists = AxisSource.objects.filter(axis=target, code_id=s.code_id, attribute_id=s.attribute_id, pick_id=s.pick_id)
        if not exists.exists():
            row = AxisSource.objects.create(axis=target, code_id=s.code_id, attribute_id=s.attribute_id,
                                            pick_id=s.pick_id, added_by=s.added_by or by)
            created["sources"].append(row.pk)
    for e in source.examples.all():
        if e.annotation_id and AxisExample.objects.filter(axis=target, annotation_id=e.annotation_id).exists():
            continue
        if not e.annotation_id and AxisExample.objects.filter(axis=target, message_id=e.message_id, excerpt=e.excerpt).exists():
            continue
        row = AxisExample.objects.create(axis=target, annotation_id=e.annotation_id, message_id=e.message_id,
                                         excerpt=e.excerpt, added_by=e.added_by or by)
        created["examples"].append(row.pk)
    return created


@transaction.atomic
def axis_merge(*, membership: Membership, axis_ids, into_id, name=None, definition=None) -> Axis:
    """Merge cards into one; the merged cards keep their history and point to the target.

    One `merged` event per absorbed card on the target: a snapshot of the absorbed card (name,
    definition, author, votes) and the rows the merge copied, so the group can undo it
    (`axis_unmerge`)."""
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.BOARD,))
    target = _active_axis(membership.workshop_id, into_id, lock=True)
    sources = [a for a in _ordered_axis_ids(membership.workshop_id, axis_ids, max_len=50, field="axes") if a.pk != target.pk]
    if not sources:
        raise ValidationError({"axes": _("Choose at least one other card to merge.")})
    before = _text_of(target)
    absorbed = []
    for source in Axis.objects.select_for_update().filter(pk__in=[a.pk for a in sources]).order_by("pk"):
        undo = _copy_provenance(source, target, membership)
        undo["comments"] = []
        for comment in source.comments.all():
            copy = AxisComment.objects.create(axis=target, membership=comment.membership,
                                              text=f"[{source.name}] {comment.text}"[:COMMENT_MAX], created_at=comment.created_at)
            undo["comments"].append(copy.pk)
        undo["votes"] = [{"membership": m, "rank": r} for m, r in
                         GroupVote.objects.filter(axis=source).order_by("membership_id").values_list("membership_id", "rank")]
        snapshot = {"axis": source.pk, "name": source.name, "definition": source.definition,
                    "created_by": source.created_by_id, "created_at": source.created_at.isoformat(),
                    "version": source.version}
        absorbed.append((snapshot, undo))
        source.status = AxisStatus.MERGED
        source.merged_into = target
        source.version += 1
        source.updated_by = membership
        source.save()
        GroupVote.objects.filter(axis=source).delete()
        events.board(source.workshop_id, "card_removed", {"id": source.pk, "card": selectors.card_data(source)})
    if name is not None:
        target.name = _clean_text(name, max_length=NAME_MAX, field="name")
    if definition is not None:
        target.definition = _clean_text(definition, max_length=DEFINITION_MAX, field="definition", required=False)
    target.version += 1
    target.updated_by = membership
    target.save()
    for snapshot, undo in absorbed:  # a rename shows once, on the first: the history stays a chain
        _axis_event(target, AxisEventKind.MERGED, membership, absorbed=snapshot, before=before,
                    after=_text_of(target), undo=undo, version=target.version)
        before = _text_of(target)
    renamed = {"after": {"name": target.name, "definition": target.definition}} if name is not None or definition is not None else {}
    _log(membership.workshop_id, membership, "card_merge", into=target.pk, merged=[a.pk for a in sources], **renamed)
    _card_changed(target)
    return target


@transaction.atomic
def axis_unmerge(*, membership: Membership, merge_event_id) -> Axis:
    """Undo one merge (any member in the board segment): the absorbed card comes back on the
    board as it was (its own name, definition, sources, examples and comments never left it;
    the votes the merge dropped are put back where the voter's place is still free), the rows
    the merge copied onto the target are taken back, and the target's text returns to what it
    was before the merge unless someone edited it since. Refused if the target has left the
    board (merged further, split or removed: undo that first) or the merge was undone already."""
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.BOARD,))
    event = AxisEvent.objects.filter(pk=_id_or_none(merge_event_id), kind=AxisEventKind.MERGED,
                                     axis__workshop_id=membership.workshop_id).first()
    if event is None or "undo" not in event.data:
        raise ValidationError({"merge": _("No such merge, or it cannot be undone.")})
    target = _active_axis(membership.workshop_id, event.axis_id, lock=True)
    absorbed = Axis.objects.select_for_update().filter(
        pk=event.data["absorbed"]["axis"], workshop_id=membership.workshop_id).first()
    undone = AxisEvent.objects.filter(axis=target, kind=AxisEventKind.UNMERGED, data__merge_event=event.pk).exists()
    if absorbed is None or undone or absorbed.status != AxisStatus.MERGED or absorbed.merged_into_id != target.pk:
        raise ValidationError({"merge": _("This merge was undone already.")})
    if absorbed.created_by_id and Membership.objects.filter(pk=absorbed.created_by_id, withdrawn_at__isnull=False).exists():
        raise ValidationError({"merge": _("This card's author has withdrawn: it cannot be brought back.")})
    undo = event.data["undo"]
    AxisSource.objects.filter(axis=target, pk__in=undo.get("sources", [])).delete()
    AxisExample.objects.filter(axis=target, pk__in=undo.get("examples", [])).delete()
    AxisComment.objects.filter(axis=target, pk__in=undo.get("comments", [])).delete()
    absorbed.status = AxisStatus.ACTIVE
    absorbed.merged_into = None
    absorbed.version += 1
    absorbed.updated_by = membership
    absorbed.save()
    restored_votes, lost_votes = 0, 0
    for vote in undo.get("votes", []):
        taken = GroupVote.objects.filter(membership_id=vote["membership"]).filter(
            Q(rank=vote["rank"]) | Q(axis=absorbed)).exists()
        if taken or not Membership.objects.filter(pk=vote["membership"]).exists():
            lost_votes += 1
            continue
        GroupVote.objects.create(membership_id=vote["membership"], axis=absorbed, rank=vote["rank"])
        restored_votes += 1
    before = _text_of(target)
    if event.data.get("before") and event.data["before"] != event.data.get("after") and before == event.data.get("after"):
        target.name = event.data["before"]["name"]
        target.definition = event.data["before"]["definition"]
    target.version += 1
    target.updated_by = membership
    target.save()
    _axis_event(target, AxisEventKind.UNMERGED, membership, merge_event=event.pk, restored=absorbed.pk,
                before=before, after=_text_of(target), votes_restored=restored_votes, votes_not_restored=lost_votes,
                version=target.version)
    _log(membership.workshop_id, membership, "card_unmerge", into=target.pk, restored=absorbed.pk, merge_event=event.pk)
    _card_changed(target)
    _card_changed(absorbed)
    if undo.get("votes"):
        events.board(membership.workshop_id, "votes", {"tally": selectors.vote_tally(membership.workshop)})
    return absorbed


@transaction.atomic
def axis_split(*, membership: Membership, axis_id, parts: list[dict]) -> list[Axis]:
    """Split a card into two or more; each part keeps the original's provenance; the original leaves the board."""
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.BOARD,))
    original = _active_axis(membership.workshop_id, axis_id, lock=True)
    if not isinstance(parts, list) or not 2 <= len(parts) <= 6:
        raise ValidationError({"parts": _("Split into two to six cards.")})
    cleaned = [
        (_clean_text(p.get("name"), max_length=NAME_MAX, field="name"),
         _clean_text(p.get("definition", ""), max_length=DEFINITION_MAX, field="definition", required=False))
        for p in parts if isinstance(p, dict)
    ]
    if len(cleaned) != len(parts):
        raise ValidationError({"parts": _("Each part needs a name.")})
    _check_card_caps(membership=membership, session=session, adding=len(cleaned), leaving=original)
    created = []
    for name, definition in cleaned:
        axis = Axis.objects.create(workshop_id=original.workshop_id, name=name, definition=definition,
                                   split_from=original, created_by=membership, updated_by=membership)
        _copy_provenance(original, axis, membership)
        _axis_event(axis, AxisEventKind.CREATED, membership, name=name, definition=definition, pick=None,
                    split_from=original.pk, version=axis.version)
        created.append(axis)
    _axis_event(original, AxisEventKind.SPLIT, membership, version=original.version,
                parts=[{"axis": a.pk, "name": a.name, "definition": a.definition} for a in created])
    original.status = AxisStatus.ARCHIVED
    original.version += 1
    original.updated_by = membership
    original.save()
    GroupVote.objects.filter(axis=original).delete()
    _log(membership.workshop_id, membership, "card_split", axis=original.pk, into=[a.pk for a in created],
         parts=[{"axis": a.pk, "name": a.name, "definition": a.definition} for a in created])
    events.board(original.workshop_id, "card_removed", {"id": original.pk, "card": selectors.card_data(original)})
    for axis in created:
        _card_changed(axis)
    return created


@transaction.atomic
def axis_attach_label(*, membership: Membership, axis_id, key: str) -> Axis:
    """Attach a map label ("code:<normalised>" or "attribute:<normalised>") to a card: all the
    active members' codes or attributes with that label become sources, their annotations examples."""
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.BOARD, Segment.MAP))
    axis = _active_axis(membership.workshop_id, axis_id, lock=True)
    kind, _sep, norm = (key or "").partition(":")
    rows = selectors.label_rows(membership.workshop, kind, norm)
    if not rows:
        raise ValidationError({"key": _("No such label on the map.")})
    for row in rows:
        field = "code" if kind == "code" else "attribute"
        AxisSource.objects.get_or_create(axis=axis, **{field: row}, defaults={"added_by": membership})
    annotations = selectors.annotations_for_label(membership.workshop, kind, norm)[:5]
    for annotation in annotations:
        AxisExample.objects.get_or_create(
            axis=axis, annotation=annotation,
            defaults={"message_id": annotation.message_id, "excerpt": annotation.excerpt[:5000], "added_by": membership},
        )
    axis.version += 1
    axis.save(update_fields=["version", "updated_at"])
    _log(membership.workshop_id, membership, "card_attach_label", axis=axis.pk, key=key)
    _card_changed(axis)
    return axis


def _passage(message, start, end) -> str:
    """The text between two offsets of a message (as the picker shows it), trimmed."""
    text = selectors.picker_text(message.content)
    if isinstance(start, bool) or isinstance(end, bool) or not isinstance(start, int) or not isinstance(end, int):
        raise ValidationError({"excerpt": _("Choose a passage of the message.")})
    if not 0 <= start < end <= len(text):
        raise ValidationError({"excerpt": _("Choose a passage of the message.")})
    passage = text[start:end].strip()
    if not passage:
        raise ValidationError({"excerpt": _("Choose a passage of the message.")})
    if len(passage) > 5000:
        raise ValidationError({"excerpt": _("At most %(n)d characters.") % {"n": 5000}})
    return passage


@transaction.atomic
def axis_add_example(*, membership: Membership, axis_id, annotation_id=None, message_id=None, excerpt="",
                     start=None, end=None) -> AxisExample:
    """Attach an example: an annotation the member can see, or a passage of a message they can
    read (given as its text, or as `start`/`end` offsets in the text the excerpt picker shows)."""
    session = session_get(workshop=membership.workshop)
    _require_segment(membership, session, (Segment.BOARD,))
    axis = _active_axis(membership.workshop_id, axis_id, lock=True)
    if annotation_id:
        annotation = selectors.visible_annotations(membership).filter(pk=_id_or_none(annotation_id)).first()
        if annotation is None:
            raise ValidationError({"annotation": _("No such excerpt.")})
        example, created = AxisExample.objects.get_or_create(
            axis=axis, annotation=annotation,
            defaults={"message_id": annotation.message_id, "excerpt": annotation.excerpt[:5000], "added_by": membership},
        )
    else:
        message = selectors.visible_messages(membership).filter(pk=_id_or_none(message_id)).first()
        if message is None:
            raise ValidationError({"message": _("No such message.")})
        if start is not None or end is not None:
            excerpt = _passage(message, start, end)
        else:
            excerpt = _clean_text(excerpt, max_length=5000, field="excerpt", required=False) or message.content[:5000]
            if excerpt not in message.content:
                raise ValidationError({"excerpt": _("The excerpt must be text from that message.")})
        # The same passage twice is one example (a double click, or two people at once).
        example, created = AxisExample.objects.get_or_create(
            axis=axis, message=message, excerpt=excerpt, defaults={"added_by": membership})
    if not created:
        return example
    _log(membership.workshop_id, membership, "card_example", axis=axis.pk, example=example.pk, message=example.message_id)
    axis.version += 1
    axis.save(update_fields=["version", "updated_at"])
    _card_changed(axis)
    return example
