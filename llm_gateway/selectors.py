"""Reads of the Interact stage. Withdrawn members' data is never returned."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from llm_gateway import models, registry
from workshops.models import Membership, Role
from workshops.progress import Status, StageStatus


@dataclass
class OfferedModel:
    id: int
    endpoint_key: str
    blind_label: str
    name: str
    configured: bool
    label: str  # what participants see


def offered_models(workshop) -> list[OfferedModel]:
    out = []
    for m in models.WorkshopModel.objects.filter(workshop=workshop):
        endpoint = registry.get(m.endpoint_key)
        name = endpoint.name if endpoint else m.endpoint_key
        out.append(OfferedModel(
            id=m.id, endpoint_key=m.endpoint_key, blind_label=m.blind_label, name=name,
            configured=endpoint is not None, label=name if workshop.show_model_names else m.blind_label,
        ))
    return out


def label_for(workshop, conversation: models.Conversation, *, staff: bool = False) -> str:
    """The model's name as this reader may see it. Staff always see the real name too."""
    if conversation.compare_mode == models.CompareMode.MODELS:
        return _("two models, compared side by side")
    endpoint = registry.get(conversation.endpoint_key)
    name = endpoint.name if endpoint else conversation.endpoint_key
    if conversation.compare_mode == models.CompareMode.DIVERSE:
        own = label_for(workshop, models.Conversation(endpoint_key=conversation.endpoint_key,
                                               model_label=conversation.model_label), staff=staff)
        return _("%(model)s, several different answers per message") % {"model": own}
    if staff:
        return f"{conversation.model_label} · {name}" if conversation.model_label else name
    return name if workshop.show_model_names else (conversation.model_label or "Model")


def gateway_settings(workshop) -> models.GatewaySettings:
    return models.GatewaySettings.objects.filter(workshop=workshop).first() or models.GatewaySettings(workshop=workshop)


def owned_conversation(membership_id: int, conversation_id: int) -> models.Conversation | None:
    """The conversation if `membership_id` owns it, with its owner (whatever their state: the
    caller applies `permissions.page_refusal`) and the workshop, in one query: the chat socket's
    Send, whose socket knows the membership it opened for."""
    conversation = (models.Conversation.objects.select_related("workshop", "workshop__gateway_settings", "owner")
                    .filter(pk=conversation_id, owner_id=membership_id).first())
    if conversation is not None:
        conversation.owner.workshop = conversation.workshop
    return conversation


def readable_conversation(membership, conversation_id: int) -> models.Conversation | None:
    qs = models.Conversation.objects.select_related("workshop", "workshop__gateway_settings", "owner").filter(
        pk=conversation_id, workshop_id=membership.workshop_id, owner__withdrawn_at__isnull=True)
    if membership.role == Role.PARTICIPANT:
        qs = qs.filter(Q(owner=membership))
    return qs.first()


def conversations_of(membership):
    return (models.Conversation.objects.filter(owner=membership)
            .annotate(n_messages=Count("messages", filter=~Q(messages__status=models.MessageStatus.SUPERSEDED)))
            .order_by("-updated_at"))


def thread(conversation: models.Conversation) -> list[models.Message]:
    """Every message of the conversation, superseded ones too, in order (the Send path reads
    them once: see services.message_send)."""
    return list(conversation.messages.order_by("position"))


def last_counting(messages: list[models.Message]) -> models.Message | None:
    """`last_message` of messages already read."""
    return next((m for m in reversed(messages) if m.status != models.MessageStatus.SUPERSEDED), None)


def _went_silent(message: models.Message, cutoff) -> bool:
    return (message.status in (models.MessageStatus.PENDING, models.MessageStatus.STREAMING)
            and message.updated_at < cutoff)


def _silence_cutoff():
    return timezone.now() - timedelta(seconds=settings.LLM_STALE_SECONDS)


def has_stale(messages: list[models.Message]) -> bool:
    """Whether an answer among `messages` lost its generator (see `shown_as_ended`)."""
    cutoff = _silence_cutoff()
    return any(_went_silent(m, cutoff) for m in messages)


def last_message(conversation: models.Conversation) -> models.Message | None:
    """The conversation's newest message that counts (superseded answers do not)."""
    return conversation.messages.exclude(status=models.MessageStatus.SUPERSEDED).order_by("-position").first()


def messages_for(conversation: models.Conversation):
    return shown_as_ended(list(conversation.messages.order_by("position")))


