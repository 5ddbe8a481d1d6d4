"""Every write of the Reflect stage: codes, annotations, attributes, summary jobs.

Rules enforced here (and, where they can be, in the database):
- only participants code, only their own annotations, codes and attributes;
- only while the workshop is in the Reflect stage (read-only from Discuss on);
- only complete or interrupted model messages of their own or the baseline conversations;
- spans are code-point offsets with 0 <= start < end <= len(content); the excerpt is always
  recomputed from the stored message, never taken from the client.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import nullcontext
from functools import cache

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from coding.models import (
    CODE_MAX_LENGTH,
    MEMO_MAX_LENGTH,
    Annotation,
    AnnotationCode,
    Attribute,
    Code,
)
from workshops import jobs
from workshops.events import broadcast
from workshops.models import STAGE_ORDER, Job, Membership, Stage
from workshops.text import clean, normalize

CODABLE_STATUSES = ("complete", "interrupted")
MAX_CODES_PER_REQUEST = 20


class NotEditable(PermissionDenied):
    """Raised when someone may look but not change (wrong stage, someone else's work)."""


# --- Guards -----------------------------------------------------------------------------------


def check_can_code(membership: Membership) -> None:
    if not membership.is_participant:
        raise NotEditable(_("Only participants code. Facilitators and researchers see the coding read-only."))
    if membership.is_withdrawn:
        raise NotEditable(_("You have withdrawn from this workshop."))
    stage = membership.workshop.stage
    if stage != Stage.REFLECT:
        if membership.workshop.stage_index > STAGE_ORDER.index(Stage.REFLECT):
            raise NotEditable(_("The Reflect stage has ended: your coding is kept and shown read-only."))
        raise NotEditable(_("Coding opens in the Reflect stage."))


def _check_can_change(membership: Membership, obj) -> None:
    """The member may code now (check_can_code) and `obj` (a code, highlight or attribute) is theirs."""
    check_can_code(membership)
    if obj.membership_id != membership.id:
        raise NotEditable(_("You can only change your own coding."))


def _delete_own(membership: Membership, obj, kind: str) -> None:
    _check_can_change(membership, obj)
    obj.delete()
    _changed(membership, kind)


def normalize_code_text(text: str) -> tuple[str, str]:
    """(display text, normalized key). Raises ValidationError for empty or too long codes."""
    text = clean(text)
    if "\x00" in text:  # the database refuses it; forms refuse it too (codes also arrive as raw lists)
        raise ValidationError(_("A code cannot contain a NUL character."), code="invalid")
    if not text:
        raise ValidationError(_("Write a code: it cannot be empty."), code="empty")
    normalized = normalize(text)
    if len(text) > CODE_MAX_LENGTH or len(normalized) > CODE_MAX_LENGTH:  # casefold can lengthen: ß -> ss
        raise ValidationError(
            _("A code can be at most %(max)d characters (this one has %(n)d). Put longer thoughts in the memo.")
            % {"max": CODE_MAX_LENGTH, "n": max(len(text), len(normalized))},
            code="too_long",
        )
    return text, normalized


def _check_memo(memo: str, label: str | None = None) -> str:
    memo = (memo or "").strip()
    if len(memo) > MEMO_MAX_LENGTH:
        raise ValidationError(
            _("%(what)s can be at most %(max)d characters.") % {"what": label or _("A memo"), "max": MEMO_MAX_LENGTH},
            code="too_long",
        )
    return memo


def _changed(membership: Membership, what: str) -> None:
    """Tell the facilitator's dashboard that this member's progress counts changed.

    Sent only when a count can change (a turn newly coded, a code or attribute created or
    deleted), not on every edit: with a hundred people coding, each event makes every open
    dashboard re-fetch itself."""
    broadcast(membership.workshop_id, "reflect", {"membership": membership.id, "what": what})


# --- Codes ------------------------------------------------------------------------------------


def _code_get_or_create(*, membership: Membership, text: str) -> Code:
    text, normalized = normalize_code_text(text)
    code = Code.objects.filter(membership=membership, normalized=normalized).first()
    if code is not None:
        return code
    try:
        with transaction.atomic():
            return Code.objects.create(
                workshop_id=membership.workshop_id, membership=membership, text=text, normalized=normalized
            )
    except IntegrityError:  # created concurrently by the same person in another tab
        return Code.objects.get(membership=membership, normalized=normalized)


def _codes_for(*, membership: Membership, texts: list[str]) -> tuple[list[int], bool]:
    """(ids of the member's codes for these validated texts, whether any was created).
    One query in the common case (all codes exist), three when some are new."""
    wanted = {}
    for text in texts:
        display, normalized = normalize_code_text(text)
        wanted.setdefault(normalized, display)
    found = dict(Code.objects.filter(membership=membership, normalized__in=list(wanted))
                 .values_list("normalized", "id"))
    missing = [k for k in wanted if k not in found]
    if missing:
        Code.objects.bulk_create(
            [Code(workshop_id=membership.workshop_id, membership=membership, text=wanted[k], normalized=k)
             for k in missing],
            ignore_conflicts=True,  # a concurrent request of the same person may have created it
        )
        found.update(Code.objects.filter(membership=membership, normalized__in=missing)
                     .values_list("normalized", "id"))
    return [found[k] for k in wanted], bool(missing)


@transaction.atomic
def code_create(*, membership: Membership, text: str, memo: str = "") -> Code:
    check_can_code(membership)
    memo = _check_memo(memo)
    code = _code_get_or_create(membership=membership, text=text)
    if memo and not code.memo:
        code.memo = memo
        code.save(update_fields=["memo", "updated_at"])
    _changed(membership, "code")
    return code


@transaction.atomic
def code_update(*, membership: Membership, code: Code, text: str | None = None, memo: str | None = None) -> Code:
    """Rename a code or set its definition/memo. Renaming onto another of your codes is refused."""
    _check_can_change(membership, code)
    fields = ["updated_at"]
    if text is not None:
        display, normalized = normalize_code_text(text)
        clash = Code.objects.filter(membership=membership, normalized=normalized).exclude(pk=code.pk).exists()
        if clash:
            raise ValidationError(_("You already have the code “%(code)s”.") % {"code": display}, code="duplicate")
        code.text, code.normalized = display, normalized
        fields += ["text", "normalized"]
    if memo is not None:
        code.memo = _check_memo(memo, _("A definition"))
        fields.append("memo")
    code.save(update_fields=fields)
    return code


@transaction.atomic
def code_delete(*, membership: Membership, code: Code) -> None:
    """Delete a code that no highlight uses any more (its attribute links go with it)."""
    _check_can_change(membership, code)
    if code.annotations.exists():
        raise ValidationError(_("This code is still used on a highlight: remove it there first."), code="in_use")
    code.delete()
    _changed(membership, "code")


# --- Annotations -------------------------------------------------------------------------------


@cache
def _message_sql() -> str:
    from llm_gateway.models import Conversation, Message

    m, c, o = Message._meta.db_table, Conversation._meta.db_table, Membership._meta.db_table
    return (
        'SELECT m.id, m.conversation_id, m.role, m.content, m.status, m."position", m.reply_to_id, '
        "c.owner_id, c.is_baseline, o.withdrawn_at, "
        f"(SELECT COUNT(*) FROM {m} n WHERE n.conversation_id = m.conversation_id AND n.role = 'assistant' "
        """AND n."position" <= m."position" AND n.status <> 'superseded'), """
        f"(SELECT COUNT(*) FROM {m} r WHERE r.conversation_id = m.conversation_id AND r.role = 'assistant' "
        "AND r.status = 'superseded' AND r.reply_to_id = m.reply_to_id) "
        f"FROM {m} m INNER JOIN {c} c ON c.id = m.conversation_id INNER JOIN {o} o ON o.id = c.owner_id "
        "WHERE m.id = %s AND c.workshop_id = %s"
    )


MESSAGE_FIELDS = ["id", "conversation_id", "role", "content", "status", "position", "reply_to_id"]


def _codable_message(*, membership: Membership, message_id: int):
    """The message to code, checked, read with one fixed SQL string (the hot path: the ORM's
    query building costs more than the query). Also read: what the saved turn's fragment shows
    besides the highlights, its number among the shown answers (`turn_number`) and how many
    answers it replaced (`turn_replaced`), see selectors.render_turn. The message's other
    fields are deferred (loaded if touched)."""
    from llm_gateway.models import Conversation, Message

    with connection.cursor() as cursor:
        cursor.execute(_message_sql(), [message_id, membership.workshop_id])
        row = cursor.fetchone()
    if row is None:
        raise ValidationError(_("That message is not in this workshop."), code="not_found")
    message = Message.from_db(connection.alias, MESSAGE_FIELDS, row[:7])
    owner_id, is_baseline, owner_withdrawn_at, message.turn_number, message.turn_replaced = row[7:]
    conversation = Conversation.from_db(connection.alias, ["id", "owner_id", "is_baseline"],
                                        [message.conversation_id, owner_id, is_baseline])
    conversation.owner = Membership.from_db(connection.alias, ["id", "withdrawn_at"], [owner_id, owner_withdrawn_at])
    message.conversation = conversation
    visible = conversation.owner_id == membership.id or (
        conversation.is_baseline and conversation.owner.withdrawn_at is None
    )
    if not visible:
        raise NotEditable(_("You can code your own conversations and the workshop's baseline conversations only."))
    if message.role != "assistant":
        raise ValidationError(_("Only the model's answers are coded."), code="not_codable")
    if message.status not in CODABLE_STATUSES:
        raise ValidationError(
            _("This answer cannot be coded (status: %(status)s).") % {"status": message.get_status_display()},
            code="not_codable",
        )
    return message


def _check_span(content: str, start, end) -> tuple[int, int]:
    try:
        start, end = int(start), int(end)
    except (TypeError, ValueError):
        raise ValidationError(_("The selection is not valid: select the text again."), code="bad_span") from None
    if not (0 <= start < end <= len(content)):
        raise ValidationError(
            _("The selection is outside the answer (characters %(start)d–%(end)d of %(n)d): select the text again.")
            % {"start": start, "end": end, "n": len(content)},
            code="bad_span",
        )
    if not content[start:end].strip():
        raise ValidationError(_("Select some words, not only spaces."), code="bad_span")
    return start, end


def _clean_code_list(codes: Iterable[str]) -> list[str]:
    codes = [c for c in codes if c is not None]
    if len(codes) > MAX_CODES_PER_REQUEST:
        raise ValidationError(_("Too many codes at once."), code="too_many")
    cleaned = [normalize_code_text(c)[0] for c in codes]
    if not cleaned:
        raise ValidationError(_("Write at least one code for the highlight."), code="empty")
    return cleaned


# The create's write has two implementations, chosen in one place (_write_annotation):
# - on Postgres, one statement (_write_annotation_sql) writes the highlight, the codes it lacks
#   and the links, and returns what the fragment shows. Why: the create is the Reflect stage's hot
#   path (every Enter in the code field) and round trips to the database were most of its cost:
#   with it a create is 7 queries where the ORM write made 11-13 (docs/coding.md "Benchmarks");
# - elsewhere (SQLite in the embedded mode, `make run`), the portable ORM write in a transaction.
# FAST_WRITE = False sends Postgres through the ORM write too: the tests run both paths there
# (tests/coding/test_create_path.py), so the two cannot drift apart.
FAST_WRITE = True


def _write_annotation(**kwargs):
    if connection.vendor == "postgresql" and FAST_WRITE:
        return _write_annotation_sql(**kwargs)
    return _write_annotation_orm(**kwargs)


def annotation_create(
    *, membership: Membership, message_id: int, start: int, end: int, codes: Iterable[str], memo: str = ""
) -> Annotation:
    """Highlight a span of a model answer with one or more codes.

    Selecting exactly the same span again adds the codes to the existing highlight.

    The returned annotation carries `turn_annotations`: the member's highlights on that answer
    after the write, as selectors.annotation_views returns them (read just before the write
    and updated with what was written), so the caller renders the saved turn without reading
    it again. This is the hot path of the Reflect stage (every Enter in the code field): see
    _write_annotation above for its two writes.
    """
    from coding import selectors

    check_can_code(membership)
    message = _codable_message(membership=membership, message_id=message_id)
    start, end = _check_span(message.content, start, end)
    texts = _clean_code_list(codes)
    memo = _check_memo(memo)
    wanted: dict[str, str] = {}  # normalized -> display text, in the order typed
    for text in texts:
        display, normalized = normalize_code_text(text)
        wanted.setdefault(normalized, display)
    turn = selectors.turn_annotations(membership.id, message.id)
    same = next((v for v in turn if (v.start, v.end) == (start, end)), None)
    set_memo = bool(memo) and (same is None or not same.memo)
    annotation, linked, created_codes = _write_annotation(
        membership=membership, message=message, start=start, end=end, memo=memo, wanted=wanted,
        existing_id=same.id if same else None, set_memo=set_memo,
    )
    annotation.turn_annotations = _turn_after_write(turn, annotation, same, linked)
    if created_codes or not turn:  # only then do the progress counts change
        _changed(membership, "annotation")
    return annotation


def _turn_after_write(turn, annotation: Annotation, same, linked: list[tuple[int, str, str]]):
    """The turn's highlights after the write: `turn` as read before it, plus the new highlight or
    the codes added to the existing one ([(code id, normalized, text)] of every code linked)."""
    from coding.selectors import AnnotationView, annotation_order, code_order

    if same is not None:
        normalized_of = {code_id: normalize(text) for code_id, text in same.codes}  # as stored
        codes = {code_id: (normalized_of[code_id], text) for code_id, text in same.codes}
        view = AnnotationView(same.id, same.message_id, same.start, same.end, same.excerpt, annotation.memo)
        others = [v for v in turn if v.id != same.id]
    else:
        codes = {}
        view = AnnotationView(annotation.id, annotation.message_id, annotation.start, annotation.end,
                              annotation.excerpt, annotation.memo)
        others = list(turn)
    for code_id, normalized, text in linked:
        codes[code_id] = (normalized, text)
    view.codes = [(code_id, text) for code_id, (_n, text) in
                  sorted(codes.items(), key=lambda item: code_order(item[0], item[1][0]))]
    return sorted([*others, view], key=annotation_order)


def _write_annotation_orm(*, membership, message, start, end, memo, wanted, existing_id, set_memo):
    """The portable write (SQLite in the embedded mode): a few ORM statements in a transaction."""
    with transaction.atomic():
        if existing_id is not None:  # the same span again: add the codes to the existing highlight
            annotation = Annotation.objects.get(pk=existing_id)
            if set_memo:
                annotation.memo = memo
                annotation.save(update_fields=["memo", "updated_at"])
        else:
            # A concurrent identical request (two tabs) hits the unique constraint; the view retries.
            annotation = Annotation.objects.create(
                membership=membership, message=message, start=start, end=end,
                excerpt=message.content[start:end], memo=memo,
            )
        code_ids, created = _codes_for(membership=membership, texts=list(wanted.values()))
        AnnotationCode.objects.bulk_create(
            [AnnotationCode(annotation=annotation, code_id=i) for i in code_ids], ignore_conflicts=True
        )
    texts = dict(Code.objects.filter(pk__in=code_ids).values_list("id", "text"))
    return annotation, [(i, normalize(texts[i]), texts[i]) for i in code_ids], created


def _write_annotation_sql(*, membership, message, start, end, memo, wanted, existing_id, set_memo):
    """The Postgres write: the highlight (or the existing one), the missing codes and the links
    in one statement, which returns the highlight's stored fields and every code linked."""
    now = timezone.now()
    a, c, ac = (m._meta.db_table for m in (Annotation, Code, AnnotationCode))
    if existing_id is None:
        # A concurrent identical request (two tabs) hits the unique constraint: IntegrityError,
        # and the view retries (then the span exists and only codes are added).
        ann = (f'INSERT INTO {a} (membership_id, message_id, "start", "end", excerpt, memo, created_at, updated_at) '
               f"VALUES (%(member)s, %(message)s, %(start)s, %(end)s, %(excerpt)s, %(memo)s, %(now)s, %(now)s) "
               f"RETURNING id, created_at, updated_at, memo")
    elif set_memo:
        ann = (f"UPDATE {a} SET memo = %(memo)s, updated_at = %(now)s WHERE id = %(existing)s "
               f"RETURNING id, created_at, updated_at, memo")
    else:
        ann = f"SELECT id, created_at, updated_at, memo FROM {a} WHERE id = %(existing)s"
    sql = f"""
        WITH ann AS ({ann}),
        wanted AS (SELECT * FROM unnest(%(norms)s::text[], %(texts)s::text[]) AS w(normalized, text)),
        found AS (SELECT id, normalized, text FROM {c}
                  WHERE membership_id = %(member)s AND normalized = ANY(%(norms)s::text[])),
        made AS (INSERT INTO {c} (workshop_id, membership_id, text, normalized, memo, created_at, updated_at)
                 SELECT %(workshop)s, %(member)s, w.text, w.normalized, '', %(now)s, %(now)s FROM wanted w
                 WHERE NOT EXISTS (SELECT 1 FROM found f WHERE f.normalized = w.normalized)
                 ON CONFLICT DO NOTHING
                 RETURNING id, normalized, text),
        codes AS (SELECT id, normalized, text, false AS created FROM found
                  UNION ALL SELECT id, normalized, text, true FROM made),
        linked AS (INSERT INTO {ac} (annotation_id, code_id, created_at)
                   SELECT ann.id, codes.id, %(now)s FROM ann CROSS JOIN codes
                   ON CONFLICT DO NOTHING)
        SELECT ann.id, ann.created_at, ann.updated_at, ann.memo, codes.id, codes.normalized, codes.text, codes.created
        FROM ann LEFT JOIN codes ON true
    """
    params = {
        "member": membership.id, "workshop": membership.workshop_id, "message": message.id, "start": start,
        "end": end, "excerpt": message.content[start:end], "memo": memo, "now": now, "existing": existing_id,
        "norms": list(wanted), "texts": list(wanted.values()),
    }
    # Outside a transaction (a request) the statement is atomic on its own and needs no BEGIN /
    # COMMIT round trips; inside one (a caller's, or a test's) a savepoint keeps a refused
    # statement (the unique span, see above) from breaking the caller's transaction.
    with transaction.atomic() if connection.in_atomic_block else nullcontext(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:  # the existing highlight was deleted a moment ago (another tab)
        raise ValidationError(_("This highlight was just deleted: select the text again."), code="not_found")
    ann_id, created_at, updated_at, stored_memo = rows[0][:4]
    linked = [(code_id, normalized, text) for *_a, code_id, normalized, text, _c in rows if code_id is not None]
    created = any(row[7] for row in rows if row[4] is not None)
    missing = [k for k in wanted if k not in {n for _i, n, _t in linked}]
    if missing:  # created a moment ago by the same person in another tab: link those too
        pairs = list(Code.objects.filter(membership=membership, normalized__in=missing)
                     .values_list("id", "normalized", "text"))
        AnnotationCode.objects.bulk_create([AnnotationCode(annotation_id=ann_id, code_id=i) for i, _n, _t in pairs],
                                           ignore_conflicts=True)
        linked += pairs
    annotation = Annotation(id=ann_id, membership=membership, message=message, start=start, end=end,
                            excerpt=message.content[start:end], memo=stored_memo, created_at=created_at,
                            updated_at=updated_at)
    annotation._state.adding = False
    annotation._state.db = connection.alias
    return annotation, linked, created


@transaction.atomic
def annotation_add_code(*, membership: Membership, annotation: Annotation, text: str) -> Code:
    _check_can_change(membership, annotation)
    (code_id,), created = _codes_for(membership=membership, texts=[normalize_code_text(text)[0]])
    AnnotationCode.objects.bulk_create([AnnotationCode(annotation=annotation, code_id=code_id)], ignore_conflicts=True)
    annotation.save(update_fields=["updated_at"])
    if created:
        _changed(membership, "code")
    return Code.objects.get(pk=code_id)


@transaction.atomic
def annotation_remove_code(*, membership: Membership, annotation: Annotation, code_id: int) -> None:
    """Remove one code from a highlight; the last code cannot go (delete the highlight instead)."""
    _check_can_change(membership, annotation)
    links = AnnotationCode.objects.filter(annotation=annotation)
    if not links.filter(code_id=code_id).exists():
        raise ValidationError(_("That code is not on this highlight."), code="not_found")
    if links.count() <= 1:
        raise ValidationError(
            _("A highlight needs at least one code. Add another code first, or delete the highlight."),
            code="last_code",
        )
    links.filter(code_id=code_id).delete()
    annotation.save(update_fields=["updated_at"])


@transaction.atomic
def annotation_set_memo(*, membership: Membership, annotation: Annotation, memo: str) -> Annotation:
    _check_can_change(membership, annotation)
    annotation.memo = _check_memo(memo)
    annotation.save(update_fields=["memo", "updated_at"])
    return annotation


@transaction.atomic
def annotation_delete(*, membership: Membership, annotation: Annotation) -> None:
    """Delete a highlight. Its codes stay in the codebook (they may feed attributes)."""
    _delete_own(membership, annotation, "annotation")


# --- Attributes (focused coding) ---------------------------------------------------------------


def _check_attribute_name(name: str) -> str:
    name = clean(name)
    if not name:
        raise ValidationError(_("Give the attribute a name."), code="empty")
    if len(name) > CODE_MAX_LENGTH:
        raise ValidationError(
            _("An attribute name can be at most %(max)d characters; put the rest in its definition.")
            % {"max": CODE_MAX_LENGTH},
            code="too_long",
        )
    return name


@transaction.atomic
def attribute_create(*, membership: Membership, name: str, definition: str = "", code_ids: Iterable[int] = ()) -> Attribute:
    check_can_code(membership)
    name = _check_attribute_name(name)
    definition = _check_memo(definition, _("A definition"))
    position = (Attribute.objects.filter(membership=membership).aggregate(m=Max("position"))["m"] or 0) + 1
    attribute = Attribute.objects.create(
        workshop_id=membership.workshop_id, membership=membership, name=name, definition=definition, position=position
    )
    code_ids = list(code_ids)
    if code_ids:
        attribute.codes.add(*Code.objects.filter(membership=membership, pk__in=code_ids))
    _changed(membership, "attribute")
    return attribute


@transaction.atomic
def attribute_update(
    *, membership: Membership, attribute: Attribute, name: str | None = None, definition: str | None = None
) -> Attribute:
    _check_can_change(membership, attribute)
    if name is not None:
        attribute.name = _check_attribute_name(name)
    if definition is not None:
        attribute.definition = _check_memo(definition, _("A definition"))
    attribute.save()
    return attribute


@transaction.atomic
def attribute_delete(*, membership: Membership, attribute: Attribute) -> None:
    """Delete an attribute; its codes go back to the pool (they are not deleted)."""
    _delete_own(membership, attribute, "attribute")


@transaction.atomic
def attribute_add_code(*, membership: Membership, attribute: Attribute, code_id: int) -> None:
    """Put a code into an attribute. A code may feed several attributes."""
    _check_can_change(membership, attribute)
    code = Code.objects.filter(pk=code_id, membership=membership).first()
    if code is None:
        raise ValidationError(_("That code is not in your codebook."), code="not_found")
    attribute.codes.add(code)
    attribute.save(update_fields=["updated_at"])


@transaction.atomic
def attribute_remove_code(*, membership: Membership, attribute: Attribute, code_id: int) -> None:
    _check_can_change(membership, attribute)
    attribute.codes.remove(code_id)
    attribute.save(update_fields=["updated_at"])


# --- Group summary job -------------------------------------------------------------------------


def summary_request(*, membership: Membership, force: bool = False) -> Job:
    """Queue the group summary (a `summary` job, workshops/jobs.py), or return the running one,
    or the finished one for the same data (unless `force`)."""
    from coding import selectors

    if not membership.is_facilitator:
        raise NotEditable(_("Only the facilitator generates the group summary."))
    workshop = membership.workshop
    return jobs.job_request(workshop=workshop, kind="summary", by=membership,
                            fingerprint=selectors.summary_fingerprint(workshop), reuse_done=not force)


def summary_notify(job: Job) -> None:
    """Push a summary job's state: the summary page re-fetches its status partial."""
    broadcast(job.workshop_id, "reflect-summary", {"job": job.pk})


def on_withdrawal(membership: Membership) -> None:
    """The withdrawal hook (workshops.withdrawal): a computed summary holding the member's data
    is no longer shown (selectors.shown_summary), and a new one without it is queued at once —
    also when one is being computed right now (it read their data too: it is ended and replaced)."""
    from coding import selectors

    workshop = membership.workshop
    latest = selectors.latest_summary_job(workshop)
    done = selectors.latest_done_summary(workshop)
    holds_them = done is not None and done.result and membership.id in selectors.summary_contributors(done.result)
    if holds_them or (latest is not None and latest.is_active):
        jobs.job_request(workshop=workshop, kind="summary", by=None, fingerprint=selectors.summary_fingerprint(workshop),
                         replace_active=_("A participant withdrew: the summary is computed again without their data."))
    else:
        broadcast(membership.workshop_id, "reflect-summary", {})
