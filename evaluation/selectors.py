"""Reads of the Evaluate stage."""

from __future__ import annotations

from array import array
from collections import defaultdict

import numpy as np

from django.db.models import Count, Max, Prefetch, Q

from discussion.selectors import active_axes
from evaluation.agreement import AlphaResult, Ratings, alpha_with_interval
from evaluation.models import EvaluationSettings, Rating, RatingAssignment, RatingItem, Rubric, RubricVersion
from llm_gateway.models import Message, MessageRole, MessageStatus
from workshops.models import Membership, Workshop


def settings_for(workshop: Workshop) -> EvaluationSettings:
    return EvaluationSettings.objects.filter(workshop=workshop).first() or EvaluationSettings(workshop=workshop)


def current_version(rubric: Rubric | None) -> RubricVersion | None:
    if rubric is None:
        return None
    return rubric.versions.order_by("-number").first()


def axes_with_rubrics(workshop: Workshop) -> list[dict]:
    """Every final axis with its rubric's current version (None before one is written)."""
    axes = list(active_axes(workshop).select_related("rubric"))
    latest = {}
    rubric_ids = [a.rubric.id for a in axes if hasattr(a, "rubric")]
    if rubric_ids:
        newest = (RubricVersion.objects.filter(rubric_id__in=rubric_ids).values("rubric_id")
                  .annotate(n=Max("number")))
        wanted = Q()
        for row in newest:
            wanted |= Q(rubric_id=row["rubric_id"], number=row["n"])
        for version in RubricVersion.objects.filter(wanted).annotate(n_ratings=Count("ratings")):
            latest[version.rubric_id] = version
    rows = []
    for axis in axes:
        rubric = getattr(axis, "rubric", None)
        rows.append({"axis": axis, "rubric": rubric, "version": latest.get(rubric.id) if rubric else None})
    return rows


def ratable_axes(workshop: Workshop) -> list[dict]:
    """Axes participants rate along (and judges score): those whose current rubric describes every
    scale point, with nothing a model drafted still waiting for a person's review."""
    return [row for row in axes_with_rubrics(workshop)
            if row["version"] and row["version"].is_complete and not row["version"].needs_review]


def draft_job(workshop: Workshop):
    from workshops.models import Job

    return Job.objects.filter(workshop=workshop, kind="rubric_draft").order_by("-created_at", "-id").first()


def pool_messages(workshop: Workshop):
    """Answers that may be handed out for rating: finished assistant answers of the shared baseline
    conversations (and, if the facilitator turned it on, of participants' conversations) — never a
    withdrawn member's, never a facilitator's sandbox, never a superseded or unfinished answer."""
    cfg = settings_for(workshop)
    conversations = Q(conversation__is_baseline=True)
    if cfg.include_participant_conversations:
        conversations |= Q(conversation__is_sandbox=False, conversation__owner__role="participant")
    return (Message.objects.filter(conversation__workshop=workshop, role=MessageRole.ASSISTANT,
                                   status=MessageStatus.COMPLETE, conversation__owner__withdrawn_at__isnull=True)
            .filter(conversations).exclude(content=""))


def question_of(message: Message) -> Message | None:
    """The user message an answer replies to."""
    if message.reply_to_id:
        return message.reply_to
    return (Message.objects.filter(conversation_id=message.conversation_id, role=MessageRole.USER,
                                   position__lt=message.position).order_by("-position").first())


def assignments_of(membership: Membership) -> list[RatingAssignment]:
    return list(RatingAssignment.objects.filter(membership=membership).select_related("item__message")
                .order_by("position"))


def assignment_view(membership: Membership, position: int) -> dict | None:
    """One answer to rate: its question, the answer, and the member's own ratings so far (never
    anyone else's: no anchoring)."""
    assignment = (RatingAssignment.objects.filter(membership=membership, position=position)
                  .select_related("item__message__conversation", "item__message__reply_to").first())
    if assignment is None:
        return None
    message = assignment.item.message
    mine = {r.axis_id: r.score for r in Rating.objects.filter(item=assignment.item, membership=membership)}
    rated = set(mine)
    return {"assignment": assignment, "message": message, "question": question_of(message),
            "mine": mine, "rated_axes": rated}


