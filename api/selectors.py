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


# The rows' shape per collection: shape(queryset of the model) -> values() with "id" and "created_at".
# Which rows (workshop, withdrawn people left out) is the collection's scope, below.


def members(qs) -> QuerySet:
    return qs.annotate(created_at=F("joined_at")).values("id", "pseudonym", "role", "created_at", "consented_at")


def conversations(qs) -> QuerySet:
    return (qs.annotate(owner_pseudonym=F("owner__pseudonym"))
            .values("id", "owner_pseudonym", "is_baseline", "model_label", "endpoint_key", "compare_mode", "title",
                    "created_at"))


def messages(qs) -> QuerySet:
    return qs.values("id", "conversation_id", "role", "content", "status", "position", "reply_to_id", "model_id",
                     "is_candidate", "prompt_tokens", "completion_tokens", "created_at")


def annotations(qs) -> QuerySet:
    return (qs.annotate(participant=F("membership__pseudonym"), conversation_id=F("message__conversation_id"))
            .values("id", "participant", "message_id", "conversation_id", "start", "end", "excerpt", "memo",
                    "created_at"))


def annotation_codes(annotation_ids: list[int]) -> dict[int, list[int]]:
    from coding.models import AnnotationCode

    out: dict[int, list[int]] = {}
    for annotation_id, code_id in (AnnotationCode.objects.filter(annotation_id__in=annotation_ids)
                                   .order_by("annotation_id", "code_id").values_list("annotation_id", "code_id")):
        out.setdefault(annotation_id, []).append(code_id)
    return out


def codes(qs) -> QuerySet:
    return qs.annotate(participant=F("membership__pseudonym")).values("id", "participant", "text", "memo", "created_at")


def attributes(qs) -> QuerySet:
    return (qs.annotate(participant=F("membership__pseudonym"))
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


def likert_ratings(qs) -> QuerySet:
    return (qs.annotate(participant=F("membership__pseudonym"), created_at=F("updated_at"))
            .values("id", "participant", "axis_id", "value", "definition_version", "created_at"))


def individual_ranks(qs) -> QuerySet:
    return (qs.annotate(participant=F("membership__pseudonym"), created_at=F("updated_at"))
            .values("id", "participant", "axis_id", "rank", "created_at"))


def evaluation_ratings(qs) -> QuerySet:
    return (qs.annotate(participant=F("membership__pseudonym"), message_id=F("item__message_id"),
                        rubric_version_number=F("rubric_version__number"))
            .values("id", "participant", "item_id", "message_id", "axis_id", "rubric_version_number", "score",
                    "created_at"))


def judge_scores(qs) -> QuerySet:
    return (qs.annotate(endpoint_key=F("run__endpoint_key"), model_id=F("run__model_id"),
                        message_id=F("item__message_id"), rubric_version_number=F("rubric_version__number"),
                        created_at=F("updated_at"))
            .values("id", "run_id", "endpoint_key", "model_id", "item_id", "message_id", "axis_id",
                    "rubric_version_number", "outcome", "score", "reason", "created_at"))


def _participant_ids(workshop) -> list[int]:
    from workshops.models import Membership

    return list(Membership.objects.filter(workshop=workshop, role=Role.PARTICIPANT, withdrawn_at__isnull=True)
                .values_list("id", flat=True))


def _scope_members(workshop):
    from workshops.models import Membership

    return Membership.objects.filter(workshop=workshop, withdrawn_at__isnull=True)


def _scope_conversations(workshop):
    from llm_gateway.models import Conversation
    from workshops.models import Membership

    owners = list(Membership.objects.filter(workshop=workshop, withdrawn_at__isnull=True).values_list("id", flat=True))
    return Conversation.objects.filter(owner_id__in=owners, is_sandbox=False)


def _scope_messages(workshop):
    from llm_gateway.models import Message

    return Message.objects.filter(conversation_id__in=list(_scope_conversations(workshop).values_list("id", flat=True)))


def _by_participants(model_path: str):
    def scope(workshop):
        from django.apps import apps

        return apps.get_model(model_path).objects.filter(membership_id__in=_participant_ids(workshop))
    return scope


def _scope_judge_scores(workshop):
    from evaluation.models import JudgeRun, JudgeScore

    return JudgeScore.objects.filter(run_id__in=list(JudgeRun.objects.filter(workshop=workshop).values_list("id", flat=True)))


@dataclass(frozen=True)
class Collection:
    shape: Callable  # shape(queryset) -> values() with "id" and "created_at" (the rows' fields)
    scope: Callable  # scope(workshop) -> the collection's rows on their own table, people as a literal list
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
    "members": Collection(members, _scope_members, time_field="joined_at"),
    "conversations": Collection(conversations, _scope_conversations),
    "messages": Collection(messages, _scope_messages),
    "annotations": Collection(annotations, _by_participants("coding.Annotation"), extra=_with_codes),
    "codes": Collection(codes, _by_participants("coding.Code")),
    "attributes": Collection(attributes, _by_participants("coding.Attribute"), extra=_with_attribute_codes),
    "likert-ratings": Collection(likert_ratings, _by_participants("discussion.LikertRating"), time_field="updated_at"),
    "individual-ranks": Collection(individual_ranks, _by_participants("discussion.IndividualRank"),
                                   time_field="updated_at"),
    "evaluation-ratings": Collection(evaluation_ratings, _by_participants("evaluation.Rating")),
    "judge-scores": Collection(judge_scores, _scope_judge_scores, time_field="updated_at"),
}


def page(name: str, workshop, *, after: int, limit: int, since=None, until=None) -> tuple[list[dict], int | None]:
    """One keyset page (ids ascending after `after`) and the last id when more follow.

    Two steps, so a page costs the same however large the workshop: the page's ids from the
    rows' own table (primary-key order, people as a literal list: no join to sort through),
    then those rows in their full shape."""
    spec = COLLECTIONS[name]
    scoped = spec.scope(workshop)
    ids = scoped.filter(id__gt=after)
    if since is not None:
        ids = ids.filter(**{f"{spec.time_field}__gte": since})
    if until is not None:
        ids = ids.filter(**{f"{spec.time_field}__lt": until})
    ids = list(ids.order_by("id").values_list("id", flat=True)[: limit + 1])
    more = len(ids) > limit
    ids = ids[:limit]
    rows = list(spec.shape(scoped.model.objects.filter(id__in=ids)).order_by("id")) if ids else []
    if spec.extra and rows:
        spec.extra(rows)
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
