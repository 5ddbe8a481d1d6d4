"""The human reference set: every rated answer with every participant's per-axis rating
(annotator level) and every judge's reading of it (score, or the outcome when there is no
number), one row per (answer, axis, rater). CSV (every cell quoted and neutralised against
spreadsheet formulas) and JSONL with the same fields."""

from __future__ import annotations

import json
from collections.abc import Iterator

from workshops.exports import stream_csv
from evaluation import selectors
from evaluation.exports import common
from evaluation.models import JudgeScore
from workshops.models import Workshop

REFERENCE_FIELDS = [
    ("workshop", "workshop slug"),
    ("item_id", "the answer's item in the rating pool (same id in ratings.csv)"),
    ("message_id", "message id of the answer"),
    ("conversation_id", "its conversation"),
    ("is_baseline", "true for the shared baseline conversations"),
    ("question_message_id", "id of the question it answers (empty when none)"),
    ("question", "text of the question"),
    ("answer", "text of the answer"),
    ("model", "registry key of the endpoint that wrote the answer"),
    ("axis_id", "the axis"),
    ("axis_name", "axis name in the rubric version used"),
    ("rubric_id", "the axis' rubric"),
    ("rubric_version", "the rubric version the rating or score was given under"),
    ("rater_kind", "'participant', 'judge' or 'comparison_judge'"),
    ("rater", "participant pseudonym, or 'judge-<run id>'"),
    ("judge_run_id", "the judge run (empty for participants)"),
    ("judge_endpoint", "registry key of the judge endpoint (empty for participants)"),
    ("judge_model", "model id the judge endpoint reported (empty for participants)"),
    ("outcome", "participant: 'rated' or 'not_applicable'; judge: scored, not_applicable, unparseable, refused, failed"),
    ("score", "1-5; empty when there is no number (see outcome)"),
    ("reason", "the judge's short reason (empty for participants)"),
    ("rated_at", "when the rating or score was last saved (ISO 8601)"),
]
REFERENCE_COLUMNS = [name for name, _meaning in REFERENCE_FIELDS]


def _answer_fields(workshop, item, message) -> dict:
    question = message.reply_to if message.reply_to_id else None
    return {"workshop": workshop.slug, "item_id": item.id, "message_id": message.id,
            "conversation_id": message.conversation_id, "is_baseline": message.conversation.is_baseline,
            "question_message_id": question.id if question else None,
            "question": question.content if question else "", "answer": message.content,
            "model": message.endpoint_key}


def records(workshop: Workshop) -> Iterator[dict]:
    live_owner = {"item__message__conversation__owner__withdrawn_at__isnull": True}
    ratings = selectors.ratings_for_export(workshop).filter(**live_owner).order_by(
        "item_id", "axis_id", "membership__pseudonym")
    for r in ratings.iterator(chunk_size=common.PAGE):
        yield {**_answer_fields(workshop, r.item, r.item.message), "axis_id": r.axis_id,
               "axis_name": r.rubric_version.name, "rubric_id": r.rubric_version.rubric_id,
               "rubric_version": r.rubric_version.number, "rater_kind": "participant",
               "rater": r.membership.pseudonym, "judge_run_id": None, "judge_endpoint": "", "judge_model": "",
               "outcome": "not_applicable" if r.score is None else "rated", "score": r.score, "reason": "",
               "rated_at": r.updated_at.isoformat()}
    scores = (JudgeScore.objects.filter(run__workshop=workshop, **live_owner)
              .select_related("run", "rubric_version", "item__message__reply_to", "item__message__conversation")
              .order_by("item_id", "axis_id", "run_id"))
    for s in scores.iterator(chunk_size=common.PAGE):
        yield {**_answer_fields(workshop, s.item, s.item.message), "axis_id": s.axis_id,
               "axis_name": s.rubric_version.name, "rubric_id": s.rubric_version.rubric_id,
               "rubric_version": s.rubric_version.number, "rater_kind": "judge", "rater": f"judge-{s.run_id}",
               "judge_run_id": s.run_id, "judge_endpoint": s.run.endpoint_key, "judge_model": s.run.model_id,
               "outcome": s.outcome, "score": s.score, "reason": s.reason, "rated_at": s.updated_at.isoformat()}
    yield from common.comparison_reference_rows(workshop)


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def csv_chunks(workshop: Workshop) -> Iterator[str]:
    def rows():
        for rec in records(workshop):
            yield [_cell(rec.get(c)) for c in REFERENCE_COLUMNS]
    return stream_csv(REFERENCE_COLUMNS, rows())


def jsonl_chunks(workshop: Workshop) -> Iterator[str]:
    for rec in records(workshop):
        yield json.dumps({c: rec.get(c) for c in REFERENCE_COLUMNS}, ensure_ascii=False) + "\n"
