"""Every write of the Evaluate stage: rubrics (versioned), the rating pool and its hand-out, ratings."""

from __future__ import annotations

import hashlib

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from discussion.models import Axis, AxisExample, AxisStatus
from evaluation import selectors
from evaluation.models import (
    POINT_MAX, SCALE, STATEMENT_MAX, STATEMENTS_MAX, EvaluationSettings, PairAssignment, PairChoice, PairItem,
    PairRating, PairSource, Rating, RatingAssignment, RatingItem, Rubric, RubricVersion,
)
from workshops.events import broadcast
from workshops.models import Membership, Workshop


def _clean_text(value: str, limit: int, label: str) -> str:
    value = (value or "").replace("\x00", "").strip()
    if len(value) > limit:
        raise ValidationError(_("%(label)s is longer than %(n)d characters.") % {"label": label, "n": limit})
    return value


def _clean_statements(values, label: str) -> list[str]:
    cleaned = [_clean_text(v, STATEMENT_MAX, label) for v in values or []]
    cleaned = [v for v in cleaned if v]
    if len(cleaned) > STATEMENTS_MAX:
        raise ValidationError(_("At most %(n)d %(label)s statements.") % {"n": STATEMENTS_MAX, "label": label})
    return cleaned


@transaction.atomic
def evaluation_settings_update(*, workshop: Workshop, answers_per_person: int, raters_per_answer: int,
                               include_participant_conversations: bool, pairs_per_person: int = 4) -> EvaluationSettings:
    cfg, _created = EvaluationSettings.objects.select_for_update().get_or_create(workshop=workshop)
    cfg.answers_per_person = answers_per_person
    cfg.raters_per_answer = raters_per_answer
    cfg.pairs_per_person = pairs_per_person
    cfg.include_participant_conversations = include_participant_conversations
    cfg.full_clean()
    cfg.save()
    return cfg


def _reviewed(current: RubricVersion | None, scale: dict, by: Membership, approve: bool) -> tuple[list, dict]:
    """Which drafted points stay drafted after a person saves, and the updated record of model text.

    A drafted point stays marked while its text is unchanged, unless the person approves the
    draft; an edited point becomes the person's text (the record keeps that a model drafted it)."""
    if current is None:
        return [], {}
    drafted, record = [], {k: dict(v) for k, v in (current.model_text or {}).items()}
    for key in current.drafted:
        point = key.partition(".")[2]
        entry = record.setdefault(key, {})
        if scale.get(point, "") != current.scale.get(point, ""):
            entry.update(reviewed="edited", reviewed_by=by.pseudonym)
        elif approve:
            entry.update(reviewed="approved", reviewed_by=by.pseudonym)
        else:
            drafted.append(key)
    return drafted, record


@transaction.atomic
def rubric_save(*, axis: Axis, by: Membership, scale: dict, should=(), should_not=(),
                examples: list[tuple[int, str]] = (), approve: bool = False) -> RubricVersion:
    """Write an axis' rubric. The axis' name and definition are copied in as they are now.

    While nobody has rated with the current version it is updated in place; once ratings exist,
    a new version is made, so no earlier rating ever changes meaning. A point a model drafted
    stays marked as drafted until a person edits its text or saves with `approve`."""
    if axis.status != AxisStatus.ACTIVE:
        raise ValidationError(_("Only the group's final axes get a rubric."))
    cleaned_scale = {str(p): _clean_text(str(scale.get(str(p), scale.get(p, "")) or ""), POINT_MAX,
                                         _("Point %(p)d") % {"p": p}) for p in SCALE}
    snapshots = []
    if examples:
        by_id = {e.id: e for e in AxisExample.objects.filter(axis=axis, id__in=[i for i, _p in examples])}
        for example_id, polarity in examples:
            if polarity not in ("high", "low"):
                raise ValidationError(_("An example illustrates a high or a low score."))
            example = by_id.get(example_id)
            if example is None:
                raise ValidationError(_("That excerpt is not attached to this axis."))
            snapshots.append({"example_id": example.id, "polarity": polarity, "excerpt": example.excerpt})
    fields = {
        "name": axis.name, "definition": axis.definition, "scale": cleaned_scale,
        "should": _clean_statements(should, _("should")),
        "should_not": _clean_statements(should_not, _("should not")),
        "examples": snapshots,
    }
    rubric, _created = Rubric.objects.select_for_update().get_or_create(axis=axis, defaults={"workshop_id": axis.workshop_id})
    current = rubric.versions.order_by("-number").first()
    fields["drafted"], fields["model_text"] = _reviewed(current, cleaned_scale, by, approve)
    if current is not None and not current.in_use():
        for key, value in fields.items():
            setattr(current, key, value)
        current.created_by = by
        current.save()
        return current
    number = current.number + 1 if current else 1
    return RubricVersion.objects.create(rubric=rubric, number=number, created_by=by, **fields)