def shown_as_ended(messages: list[models.Message]) -> list[models.Message]:
    """Answers whose generator went silent (no heartbeat for LLM_STALE_SECONDS) are shown as
    the scheduled sweep will store them, interrupted or failed, without writing anything:
    page views are read-only. The objects are for display; they are never saved."""
    cutoff = _silence_cutoff()
    for m in messages:
        if _went_silent(m, cutoff):
            m.status = models.MessageStatus.INTERRUPTED if m.content else models.MessageStatus.FAILED
            m.error_kind = "lost"
    return messages


_OPEN_RETRY = (models.MessageStatus.FAILED, models.MessageStatus.INTERRUPTED)
_ACTIVE = (models.MessageStatus.PENDING, models.MessageStatus.STREAMING)


@dataclass
class CompareTurn:
    """The candidate answers to one message, shown side by side, and the choice among them."""

    question: models.Message
    candidates: list  # current candidates, by column
    earlier: list  # candidates replaced by a retry
    preference: models.Preference | None
    is_open: bool  # the choice can still be made or changed

    @property
    def finished(self) -> bool:
        return not any(m.status in _ACTIVE for m in self.candidates)


def thread_items(conversation: models.Conversation, chat_messages: list[models.Message]) -> list[tuple[str, object]]:
    """The thread as it is shown: ("message", m) items, and in compare mode a ("compare",
    CompareTurn) item after each message that got candidate answers. Candidates that may be
    tried again are marked `retry_ok`."""
    if not conversation.is_compare:
        return [("message", m) for m in chat_messages]
    preferences = {p.question_id: p for p in models.Preference.objects.filter(conversation=conversation)}
    last_question = max((m.position for m in chat_messages if m.role == models.MessageRole.USER), default=None)
    by_id = {m.id: m for m in chat_messages}
    turns: dict[int, CompareTurn] = {}
    items: list[tuple[str, object]] = []
    for m in chat_messages:
        if not m.is_candidate:
            items.append(("message", m))
            continue
        turn = turns.get(m.reply_to_id)
        if turn is None:
            question = by_id[m.reply_to_id]
            turn = turns[question.id] = CompareTurn(question, [], [], preferences.get(question.id),
                                                    question.position == last_question)
            # Candidates follow their question; a retried one (a later position) joins its turn.
            items.insert(items.index(("message", question)) + 1, ("compare", turn))
        (turn.earlier if m.status == models.MessageStatus.SUPERSEDED else turn.candidates).append(m)
    for turn in turns.values():
        turn.candidates.sort(key=lambda c: c.slot)
        undecided = turn.preference is None or turn.preference.decided_at is None
        for c in turn.candidates:
            c.retry_ok = turn.is_open and undecided and c.status in _OPEN_RETRY
    return items


def conversation_moved_on(conversation: models.Conversation, question: models.Message) -> bool:
    """Has the participant written again since `question`? (Its choice is then closed.)"""
    return conversation.messages.filter(role=models.MessageRole.USER, position__gt=question.position).exists()


def candidate_retry_ok(conversation: models.Conversation, message: models.Message) -> bool:
    """For one candidate (the message fragment): may it be tried again? Only a failed or cut-off
    one, before the choice is made and before the conversation moves on."""
    if not message.is_candidate or message.status not in _OPEN_RETRY:
        return False
    decided = models.Preference.objects.filter(question_id=message.reply_to_id, decided_at__isnull=False).exists()
    return not decided and not conversation_moved_on(conversation, message.reply_to)


def workshop_conversations(workshop):
    return (models.Conversation.objects.filter(workshop=workshop, owner__withdrawn_at__isnull=True)
            .select_related("owner")
            .annotate(n_answers=Count("messages", filter=Q(messages__role=models.MessageRole.ASSISTANT,
                                                               messages__status=models.MessageStatus.COMPLETE)))
            .order_by("-is_baseline", "owner__pseudonym", "-updated_at"))


def baseline_conversations(workshop):
    return models.Conversation.objects.filter(workshop=workshop, is_baseline=True, owner__withdrawn_at__isnull=True)


def _answers(workshop):
    return models.Message.objects.filter(conversation__workshop=workshop, role=models.MessageRole.ASSISTANT,
                                  conversation__owner__withdrawn_at__isnull=True)