def progress_by_member(workshop: Workshop) -> dict[int, dict]:
    """For the facilitator dashboard: answers each participant has finished rating, of assigned."""
    rows = (RatingAssignment.objects.filter(membership__workshop=workshop)
            .values("membership_id")
            .annotate(done=Count("id", filter=Q(done_at__isnull=False)), total=Count("id")))
    out = {r["membership_id"]: {"rated": f"{r['done']}/{r['total']}"} for r in rows}
    for member_id, values in pair_progress_by_member(workshop).items():
        out.setdefault(member_id, {"rated": "0/0"}).update(values)
    return out


def ratings_for_export(workshop: Workshop):
    """Annotator-level rows, withdrawn members left out, in a stable order."""
    return (Rating.objects.filter(item__workshop=workshop, membership__withdrawn_at__isnull=True)
            .select_related("membership", "rubric_version__rubric", "axis", "item__message__reply_to",
                            "item__message__conversation")
            .order_by("axis_id", "item_id", "membership__pseudonym"))


def rubric_versions_for_export(workshop: Workshop):
    return (Rubric.objects.filter(workshop=workshop).select_related("axis")
            .prefetch_related(Prefetch("versions", queryset=RubricVersion.objects.select_related("created_by")
                                       .order_by("number"))))


RATINGS_PAGE = 2000  # ratings read per round trip by the agreement figures


def axis_ratings(workshop: Workshop, axis_id: int) -> Ratings:
    """The participants' ratings on one axis (withdrawn members left out) as arrays: read through
    a server-side cursor, a few bytes per rating (never a Python object per rating)."""
    return Ratings.of(Rating.objects.filter(item__workshop=workshop, membership__withdrawn_at__isnull=True,
                                            axis_id=axis_id)
                      .values_list("membership_id", "item_id", "score").iterator(chunk_size=RATINGS_PAGE))


def agreement(workshop: Workshop, *, resamples: int = 1000) -> list[dict]:
    """Per final axis: Krippendorff's alpha (ordinal) among participants with a bootstrap 95%
    interval, the number of items and ratings, and the score distribution for the chart."""
    out = []
    for row in axes_with_rubrics(workshop):
        axis = row["axis"]
        ratings = axis_ratings(workshop, axis.id)
        result: AlphaResult = alpha_with_interval(ratings, resamples=resamples)
        out.append({
            "axis": axis, "version": row["version"], "result": result,
            "ratings_total": len(ratings), "not_applicable": int((~ratings.scored).sum()),
            "raters": len(ratings.rater_keys), "counts": [int((ratings.scores == point).sum()) for point in (1, 2, 3, 4, 5)],
        })
    return out


def pool_stats(workshop: Workshop) -> dict:
    from evaluation.models import ComparisonAnswer

    items = (RatingItem.objects.filter(workshop=workshop).exclude(message_id__in=ComparisonAnswer.objects.values("message_id"))
             .annotate(n=Count("assignments")))
    cfg = settings_for(workshop)
    total = items.count()
    covered = items.filter(n__gte=cfg.raters_per_answer).count()
    return {"pool": pool_messages(workshop).count(), "items": total, "covered": covered}


# --- judges ----------------------------------------------------------------------------------------


def judge_runs(workshop: Workshop):
    from evaluation.models import JudgeRun

    return list(JudgeRun.objects.filter(workshop=workshop).order_by("id"))


def judge_job(workshop: Workshop):
    from workshops.models import Job

    return Job.objects.filter(workshop=workshop, kind="judge").order_by("-created_at", "-id").first()


def _spearman(xs: np.ndarray, ys: np.ndarray) -> tuple[float | None, int]:
    from scipy.stats import spearmanr

    if len(xs) < 3:
        return None, len(xs)
    if np.unique(xs).size < 2 or np.unique(ys).size < 2:
        return None, len(xs)
    rho = spearmanr(xs, ys).statistic
    return (None if rho != rho else float(rho)), len(xs)  # NaN → None