@transaction.atomic
def rubric_draft_store(*, axis: Axis, by: Membership | None, scale: dict, endpoint) -> RubricVersion | None:
    """Put a model's scale descriptions into the empty points of the axis' current rubric (or a
    first version), marked as drafted. Points a person has written are never replaced; a version
    participants already rated with is left alone and a new one made. None: nothing was empty."""
    rubric, _created = Rubric.objects.select_for_update().get_or_create(axis=axis, defaults={"workshop_id": axis.workshop_id})
    current = rubric.versions.order_by("-number").first()
    base = dict(current.scale) if current else {}
    empty = [str(p) for p in SCALE if not str(base.get(str(p), "")).strip()]
    if not empty:
        return None
    now = timezone.now().isoformat()
    new_scale = {**{str(p): str(base.get(str(p), "")) for p in SCALE},
                 **{p: _clean_text(scale[p], POINT_MAX, p) for p in empty}}
    drafted = sorted(set(current.drafted if current else []) | {f"scale.{p}" for p in empty})
    record = dict(current.model_text or {}) if current else {}
    for p in empty:
        record[f"scale.{p}"] = {"endpoint": endpoint.key, "model": endpoint.model, "drafted_at": now,
                                "reviewed": None, "reviewed_by": None}
    if current is not None and not current.in_use():
        current.scale, current.drafted, current.model_text = new_scale, drafted, record
        current.save(update_fields=["scale", "drafted", "model_text", "updated_at"])
        return current
    fields = {"name": axis.name, "definition": axis.definition, "should": [], "should_not": [], "examples": []}
    if current is not None:
        fields = {k: getattr(current, k) for k in ("name", "definition", "should", "should_not", "examples")}
    return RubricVersion.objects.create(rubric=rubric, number=(current.number + 1) if current else 1, created_by=by,
                                        scale=new_scale, drafted=drafted, model_text=record, **fields)


@transaction.atomic
def rubric_draft_request(*, workshop: Workshop, by: Membership, axis_ids: list[int], endpoint_key: str):
    """Queue a model draft of the empty scale points of these axes' rubrics (one draft job per
    workshop at a time: a second request while one works is told so, nothing is lost)."""
    from llm_gateway import registry
    from workshops import jobs

    if registry.get(endpoint_key) is None:
        raise ValidationError(_("%(key)s is not a configured model endpoint.") % {"key": endpoint_key})
    wanted = []
    for row in selectors.axes_with_rubrics(workshop):
        version = row["version"]
        if row["axis"].id in axis_ids and not (version and version.is_complete):
            wanted.append(row["axis"].id)
    if not wanted:
        raise ValidationError(_("Every point of the scale already has a description: empty the points you "
                                "want a model to draft, then ask again."))
    job = jobs.job_request(workshop=workshop, kind="rubric_draft", by=by,
                           params={"axis_ids": wanted, "endpoint": endpoint_key})
    if not set(wanted) <= set(job.params.get("axis_ids", [])):
        raise ValidationError(_("A model is drafting another rubric right now; ask again when it is done."))
    return job


def _shuffle_key(item_id: int, membership_id: int) -> str:
    """A stable per-person order, so two people are not handed the same answers first."""
    return hashlib.blake2b(f"{item_id}:{membership_id}".encode(), digest_size=8).hexdigest()