def progress(workshop) -> dict[int, dict]:
    """Dashboard columns: conversations, messages sent and tokens, per membership.

    Tokens are the prompt and completion tokens the endpoints reported. An answer that ended
    without a count (interrupted, failed, or an endpoint that does not report usage) is not
    guessed at: it is counted apart and said in words ("2 answers not counted").
    """
    rows = (models.Conversation.objects.filter(workshop=workshop)
            .values("owner_id")
            .annotate(conversations=Count("id", distinct=True),
                      sent=Count("messages", filter=Q(messages__role=models.MessageRole.USER), distinct=True)))
    tokens = (_answers(workshop).values("conversation__owner_id")
              .annotate(p=Sum("prompt_tokens"), c=Sum("completion_tokens"),
                        unknown=Count("id", filter=Q(completion_tokens__isnull=True)
                                      & ~Q(status__in=[models.MessageStatus.PENDING, models.MessageStatus.STREAMING]))))
    out: dict[int, dict] = {}
    for row in rows:
        out[row["owner_id"]] = {"conversations": row["conversations"], "messages": row["sent"], "tokens": "0"}
    for row in tokens:
        total = (row["p"] or 0) + (row["c"] or 0)
        text = str(total)
        if row["unknown"]:
            text += " (" + ngettext("%(n)d answer not counted", "%(n)d answers not counted", row["unknown"]) % {
                "n": row["unknown"]} + ")"
        out.setdefault(row["conversation__owner_id"], {"conversations": 0, "messages": 0})["tokens"] = text
    return out


def progress_status(workshop, member_ids, values) -> StageStatus:
    """Interact: a participant is done once they have sent a message to a model."""
    members = {}
    for mid in member_ids:
        v = values.get(mid, {})
        sent, conversations = v.get("messages", 0), v.get("conversations", 0)
        if not sent:
            step = _("Has not sent a message yet")
        else:
            step = (ngettext("%(n)d conversation", "%(n)d conversations", conversations) % {"n": conversations}
                    + " · " + ngettext("%(n)d message", "%(n)d messages", sent) % {"n": sent})
        members[mid] = Status(step, sent > 0)
    return StageStatus(_("sent a message to a model"), members)


def _pct(values, q):
    if not values:
        return None
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(q * (len(values) - 1))))
    return values[k]


def _usage_rows(qs, key: str):
    groups: dict = {}
    for m in qs.values(key, "status", "prompt_tokens", "completion_tokens", "ttft_ms", "total_ms", "error_kind"):
        g = groups.setdefault(m[key], {"answers": 0, "complete": 0, "interrupted": 0, "failed": 0, "superseded": 0,
                                       "prompt": 0, "completion": 0, "unknown_usage": 0, "ttft": [], "total": []})
        g["answers"] += 1
        if m["status"] in g:
            g[m["status"]] += 1
        if m["prompt_tokens"] is not None:
            g["prompt"] += m["prompt_tokens"]
        if m["completion_tokens"] is not None:
            g["completion"] += m["completion_tokens"]
        elif m["status"] not in (models.MessageStatus.PENDING, models.MessageStatus.STREAMING):
            g["unknown_usage"] += 1
        if m["ttft_ms"] is not None:
            g["ttft"].append(m["ttft_ms"])
        if m["total_ms"] is not None and m["status"] == models.MessageStatus.COMPLETE:
            g["total"].append(m["total_ms"])
    for g in groups.values():
        g["ttft_median"] = int(statistics.median(g["ttft"])) if g["ttft"] else None
        g["ttft_p95"] = _pct(g["ttft"], 0.95)
        g["total_median"] = int(statistics.median(g["total"])) if g["total"] else None
    return groups


def usage_by_participant(workshop) -> list[dict]:
    groups = _usage_rows(_answers(workshop), "conversation__owner_id")
    members = {m.id: m for m in Membership.objects.filter(workshop=workshop, id__in=groups.keys())}
    rows = [{"membership": members[k], **v} for k, v in groups.items() if k in members]
    return sorted(rows, key=lambda r: r["membership"].pseudonym)


def usage_by_model(workshop) -> list[dict]:
    groups = _usage_rows(_answers(workshop), "endpoint_key")
    rows = []
    for key, v in groups.items():
        endpoint = registry.get(key)
        rows.append({"endpoint_key": key, "name": endpoint.name if endpoint else key, **v})
    return sorted(rows, key=lambda r: r["endpoint_key"])


def configuration_errors(workshop, *, hours: int = 24) -> list[dict]:
    """Recent failures that the facilitator must fix (bad key, unknown model, ...)."""
    since = timezone.now() - timedelta(hours=hours)
    qs = (_answers(workshop).filter(error_kind__in=["auth", "bad_request"], updated_at__gte=since)
          .values("endpoint_key", "error_kind", "error").annotate(n=Count("id")).order_by("endpoint_key"))
    return list(qs)
