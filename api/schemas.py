"""Response shapes of the API (the OpenAPI schema is generated from them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from ninja import Schema
from pydantic import create_model


class Error(Schema):
    detail: Any


class _Described(Schema):
    """A workshop or study: its slug, title and deployment context come first."""

    slug: str
    title: str
    deployment_context: str


class WorkshopOut(_Described):
    audience: str
    language: str
    stage: str
    study: Optional[str] = None
    template: Optional[str] = None
    created_at: datetime


class StudyOut(_Described):
    workshops: list[str]
    created_at: datetime


class MemberOut(Schema):
    id: int
    pseudonym: str
    role: str
    created_at: datetime
    consented_at: Optional[datetime] = None


class ConversationOut(Schema):
    id: int
    owner_pseudonym: str
    is_baseline: bool
    model_label: str
    endpoint_key: str
    compare_mode: str
    title: str
    created_at: datetime


class MessageOut(Schema):
    id: int
    conversation_id: int
    role: str
    content: str
    status: str
    position: int
    reply_to_id: Optional[int] = None
    model_id: str
    is_candidate: bool
    prompt_tokens: Optional[int] = None
    completion_tokens: Optional[int] = None
    created_at: datetime


class ParticipantItem(Schema):
    """A row a participant made: its id, then the participant's pseudonym (never a name)."""

    id: int
    participant: str


class AnnotationOut(ParticipantItem):
    message_id: int
    conversation_id: int
    start: int
    end: int
    excerpt: str
    memo: str
    code_ids: list[int]
    created_at: datetime


class CodeOut(ParticipantItem):
    text: str
    memo: str
    created_at: datetime


class AttributeOut(ParticipantItem):
    name: str
    definition: str
    position: int
    code_ids: list[int]
    created_at: datetime


class LikertOut(ParticipantItem):
    axis_id: int
    value: int
    definition_version: int
    created_at: datetime


class RankOut(ParticipantItem):
    axis_id: int
    rank: int
    created_at: datetime


class EvaluationRatingOut(ParticipantItem):
    item_id: int
    message_id: int
    axis_id: int
    rubric_version_number: int
    score: Optional[int] = None
    created_at: datetime


class JudgeScoreOut(Schema):
    id: int
    run_id: int
    endpoint_key: str
    model_id: str
    item_id: int
    message_id: int
    axis_id: int
    rubric_version_number: int
    outcome: str
    score: Optional[int] = None
    reason: str
    created_at: datetime


class GroupRankOut(Schema):
    axis_id: int
    rank: int


class AxisOut(Schema):
    """A final axis with its provenance (the derived-axes export's shape)."""

    axis_id: int
    name: str
    definition: str
    version: int
    group_rank: Optional[int] = None
    likert: dict[str, Any]
    mean_individual_rank: Optional[float] = None
    participants: list[str]
    source_labels: list[str]
    picks: list[dict[str, Any]]
    attributes: list[dict[str, Any]]
    codes: list[dict[str, Any]]
    examples: list[dict[str, Any]]
    history: list[dict[str, Any]]


def page_of(item: type, name: str) -> type:
    return create_model(name, __base__=Schema, items=(list[item], ...), next_cursor=(Optional[str], None))


ITEM_SCHEMAS = {
    "members": MemberOut, "conversations": ConversationOut, "messages": MessageOut, "annotations": AnnotationOut,
    "codes": CodeOut, "attributes": AttributeOut, "likert-ratings": LikertOut, "individual-ranks": RankOut,
    "evaluation-ratings": EvaluationRatingOut, "judge-scores": JudgeScoreOut,
}