def _hand_out(membership: Membership, model, wanted: int, pool, prepare=None, make=None) -> list:
    """The one hand-out rule (single answers and pairs): a participant gets items up to `wanted`,
    those with the fewest raters first, so every item reaches its overlap before any gets more,
    in a stable per-person order so people don't all start with the same item. Callers hold the
    workshop's settings row (hand-outs of one workshop are serialised on it)."""
    if not membership.is_participant or membership.is_withdrawn:
        raise PermissionDenied(_("Only participants rate answers."))
    existing = list(model.objects.filter(membership=membership).order_by("position"))
    missing = wanted - len(existing)
    if missing <= 0:
        return existing
    if prepare is not None:
        prepare()
    taken = {a.item_id for a in existing}
    candidates = pool().exclude(id__in=taken).annotate(n=Count("assignments")).values_list("id", "n")
    ordered = sorted(candidates, key=lambda row: (row[1], _shuffle_key(row[0], membership.id)))
    start = (existing[-1].position + 1) if existing else 1
    make = make or (lambda item_id, n: {})
    new = [model(item_id=item_id, membership=membership, position=start + i, **make(item_id, n))
           for i, (item_id, n) in enumerate(ordered[:missing])]
    model.objects.bulk_create(new)
    return existing + new


@transaction.atomic
def assignments_ensure(*, membership: Membership) -> list[RatingAssignment]:
    """Hand a participant their share of answers to rate, up to `answers_per_person`; answers
    reach `raters_per_answer` raters before any gets more (`_hand_out`)."""
    workshop = membership.workshop
    cfg, _created = EvaluationSettings.objects.select_for_update().get_or_create(workshop=workshop)
    messages = selectors.pool_messages(workshop).values_list("id", flat=True)

    def prepare():
        RatingItem.objects.bulk_create([RatingItem(workshop=workshop, message_id=m) for m in messages],
                                       ignore_conflicts=True)

    return _hand_out(membership, RatingAssignment, cfg.answers_per_person,
                     lambda: RatingItem.objects.filter(workshop=workshop, message_id__in=messages), prepare)


@transaction.atomic
def pair_assignments_ensure(*, membership: Membership) -> list[PairAssignment]:
    """Hand a participant their share of answer pairs to compare, up to `pairs_per_person`
    (`_hand_out`); which answer is shown on the left alternates between a pair's raters, from a
    random start per pair, and is recorded (a side never stands for a model)."""
    workshop = membership.workshop
    cfg, _created = EvaluationSettings.objects.select_for_update().get_or_create(workshop=workshop)

    def prepare():
        PairItem.objects.bulk_create(
            [PairItem(workshop=workshop, source=PairSource.COMPARE, question_id=q, first_id=a, second_id=b)
             for q, a, b in selectors.compare_pairs(workshop)], ignore_conflicts=True)

    return _hand_out(membership, PairAssignment, cfg.pairs_per_person, lambda: selectors.pair_pool(workshop), prepare,
                     lambda item_id, n: {"swapped": (n + int(_shuffle_key(item_id, 0), 16)) % 2 == 1})


def _handed_out(model, membership: Membership, position: int, missing: str):
    """The assignment (RatingAssignment or PairAssignment) at `position`, locked, and the axes open
    for rating now as {axis id: rubric version in force}; `missing` when nothing is at `position`."""
    assignment = (model.objects.select_for_update().select_related("item")
                  .filter(membership=membership, position=position).first())
    if assignment is None:
        raise ValidationError(missing)
    axes = {row["axis"].id: row["version"] for row in selectors.ratable_axes(membership.workshop)}
    if not axes:
        raise ValidationError(_("No axis has a complete rubric yet: there is nothing to rate along."))
    return assignment, axes


def _answered(assignment, membership: Membership, answered: int, axes: dict) -> None:
    """Done when every open axis has an answer (undone when an axis opened since); the
    facilitator's dashboard refreshes (the event carries no rating)."""
    done_at = timezone.now() if answered >= len(axes) else None
    if (done_at is None) != (assignment.done_at is None):
        assignment.done_at = done_at
        assignment.save(update_fields=["done_at"])
    broadcast(membership.workshop_id, "evaluate", {"membership": membership.id})


