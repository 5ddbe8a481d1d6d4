"""An Inspect AI task: `calma_task.py` (fixed code, no workshop text in it) and `dataset.jsonl`,
one sample per (prompt, axis). The model under test answers the conversation; a grader model
(the `grader` model role, by default the model under test) reads the rubric of the sample's axis
and replies with a reason and a last line `SCORE: <1-5>` or `SCORE: NA`. The score is the number;
"does not apply" and unreadable replies are kept as such (not a number, counted apart), never a
zero. Run with `inspect eval calma_task.py --model openai-api/<name>/<model>` against any
OpenAI-compatible endpoint (docs/evaluation.md)."""

from __future__ import annotations

from collections.abc import Iterator

from evaluation.exports import common
from workshops.models import Workshop

DATASET_NAME = "dataset.jsonl"
TASK_NAME = "calma_task.py"

DATASET_FIELDS = [
    ("id", "sample id: '<prompt_id>-a<axis_id>' (unique in the file)"),
    ("input", "the conversation up to the question: list of {role, content} (system first when the workshop has a system prompt)"),
    ("target", "the rubric of the axis as grading instructions (name, definition, scale 1-5, should / should not)"),
    ("metadata.workshop", "workshop slug"),
    ("metadata.prompt_id", "'m<message_id>': the question's message id"),
    ("metadata.message_id", "id of the question (user message) in the workshop"),
    ("metadata.conversation_id", "id of its conversation"),
    ("metadata.is_baseline", "true for the shared baseline conversations"),
    ("metadata.axis_id", "id of the axis (stable; as in every other export)"),
    ("metadata.axis_name", "axis name as written in the rubric version"),
    ("metadata.rubric_id", "id of the axis' rubric"),
    ("metadata.rubric_version", "version number of the rubric used"),
]

TASK_SOURCE = '''"""CALMA Workshops: the community's axes as an Inspect AI task (exported; see docs/evaluation.md).

    inspect eval calma_task.py --model openai-api/local/<model>
        (with LOCAL_BASE_URL=http://host:port/v1 and LOCAL_API_KEY=... in the environment)
    optional: --model-role grader=openai-api/local/<judge model>

One sample per (question, axis) in dataset.jsonl, next to this file. The grader replies with a
short reason and a last line "SCORE: <1-5>" or "SCORE: NA". Scores are 1-5; "does not apply" and
unreadable grades are not numbers and are counted apart (metrics `scored`, `not_applicable`,
`unreadable`), never turned into a zero.
"""

import math
import re
from pathlib import Path

from inspect_ai import Task, task
from inspect_ai.dataset import json_dataset
from inspect_ai.model import get_model
from inspect_ai.scorer import SampleScore, Score, Target, metric, scorer
from inspect_ai.solver import TaskState, generate

GRADER_TEMPLATE = """You grade one answer along one axis that a community of users defined for itself.

[The question]
{question}

[The answer]
{answer}

[The rubric]
{rubric}

Write one or two sentences of reasoning, then a last line exactly of the form
SCORE: <a whole number from 1 to 5>
or, if the axis does not apply to this answer,
SCORE: NA"""

SCORE_LINE = re.compile(r"SCORE:\\s*([1-5]|NA)\\b", re.IGNORECASE)


def _score(item):
    return getattr(item, "score", item)  # a SampleScore (or a bare Score in older versions)


def _numbers(scores):
    values = [_score(s).value for s in scores]
    return [v for v in values if isinstance(v, (int, float)) and not math.isnan(v)]


@metric
def mean_score():
    """Mean of the 1-5 scores (not-applicable and unreadable grades left out)."""
    def compute(scores: list[SampleScore]) -> float:
        numbers = _numbers(scores)
        return sum(numbers) / len(numbers) if numbers else float("nan")
    return compute


@metric
def scored():
    def compute(scores: list[SampleScore]) -> float:
        return float(len(_numbers(scores)))
    return compute


@metric
def not_applicable():
    def compute(scores: list[SampleScore]) -> float:
        return float(sum(1 for s in scores if (_score(s).metadata or {}).get("outcome") == "not_applicable"))
    return compute


@metric
def unreadable():
    def compute(scores: list[SampleScore]) -> float:
        return float(sum(1 for s in scores if (_score(s).metadata or {}).get("outcome") == "unparseable"))
    return compute


@scorer(metrics=[mean_score(), scored(), not_applicable(), unreadable()])
def rubric_scale():
    async def score(state: TaskState, target: Target) -> Score:
        grader = get_model(role="grader", default=get_model())
        question = state.input_text
        prompt = GRADER_TEMPLATE.format(question=question, answer=state.output.completion, rubric=target.text)
        reply = (await grader.generate(prompt)).completion
        found = SCORE_LINE.findall(reply)
        meta = {key: state.metadata.get(key) for key in ("axis_id", "rubric_id", "rubric_version", "message_id")}
        if not found:
            return Score(value=float("nan"), answer=state.output.completion, explanation=reply,
                         metadata={**meta, "outcome": "unparseable"})
        if found[-1].upper() == "NA":
            return Score(value=float("nan"), answer=state.output.completion, explanation=reply,
                         metadata={**meta, "outcome": "not_applicable"})
        return Score(value=int(found[-1]), answer=state.output.completion, explanation=reply,
                     metadata={**meta, "outcome": "scored"})
    return score


@task
def calma_axes():
    return Task(dataset=json_dataset(str(Path(__file__).with_name("dataset.jsonl"))),
                solver=generate(), scorer=rubric_scale())
'''


def task_source(workshop: Workshop | None = None) -> Iterator[str]:
    yield TASK_SOURCE


def samples(workshop: Workshop) -> Iterator[dict]:
    rubric_list = common.rubrics(workshop, complete_only=True)
    if not rubric_list:
        return
    system = [{"role": "system", "content": workshop.system_prompt}] if workshop.system_prompt.strip() else []
    for prompt in common.prompts(workshop):
        for r in rubric_list:
            yield {
                "id": f"{prompt.prompt_id}-a{r.axis_id}",
                "input": system + prompt.messages,
                "target": r.grading_text(),
                "metadata": {"workshop": workshop.slug, "prompt_id": prompt.prompt_id,
                             "message_id": prompt.message_id, "conversation_id": prompt.conversation_id,
                             "is_baseline": prompt.is_baseline, "axis_id": r.axis_id, "axis_name": r.axis_name,
                             "rubric_id": r.rubric_id, "rubric_version": r.version},
            }


def dataset(workshop: Workshop) -> Iterator[str]:
    return common.jsonl(samples(workshop))
