"""Reads of the API: the user behind a token, and each collection as a query over one workshop
(withdrawn people left out everywhere, pseudonyms only), read by keyset pages or streamed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Callable

from django.db.models import F, QuerySet

from api.models import ApiToken
from workshops.models import Role


def token_for(raw: str) -> ApiToken | None:
    from api.services import token_hash

    if not raw or len(raw) > 200:
        return None
    return (ApiToken.objects.select_related("user").filter(key_hash=token_hash(raw), revoked_at__isnull=True,
                                                         user__is_active=True).first())


def tokens_of(user):
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


# --- Cursors --------------------------------------------------------------------------------------


class BadCursor(ValueError):
    pass


def encode_cursor(last_id: int) -> str:
    """A keyset cursor: the last id of the page (ids only ever grow, so pages never shift)."""
    return str(last_id)


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 18:
        raise BadCursor("cursor")
    return int(cursor)


# --- Collections ----------------------------------------------------------------------------------


def _active(prefix: str) -> dict:
    return {f"{prefix}withdrawn_at__isnull": True}


def _participant(prefix: str) -> dict:
    return {f"{prefix}withdrawn_at__isnull": True, f"{prefix}role": Role.PARTICIPANT}


def members(workshop) -> QuerySet:
    from workshops.models import Membership

    return (Membership.objects.filter(workshop=workshop, withdrawn_at__isnull=True)
            .annotate(created_at=F("joined_at"))
            .values("id", "pseudonym", "role", "created_at", "consented_at"))


def conversations(workshop) -> QuerySet:
    from llm_gateway.models import Conversation

    return (Conversation.objects.filter(workshop=workshop, is_sandbox=False, **_active("owner__"))
            .annotate(owner_pseudonym=F("owner__pseudonym"))
            .values("id", "owner_pseudonym", "is_baseline", "model_label", "endpoint_key", "compare_mode", "title",
                    "created_at"))


def messages(workshop) -> QuerySet:
    from llm_gateway.models import Message

    return (Message.objects.filter(conversation__workshop=workshop, conversation__is_sandbox=False,
                                   **_active("conversation__owner__"))
            .values("id", "conversation_id", "role", "content", "status", "position", "reply_to_id", "model_id",
                    "is_candidate", "prompt_tokens", "completion_tokens", "created_at"))


def annotations(workshop) -> QuerySet:
    from coding.models import Annotation

    return (Annotation.objects.filter(membership__workshop=workshop, **_participant("membership__"))
            .annotate(participant=F("membership__pseudonym"), conversation_id=F("message__conversation_id"))
            .values("id", "participant", "message_id", "conversation_id", "start", "end", "excerpt", "memo",
                    "created_at"))


def annotation_codes(annotation_ids: list[int]) -> dict[int, list[int]]:
    from coding.models import AnnotationCode

    out: dict[int, list[int]] = {}
    for annotation_id, code_id in (AnnotationCode.objects.filter(annotation_id__in=annotation_ids)
                                   .order_by("annotation_id", "code_id").values_list("annotation_id", "code_id")):
        out.setdefault(annotation_id, []).append(code_id)
    return out


def codes(workshop) -> QuerySet:
    from coding.models import Code

    return (Code.objects.filter(workshop=workshop, **_participant("membership__"))
            .annotate(participant=F("membership__pseudonym"))
            .values("id", "participant", "text", "memo", "created_at"))


def attributes(workshop) -> QuerySet:
    from coding.models import Attribute

    return (Attribute.objects.filter(workshop=workshop, **_participant("membership__"))
            .annotate(participant=F("membership__pseudonym"))
            .values("id", "participant", "name", "definition", "position", "created_at"))


def attribute_codes(attribute_ids: list[int]) -> dict[int, list[int]]:
    from coding.models import Attribute

    out: dict[int, list[int]] = {}
    through = Attribute.codes.through
    for attribute_id, code_id in (through.objects.filter(attribute_id__in=attribute_ids,
                                                         code__membership__withdrawn_at__isnull=True)
                                  .order_by("attribute_id", "code_id").values_list("attribute_id", "code_id")):
        out.setdefault(attribute_id, []).append(code_id)
    return out


def likert_ratings(workshop) -> QuerySet:
    from discussion.models import LikertRating

    return (LikertRating.objects.filter(axis__workshop=workshop, **_participant("membership__"))
            .annotate(participant=F("membership__pseudonym"), created_at=F("updated_at"))
            .values("id", "participant", "axis_id", "value", "definition_version", "created_at"))


def individual_ranks(workshop) -> QuerySet:
    from discussion.models import IndividualRank

    return (IndividualRank.objects.filter(axis__workshop=workshop, **_participant("membership__"))
            .annotate(participant=F("membership__pseudonym"), created_at=F("updated_at"))
            .values("id", "participant", "axis_id", "rank", "created_at"))


def evaluation_ratings(workshop) -> QuerySet:
    from evaluation.models import Rating

    return (Rating.objects.filter(item__workshop=workshop, **_participant("membership__"))
            .annotate(participant=F("membership__pseudonym"), message_id=F("item__message_id"),
                      rubric_version_number=F("rubric_version__number"))
            .values("id", "participant", "item_id", "message_id", "axis_id", "rubric_version_number", "score", "created_at"))


def judge_scores(workshop) -> QuerySet:
    from evaluation.models import JudgeScore

    return (JudgeScore.objects.filter(run__workshop=workshop)
            .annotate(endpoint_key=F("run__endpoint_key"), model_id=F("run__model_id"),
                      message_id=F("item__message_id"), rubric_version_number=F("rubric_version__number"),
                      created_at=F("updated_at"))
            .values("id", "run_id", "endpoint_key", "model_id", "item_id", "message_id", "axis_id", "rubric_version_number",
                    "outcome", "score", "reason", "created_at"))


@dataclass(frozen=True)
class Collection:
    query: Callable  # query(workshop) -> values() queryset with "id" and "created_at"
    time_field: str = "created_at"
    extra: Callable | None = None  # extra(rows) -> adds related ids in place


def _with_codes(rows: list[dict]) -> None:
    links = annotation_codes([r["id"] for r in rows])
    for r in rows:
        r["code_ids"] = links.get(r["id"], [])


def _with_attribute_codes(rows: list[dict]) -> None:
    links = attribute_codes([r["id"] for r in rows])
    for r in rows:
        r["code_ids"] = links.get(r["id"], [])


COLLECTIONS = {
    "members": Collection(members, time_field="joined_at"),
    "conversations": Collection(conversations),
    "messages": Collection(messages),
    "annotations": Collection(annotations, extra=_with_codes),
    "codes": Collection(codes),
    "attributes": Collection(attributes, extra=_with_attribute_codes),
    "likert-ratings": Collection(likert_ratings, time_field="updated_at"),
    "individual-ranks": Collection(individual_ranks, time_field="updated_at"),
    "evaluation-ratings": Collection(evaluation_ratings),
    "judge-scores": Collection(judge_scores, time_field="updated_at"),
}


def _filtered(name: str, workshop, *, since=None, until=None) -> QuerySet:
    spec = COLLECTIONS[name]
    qs = spec.query(workshop)
    if since is not None:
        qs = qs.filter(**{f"{spec.time_field}__gte": since})
    if until is not None:
        qs = qs.filter(**{f"{spec.time_field}__lt": until})
    return qs


def page(name: str, workshop, *, after: int, limit: int, since=None, until=None) -> tuple[list[dict], int | None]:
    """One keyset page (ids ascending after `after`) and the last id when more follow."""
    rows = list(_filtered(name, workshop, since=since, until=until).filter(id__gt=after).order_by("id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    extra = COLLECTIONS[name].extra
    if extra and rows:
        extra(rows)
    return rows, (rows[-1]["id"] if more and rows else None)


def stream(name: str, workshop, *, since=None, until=None, batch: int = 2000) -> Iterator[dict]:
    """Every row, in id order, fetched a keyset batch at a time (constant memory)."""
    after = 0
    while True:
        rows, _next = page(name, workshop, after=after, limit=batch, since=since, until=until)
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1]["id"]