@transaction.atomic
def ratings_submit(*, membership: Membership, position: int, scores: dict[int, int | None]) -> RatingAssignment:
    """Store a participant's ratings of one handed-out answer, one per axis (None: does not apply).

    A second rating of the same answer and axis by the same person replaces the first, and names
    the rubric version in force now."""
    assignment, axes = _handed_out(RatingAssignment, membership, position,
                                   _("This answer was not handed to you to rate."))
    unknown = set(scores) - set(axes)
    if unknown:
        raise ValidationError(_("One of the axes is not open for rating."))
    for axis_id, score in scores.items():
        if score is not None and score not in SCALE:
            raise ValidationError(_("A rating is a whole number from 1 to 5, or 'does not apply'."))
        Rating.objects.update_or_create(
            item=assignment.item, membership=membership, axis_id=axis_id,
            defaults={"score": score, "rubric_version": axes[axis_id]},
        )
    _answered(assignment, membership, axes=axes, answered=Rating.objects.filter(
        item=assignment.item, membership=membership, axis_id__in=list(axes)).count())
    return assignment


SHOWN_CHOICES = ("left", "right", "tie", "not_applicable")


@transaction.atomic
def pair_ratings_submit(*, membership: Membership, position: int, choices: dict) -> PairAssignment:
    """Store a participant's choices on one pair: {axis id: "left"|"right"|"tie"|"not_applicable"},
    with the key None for an optional overall choice. Sides are as the rater saw them; they are
    stored in the pair's own order. A second choice on the same pair and axis replaces the first."""
    assignment, axes = _handed_out(PairAssignment, membership, position,
                                   _("This pair was not handed to you to compare."))
    if set(choices) - set(axes) - {None}:
        raise ValidationError(_("One of the axes is not open for rating."))
    canonical = {"left": PairChoice.SECOND if assignment.swapped else PairChoice.FIRST,
                 "right": PairChoice.FIRST if assignment.swapped else PairChoice.SECOND,
                 "tie": PairChoice.TIE, "not_applicable": PairChoice.NOT_APPLICABLE}
    for axis_id, shown in choices.items():
        if shown not in SHOWN_CHOICES:
            raise ValidationError(_("Choose the left answer, the right one, 'equally good' or 'does not apply'."))
        PairRating.objects.update_or_create(
            item=assignment.item, membership=membership, axis_id=axis_id,
            defaults={"choice": canonical[shown], "rubric_version": axes.get(axis_id),
                      "shown_swapped": assignment.swapped},
        )
    _answered(assignment, membership, axes=axes, answered=PairRating.objects.filter(
        item=assignment.item, membership=membership, axis_id__in=list(axes)).count())
    return assignment


@transaction.atomic
def judge_runs_start(*, workshop: Workshop, by: Membership, endpoint_keys: list[str], concurrency: int = 4):
    """Start one judge run per chosen endpoint and queue the workshop's judge job (or join the one
    that is already working: it picks up every run with something left)."""
    from llm_gateway import registry
    from workshops import jobs

    from evaluation.models import JudgeRun

    if not endpoint_keys:
        raise ValidationError(_("Choose at least one judge model."))
    if not selectors.ratable_axes(workshop):
        raise ValidationError(_("No axis has a complete rubric: a judge needs every point of the scale described."))
    if not Rating.objects.filter(item__workshop=workshop).exists():
        raise ValidationError(_("Participants have not rated any answer yet: there is nothing to check a judge against."))
    runs = []
    for key in dict.fromkeys(endpoint_keys):
        endpoint = registry.get(key)
        if endpoint is None:
            raise ValidationError(_("%(key)s is not a configured model endpoint.") % {"key": key})
        runs.append(JudgeRun.objects.create(workshop=workshop, endpoint_key=key, model_id=endpoint.model,
                                            concurrency=concurrency, created_by=by))
    job = jobs.job_request(workshop=workshop, kind="judge", by=by)
    return runs, job


@transaction.atomic
def judge_resume(*, workshop: Workshop, by: Membership):
    """Score what the workshop's runs still have left (failed calls, a stopped worker)."""
    from workshops import jobs

    return jobs.job_request(workshop=workshop, kind="judge", by=by)