def _medians(ratings: Ratings) -> tuple[np.ndarray, np.ndarray]:
    """(item ids, sorted; the median of each item's scores) over the ratings with a score."""
    scored = ratings.scored
    items, scores = ratings.items[scored], ratings.scores[scored]
    order = np.lexsort((scores, items))
    items, scores = items[order], scores[order]
    ids, starts, counts = np.unique(items, return_index=True, return_counts=True)
    return ids, (scores[starts + (counts - 1) // 2] + scores[starts + counts // 2]) / 2


def judge_agreement(workshop: Workshop, *, resamples: int = 300) -> dict:
    """Each judge against the participants, per axis: alpha with the judge added as one more rater
    (bootstrap interval), Spearman's rho between the judge's score and the participants' median,
    the judge's outcome counts; and alpha among the judges when there are several. A judge is
    flagged on an axis when adding it lowers alpha below the participants' own. Scores are read
    one axis (and judge) at a time into arrays."""
    from evaluation.models import ComparisonAnswer, JudgeOutcome, JudgeScore

    runs = judge_runs(workshop)
    scores_of_runs = (JudgeScore.objects.filter(run__workshop=workshop)
                      .exclude(item__message_id__in=ComparisonAnswer.objects.values("message_id")))  # a comparison's own
    axes = []
    for row in axes_with_rubrics(workshop):
        axis = row["axis"]
        people = axis_ratings(workshop, axis.id)
        base = alpha_with_interval(people, resamples=resamples)
        rated, medians = _medians(people)
        judges, judged = [], []
        for run in runs:
            outcomes = {o.value: 0 for o in JudgeOutcome}
            items, scores = array("q"), array("d")
            for item_id, outcome, score in (scores_of_runs.filter(run=run, axis_id=axis.id)
                                            .values_list("item_id", "outcome", "score")
                                            .iterator(chunk_size=RATINGS_PAGE)):
                outcomes[outcome] += 1
                if outcome == JudgeOutcome.SCORED:
                    items.append(item_id)
                    scores.append(float("nan") if score is None else score)
            items, scores = np.array(items, dtype=np.int64), np.array(scores, dtype=np.float64)
            judged.append(Ratings(np.zeros(len(items), dtype=np.int32), items, scores, (run.id,)))
            place = np.minimum(np.searchsorted(rated, items), max(len(rated) - 1, 0))
            known = (rated[place] == items) if len(rated) else np.zeros(len(items), dtype=bool)
            extra = Ratings(np.zeros(int(known.sum()), dtype=np.int32), items[known], scores[known],
                            (f"judge-{run.id}",))
            with_judge = alpha_with_interval(people + extra, resamples=resamples) if len(extra) else None
            rho, n = _spearman(medians[place[known]], scores[known])
            judges.append({
                "run": run, "with_judge": with_judge, "rho": rho, "rho_n": n, "outcomes": outcomes,
                "flagged": bool(with_judge and with_judge.alpha is not None and base.alpha is not None
                                and with_judge.alpha < base.alpha),
            })
        between = None
        if len(runs) >= 2:
            combined = judged[0]
            for more in judged[1:]:
                combined = combined + more
            between = alpha_with_interval(combined, resamples=resamples)
        axes.append({"axis": axis, "version": row["version"], "participants": base, "judges": judges,
                     "between_judges": between})
    return {"runs": runs, "axes": axes}


def rated_item_count(workshop: Workshop) -> int:
    return RatingItem.objects.filter(workshop=workshop, ratings__isnull=False).distinct().count()


def progress_status(workshop: Workshop, member_ids, values):
    """Evaluate, for the facilitator's dashboard: done once every answer handed out is rated on
    every axis; where each person is ("Rating · 3/8 answers", "Has not started rating")."""
    from django.utils.translation import gettext as _

    from workshops.progress import StageStatus, Status

    members = {}
    for mid in member_ids:
        done, _sep, total = str(values.get(mid, {}).get("rated") or "0/0").partition("/")
        done, total = int(done or 0), int(total or 0)
        pairs_done, _sep, pairs_total = str(values.get(mid, {}).get("pairs") or "0/0").partition("/")
        pairs_done, pairs_total = int(pairs_done or 0), int(pairs_total or 0)
        if not total:
            members[mid] = Status(_("Has not started rating"), False)
        elif done < total or not pairs_total:
            members[mid] = Status(_("Rating · %(done)d/%(total)d answers") % {"done": done, "total": total},
                                  done >= total)
        else:
            members[mid] = Status(_("Comparing · %(done)d/%(total)d pairs") % {"done": pairs_done, "total": pairs_total},
                                  pairs_done >= pairs_total)
    return StageStatus(_("rated every answer handed to them"), members)


# --- pairwise rating ------------------------------------------------------------------------------


def compare_pairs(workshop: Workshop) -> list[tuple[int, int, int]]:
    """(question id, first answer id, second answer id) for every pair of finished compare-mode
    candidates answering the same question, in slot order — from the same conversations as the
    single-answer pool (baseline; participants' own when the facilitator allows it; never a
    withdrawn member's or a sandbox)."""
    from itertools import combinations

    groups: dict[int, list[int]] = defaultdict(list)
    for reply_to, message_id in (pool_messages(workshop).filter(is_candidate=True, reply_to__isnull=False)
                                 .order_by("reply_to_id", "slot", "id").values_list("reply_to_id", "id")):
        groups[reply_to].append(message_id)
    return [(q, a, b) for q, ids in groups.items() for a, b in combinations(ids, 2)]


def pair_pool(workshop: Workshop):
    """Pairs that may be handed out: compare-mode pairs still in the pool, and every pair a model
    comparison put up for rating (its answers are the facilitator's own, made for this)."""
    from evaluation.models import PairItem, PairSource

    live = pool_messages(workshop).values("id")
    return (PairItem.objects.filter(workshop=workshop)
            .filter(Q(source=PairSource.COMPARISON) | (Q(first_id__in=live) & Q(second_id__in=live))))


def pair_assignments_of(membership: Membership):
    from evaluation.models import PairAssignment

    return list(PairAssignment.objects.filter(membership=membership).order_by("position"))


def pair_view(membership: Membership, position: int) -> dict | None:
    """One pair to compare, in the order this rater sees it (left, right), with the rater's own
    choices so far translated to that order — never anyone else's."""
    from evaluation.models import PairAssignment, PairRating

    assignment = (PairAssignment.objects.filter(membership=membership, position=position)
                  .select_related("item__question", "item__first", "item__second").first())
    if assignment is None:
        return None
    item = assignment.item
    left, right = (item.second, item.first) if assignment.swapped else (item.first, item.second)
    mine = {r.axis_id: to_shown(r.choice, assignment.swapped)
            for r in PairRating.objects.filter(item=item, membership=membership)}
    question = item.question or question_of(item.first)
    return {"assignment": assignment, "item": item, "question": question, "left": left, "right": right,
            "mine": mine}


def to_shown(choice: str, swapped: bool) -> str:
    """A stored (canonical) choice as the rater saw it: "left" / "right" / "tie" / "not_applicable"."""
    mapping = {"first": "right" if swapped else "left", "second": "left" if swapped else "right"}
    return mapping.get(choice, choice)


def pair_progress_by_member(workshop: Workshop) -> dict[int, dict]:
    from evaluation.models import PairAssignment

    rows = (PairAssignment.objects.filter(membership__workshop=workshop).values("membership_id")
            .annotate(done=Count("id", filter=Q(done_at__isnull=False)), total=Count("id")))
    return {r["membership_id"]: {"pairs": f"{r['done']}/{r['total']}"} for r in rows}


def pair_summary(workshop: Workshop) -> list[dict]:
    """Per axis (and overall, axis None): how often participants preferred the first answer, the
    second, neither, or found the axis did not apply — counts, annotator level kept in the export."""
    from evaluation.models import PairChoice, PairRating

    counts: dict[int | None, dict[str, int]] = defaultdict(lambda: {c.value: 0 for c in PairChoice})
    for axis_id, choice, n in (PairRating.objects.filter(item__workshop=workshop, membership__withdrawn_at__isnull=True)
                               .values("axis_id", "choice").annotate(n=Count("id")).values_list("axis_id", "choice", "n")):
        counts[axis_id][choice] += n
    rows = [{"axis": row["axis"], "counts": counts.get(row["axis"].id)} for row in axes_with_rubrics(workshop)]
    rows.append({"axis": None, "counts": counts.get(None)})
    return [r for r in rows if r["counts"]]


def pair_ratings_for_export(workshop: Workshop):
    """Annotator-level pairwise choices, withdrawn members left out, in a stable order."""
    from evaluation.models import PairRating

    return (PairRating.objects.filter(item__workshop=workshop, membership__withdrawn_at__isnull=True)
            .select_related("membership", "axis", "rubric_version", "item__question", "item__first", "item__second")
            .order_by("item_id", "axis_id", "membership__pseudonym"))
