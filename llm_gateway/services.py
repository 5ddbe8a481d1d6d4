"""Every request-side write of the Interact stage: offered models, conversations, messages,
baseline marks, choices, and the sweeper of answers whose server died. The generator's own
writes (claiming an answer, streaming progress, the finished answer) live with it in
`llm_gateway/generation.py`."""

from __future__ import annotations

import random
import string
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from llm_gateway import limits, registry, selectors
from llm_gateway.models import (
    DEFAULT_COMPARE_VARIANTS,
    CompareMode,
    Conversation,
    GatewaySettings,
    Message,
    MessageRole,
    MessageStatus,
    Preference,
    WorkshopModel,
)
from workshops.events import broadcast
from workshops.models import Workshop
from workshops.text import shorten

ACTIVE = (MessageStatus.PENDING, MessageStatus.STREAMING)
# A conversation's title is its first message, cut at a word boundary (workshops.text.shorten).
TITLE_MAX = 80


def stale_seconds() -> float:
    return settings.LLM_STALE_SECONDS


# --- Which models a workshop offers ------------------------------------------------------------


@transaction.atomic
def workshop_models_set(*, workshop, endpoint_keys: list[str]) -> list[WorkshopModel]:
    """Offer exactly these endpoints (in this order). Labels already given are kept, so a
    conversation's 'Model B' stays 'Model B'; new endpoints take the next free letter."""
    known = {e.key for e in registry.endpoints()}
    unknown = [k for k in endpoint_keys if k not in known]
    if unknown:
        raise ValidationError(_("Not in this deployment's endpoint registry: %(keys)s") % {"keys": ", ".join(unknown)})
    keys = list(dict.fromkeys(endpoint_keys))
    WorkshopModel.objects.filter(workshop=workshop).exclude(endpoint_key__in=keys).delete()
    existing = {m.endpoint_key: m for m in WorkshopModel.objects.select_for_update().filter(workshop=workshop)}
    used = {m.blind_label for m in existing.values()}
    # Labels used by earlier conversations stay reserved for their endpoint.
    for key in keys:
        if key not in existing:
            earlier = (Conversation.objects.filter(workshop=workshop, endpoint_key=key)
                       .exclude(model_label="").values_list("model_label", flat=True).first())
            label = earlier if earlier and earlier not in used else None
            if label is None:
                label = next(f"Model {c}" for c in string.ascii_uppercase
                             if f"Model {c}" not in used and not Conversation.objects.filter(
                                 workshop=workshop, model_label=f"Model {c}").exclude(endpoint_key=key).exists())
            used.add(label)
            existing[key] = WorkshopModel.objects.create(workshop=workshop, endpoint_key=key, blind_label=label)
    for position, key in enumerate(keys):
        model = existing[key]
        if model.position != position:
            model.position = position
            model.save(update_fields=["position"])
    broadcast(workshop.id, "interact", {"models": True})
    return [existing[k] for k in keys]


@transaction.atomic
def gateway_settings_update(*, workshop, token_budget: int | None, max_answer_tokens: int | None) -> GatewaySettings:
    config, _created = GatewaySettings.objects.get_or_create(workshop=workshop)
    config.token_budget = token_budget
    config.max_answer_tokens = max_answer_tokens
    config.save()
    return config


COMPARE_MAX = 4
VARIANT_MAX_CHARS = 300


def compare_variants(config: GatewaySettings) -> list[str]:
    """The instructions for deliberately different answers, one per non-empty line."""
    return [line.strip() for line in (config.compare_variants or "").splitlines() if line.strip()]


def compare_models(workshop_id: int) -> list[str]:
    """The two endpoints a model comparison uses: the first two offered and configured."""
    keys = WorkshopModel.objects.filter(workshop_id=workshop_id).order_by("position").values_list("endpoint_key", flat=True)
    return [k for k in keys if registry.get(k) is not None][:2]


@transaction.atomic
def compare_settings_update(*, workshop, mode: str, count: int, variants: str) -> GatewaySettings:
    """Turn compare mode on or off. Conversations already started keep the mode they began with."""
    if mode not in CompareMode.values:
        raise ValidationError(_("Choose one of the compare modes offered."))
    lines = [line.strip() for line in (variants or "").splitlines() if line.strip()]
    if not lines:  # an emptied box brings back the suggested instructions
        lines = DEFAULT_COMPARE_VARIANTS.splitlines()
    too_long = [i + 1 for i, line in enumerate(lines) if len(line) > VARIANT_MAX_CHARS]
    if too_long:
        raise ValidationError(_("Each instruction can be at most %(n)s characters; shorten line %(line)s.")
                              % {"n": VARIANT_MAX_CHARS, "line": too_long[0]})
    if not 2 <= count <= COMPARE_MAX:
        raise ValidationError(_("Offer between 2 and %(n)s answers per message.") % {"n": COMPARE_MAX})
    if mode == CompareMode.MODELS and len(compare_models(workshop.id)) < 2:
        raise ValidationError(_("Comparing models needs at least two models offered in this workshop."))
    if mode == CompareMode.DIVERSE and len(lines) < count:
        raise ValidationError(_("Write at least %(n)s instructions (one per line) for %(n)s different answers.")
                              % {"n": count})
    config, _created = GatewaySettings.objects.select_for_update().get_or_create(workshop=workshop)
    config.compare_mode, config.compare_count, config.compare_variants = mode, count, "\n".join(lines)
    config.save(update_fields=["compare_mode", "compare_count", "compare_variants"])
    broadcast(workshop.id, "interact", {"compare": mode})
    return config


# --- Conversations --------------------------------------------------------------------------------


@transaction.atomic
def conversation_create(*, membership, workshop_model: WorkshopModel | None, compare: bool = False) -> Conversation:
    """A new conversation. With `compare`, it takes the workshop's compare mode: every message
    then gets several candidate answers (two models, or one model asked for different answers)."""
    mode = CompareMode.OFF
    if compare:
        config = GatewaySettings.objects.filter(workshop_id=membership.workshop_id).first()
        mode = config.compare_mode if config else CompareMode.OFF
        if mode == CompareMode.OFF:
            raise ValidationError(_("Comparing answers is not turned on in this workshop."))
        if mode == CompareMode.MODELS:
            keys = compare_models(membership.workshop_id)
            if len(keys) < 2:
                raise ValidationError(_("Comparing models needs two models; please tell the facilitator."))
            workshop_model = WorkshopModel.objects.get(workshop_id=membership.workshop_id, endpoint_key=keys[0])
    if workshop_model is None or workshop_model.workshop_id != membership.workshop_id:
        raise ValidationError(_("This model is not offered in this workshop."))
    if registry.get(workshop_model.endpoint_key) is None:
        raise ValidationError(_("This model is no longer configured. Ask the facilitator."))
    conversation = Conversation.objects.create(
        workshop_id=membership.workshop_id,
        owner=membership,
        endpoint_key=workshop_model.endpoint_key,
        model_label="" if mode == CompareMode.MODELS else workshop_model.blind_label,
        is_sandbox=membership.is_facilitator,
        compare_mode=mode,
    )
    broadcast(membership.workshop_id, "interact", {"conversation": conversation.id})
    return conversation


@transaction.atomic
def conversation_set_baseline(*, conversation: Conversation, is_baseline: bool) -> Conversation:
    if is_baseline and not conversation.messages.filter(role=MessageRole.ASSISTANT, status=MessageStatus.COMPLETE).exists():
        raise ValidationError(_("A baseline conversation needs at least one complete answer."))
    Conversation.objects.filter(pk=conversation.pk).update(is_baseline=is_baseline, updated_at=timezone.now())
    conversation.is_baseline = is_baseline
    broadcast(conversation.workshop_id, "baseline", {"conversation": conversation.id, "is_baseline": is_baseline})
    return conversation


def system_prompt_for(conversation: Conversation) -> str:
    """The workshop's system prompt in the owner's language (when the facilitator wrote one),
    plus, when the facilitator enabled it, a line telling the model which language they write in."""
    from workshops import i18n

    workshop, owner = conversation.workshop, conversation.owner
    prompt = i18n.workshop_text(workshop, "system_prompt", i18n.language_for(owner, workshop)).strip()
    line = i18n.model_language_line(workshop, owner)
    return "\n\n".join(p for p in (prompt, line) if p)


def history_for_model(conversation: Conversation, *, upto_position: int,
                      thread: list[Message] | None = None) -> list[dict]:
    """System prompt plus the conversation's turns before `upto_position` that count:
    participant messages and complete (or interrupted, with text) answers; superseded and
    failed answers are left out.

    In compare mode one candidate per message continues the conversation: the one the
    participant chose, else (none chosen, or not yet) the one shown first, so that roles
    keep alternating as every provider requires."""
    messages = []
    system = system_prompt_for(conversation)
    if system:
        messages.append({"role": "system", "content": system})
    left_out = [MessageStatus.SUPERSEDED, MessageStatus.FAILED, *ACTIVE]
    if thread is None:
        rows = list(conversation.messages.filter(position__lt=upto_position).exclude(status__in=left_out)
                    .order_by("position").values_list("id", "role", "content", "reply_to_id", "is_candidate", "slot"))
    else:  # the same rows from messages already read (`thread`: ordered by position)
        rows = [(m.id, m.role, m.content, m.reply_to_id, m.is_candidate, m.slot) for m in thread
                if m.position < upto_position and m.status not in left_out]
    kept: dict[int, int] = {}  # question id -> the candidate that continues
    if any(row[4] for row in rows):
        chosen = dict(Preference.objects.filter(conversation=conversation, chosen__isnull=False)
                      .values_list("question_id", "chosen_id"))
        for message_id, _role, content, question_id, is_candidate, slot in sorted(rows, key=lambda r: r[5]):
            if is_candidate and content and question_id not in kept:
                kept[question_id] = message_id
        for question_id, chosen_id in chosen.items():
            if any(r[0] == chosen_id and r[2] for r in rows):
                kept[question_id] = chosen_id
    for message_id, role, content, question_id, is_candidate, _slot in rows:
        if content and (not is_candidate or kept.get(question_id) == message_id):
            messages.append({"role": role, "content": content})
    return messages


def with_variant(history: list[dict], variant: str) -> list[dict]:
    """The history with a candidate's instruction added to the system prompt."""
    if not variant:
        return history
    if history and history[0]["role"] == "system":
        return [{"role": "system", "content": f"{history[0]['content']}\n\n{variant}"}, *history[1:]]
    return [{"role": "system", "content": variant}, *history]


def _gateway_settings(conversation: Conversation) -> GatewaySettings | None:
    """The workshop's chat settings; no query when the conversation was read with them
    (`selectors.readable_conversation`)."""
    if Conversation.workshop.is_cached(conversation) and Workshop.gateway_settings.is_cached(conversation.workshop):
        try:
            return conversation.workshop.gateway_settings
        except GatewaySettings.DoesNotExist:
            return None
    return GatewaySettings.objects.filter(workshop_id=conversation.workshop_id).first()


def _next_position(conversation: Conversation) -> int:
    top = conversation.messages.aggregate(top=Max("position"))["top"]
    return 0 if top is None else top + 1


def _check_can_generate(conversation: Conversation, membership, config: GatewaySettings | None) -> None:
    if membership is not None and membership.is_participant:
        wait = limits.rate_check(membership.id)
        if wait is not None:
            raise ValidationError(
                _("You are sending messages faster than this workshop allows. Please wait %(s)s seconds and try again.")
                % {"s": wait}, code="rate_limited")
    if config is not None and config.token_budget is not None and limits.tokens_used(conversation.workshop) >= config.token_budget:
        raise ValidationError(
            _("This workshop has used all the model time it was given. Please tell the facilitator."),
            code="budget")
    if registry.get(conversation.endpoint_key) is None:
        raise ValidationError(_("This conversation's model is no longer configured. Please tell the facilitator."),
                              code="endpoint")


def _busy() -> ValidationError:
    return ValidationError(_("Wait for the answer to finish before sending another message."), code="busy")


def thread_for_send(conversation: Conversation) -> list[Message]:
    """The conversation's messages before a Send (one query), after ending any answer whose
    generator died: such an answer must not block the new one (then read again)."""
    thread = selectors.thread(conversation)
    if selectors.has_stale(thread):
        stale_sweep(conversation=conversation)
        thread = selectors.thread(conversation)
    return thread


@transaction.atomic
def message_send(*, conversation: Conversation, membership, text: str,
                 thread: list[Message] | None = None) -> tuple[Message, Message]:
    """Store the participant's message and a pending answer; generation starts after commit.

    No row lock: the database allows one answer in progress per conversation and one
    message per position, so of two racing sends one fails and rolls back whole.

    `thread`: the conversation's messages as the send view read them (`selectors.thread`, one
    query that also gives the view the previous message and the stale check): the next
    position, the busy check and the model's history come from it instead of three more
    queries. A message stored in between makes the insert fail on the position, as above.
    """
    text = (text or "").strip()
    if not text:
        raise ValidationError(_("Write a message first."), code="empty")
    limit = settings.CHAT_MESSAGE_MAX_CHARS
    if len(text) > limit:
        raise ValidationError(
            _("Your message is %(n)s characters long; the limit is %(limit)s. Please shorten it.")
            % {"n": len(text), "limit": limit}, code="too_long")
    config = _gateway_settings(conversation)
    _check_can_generate(conversation, membership, config)
    if thread is None:
        thread = selectors.thread(conversation)
    if conversation.is_compare:
        if any(m.status in ACTIVE for m in thread):
            raise _busy()
        if Preference.objects.filter(conversation=conversation, decided_at__isnull=True).exists():
            raise ValidationError(_("Choose the answer you prefer (or “None of these”) before you go on."),
                                  code="choose_first")
    position = thread[-1].position + 1 if thread else 0
    try:
        question = Message.objects.create(conversation=conversation, role=MessageRole.USER, content=text,
                                          position=position, status=MessageStatus.COMPLETE,
                                          completed_at=timezone.now())
    except IntegrityError:
        raise _busy() from None
    history = history_for_model(conversation, upto_position=position + 1, thread=[*thread, question])
    if conversation.is_compare:
        answer = _candidates(conversation, question, position + 1, config or GatewaySettings(), history=history)[0]
    else:
        answer = _pending_answer(conversation, question, position + 1, config, history=history)
    if not conversation.title:
        conversation.title = shorten(text, TITLE_MAX)
    conversation.save(update_fields=["title", "updated_at"])
    return question, answer


def _pending_answer(conversation: Conversation, question: Message, position: int,
                    config: GatewaySettings | None, *, endpoint_key: str | None = None, slot: int = 0,
                    variant: str = "", is_candidate: bool = False, history: list[dict] | None = None) -> Message:
    endpoint_key = endpoint_key or conversation.endpoint_key
    endpoint = registry.get(endpoint_key)
    if endpoint is None:
        raise ValidationError(_("This conversation's model is no longer configured. Please tell the facilitator."),
                              code="endpoint")
    try:
        answer = Message.objects.create(
            conversation=conversation, role=MessageRole.ASSISTANT, status=MessageStatus.PENDING,
            position=position, reply_to=question, endpoint_key=endpoint_key, model_id=endpoint.model,
            is_candidate=is_candidate, slot=slot, variant=variant,
        )
    except IntegrityError:
        # Another answer is in progress (the constraint): the caller's transaction rolls back.
        raise _busy() from None
    if history is None:
        history = history_for_model(conversation, upto_position=question.position + 1)
    messages = with_variant(history, variant)
    max_tokens = config.max_answer_tokens if config else None

    def start():
        from llm_gateway import runner

        runner.start(answer.id, messages=messages, max_tokens=max_tokens, endpoint_key=endpoint_key,
                     conversation_id=conversation.id)

    transaction.on_commit(start)
    broadcast(conversation.workshop_id, "interact", {"conversation": conversation.id})
    return answer


def _candidates(conversation: Conversation, question: Message, position: int, config: GatewaySettings,
                *, history: list[dict] | None = None) -> list[Message]:
    """The candidate answers of a compare turn, generated side by side, in a random order
    (the column an answer lands in must say nothing about where it came from)."""
    if conversation.compare_mode == CompareMode.MODELS:
        plan = [(key, "") for key in compare_models(conversation.workshop_id)]
        if len(plan) < 2:
            raise ValidationError(_("Comparing models needs two models; please tell the facilitator."), code="endpoint")
    else:
        variants = compare_variants(config)[:max(2, min(config.compare_count, COMPARE_MAX))]
        if len(variants) < 2:
            raise ValidationError(_("Comparing answers is not set up; please tell the facilitator."), code="endpoint")
        plan = [(conversation.endpoint_key, variant) for variant in variants]
    random.shuffle(plan)
    if history is None:
        history = history_for_model(conversation, upto_position=position)
    answers = [
        _pending_answer(conversation, question, position + slot, config, endpoint_key=key, slot=slot,
                        variant=variant, is_candidate=True, history=history)
        for slot, (key, variant) in enumerate(plan)
    ]
    Preference.objects.create(conversation=conversation, question=question, membership_id=conversation.owner_id,
                              mode=conversation.compare_mode, candidates=[a.id for a in answers])
    return answers


@transaction.atomic
def preference_choose(*, conversation: Conversation, membership, question_id: int, choice: str,
                      note: str = "") -> Preference:
    """Record the participant's pick among the candidates (a message id, or "none"). It can be
    changed until the participant sends their next message."""
    if conversation.owner_id != membership.id or membership.is_researcher:
        raise ValidationError(_("Only the person who wrote this conversation can choose."), code="forbidden")
    preference = (Preference.objects.select_for_update().select_related("question")
                  .filter(conversation=conversation, question_id=question_id).first())
    if preference is None:
        raise ValidationError(_("There is nothing to choose for this message."), code="missing")
    if selectors.conversation_moved_on(conversation, preference.question):
        raise ValidationError(_("This choice is closed: the conversation has moved on."), code="closed")
    candidates = {m.id: m for m in Message.objects.filter(pk__in=preference.candidates)}
    if any(m.status in ACTIVE for m in candidates.values()):
        raise ValidationError(_("Wait until every answer has finished, then choose."), code="busy")
    chosen = None
    if choice != "none":
        try:
            chosen = candidates.get(int(choice))
        except (TypeError, ValueError):
            chosen = None
        if chosen is None or chosen.status not in (MessageStatus.COMPLETE, MessageStatus.INTERRUPTED):
            raise ValidationError(_("Choose one of the answers shown, or “None of these”."), code="invalid")
    note = (note or "").strip()
    if len(note) > 500:
        raise ValidationError(_("The reason can be at most 500 characters."), code="too_long")
    preference.chosen, preference.note, preference.decided_at = chosen, note, timezone.now()
    preference.save(update_fields=["chosen", "note", "decided_at"])
    broadcast(conversation.workshop_id, "interact", {"preference": preference.id})
    return preference


@transaction.atomic
def answer_regenerate(*, message: Message, membership) -> Message:
    """Ask again for the last answer (a retry after a failure, or a new take on a complete
    one). The old answer is kept, marked superseded, and linked to the new one."""
    conversation = Conversation.objects.select_for_update().select_related("workshop").get(pk=message.conversation_id)
    message = Message.objects.select_for_update().get(pk=message.pk)
    if message.role != MessageRole.ASSISTANT or message.status in (*ACTIVE, MessageStatus.SUPERSEDED):
        raise ValidationError(_("Only a finished answer can be asked again."), code="state")
    if message.is_candidate:
        _check_candidate_retry(conversation, message)
    else:
        last = conversation.messages.exclude(status=MessageStatus.SUPERSEDED).order_by("-position").first()
        if last is None or last.pk != message.pk:
            raise ValidationError(_("Only the latest answer can be asked again."), code="not_last")
    config = GatewaySettings.objects.filter(workshop_id=conversation.workshop_id).first()
    _check_can_generate(conversation, membership, config)
    message.status = MessageStatus.SUPERSEDED
    message.updated_at = timezone.now()
    message.save(update_fields=["status", "updated_at"])
    answer = _pending_answer(conversation, message.reply_to, _next_position(conversation), config,
                             endpoint_key=message.endpoint_key or None, slot=message.slot, variant=message.variant,
                             is_candidate=message.is_candidate)
    if message.is_candidate:
        preference = Preference.objects.select_for_update().get(question_id=message.reply_to_id)
        preference.candidates = [answer.id if i == message.pk else i for i in preference.candidates]
        preference.save(update_fields=["candidates"])
    Message.objects.filter(pk=message.pk).update(superseded_by=answer)
    conversation.save(update_fields=["updated_at"])
    return answer


def _check_candidate_retry(conversation: Conversation, message: Message) -> None:
    """A candidate can be tried again only if it failed or was cut off, before the choice
    (a new take on a complete candidate would bias the comparison)."""
    if message.status == MessageStatus.COMPLETE:
        raise ValidationError(_("A complete answer in a comparison cannot be asked again."), code="state")
    question = message.reply_to
    if (selectors.conversation_moved_on(conversation, question)
            or Preference.objects.filter(question=question, decided_at__isnull=False).exists()):
        raise ValidationError(_("This choice is closed: the conversation has moved on."), code="closed")


def stale_sweep(*, conversation: Conversation | None = None, older_than: float | None = None) -> int:
    """End answers left pending/streaming by a process that died: interrupted if they have
    text, failed otherwise. Runs on the beat schedule (llm_gateway.tasks.sweep_answers) and
    before a participant writes to the conversation; never on a page view. Returns how many
    were ended; open pages are told (the `interact` event).

    The look-up runs outside a transaction (every Send makes it, and almost always finds
    nothing: a transaction would add two round trips to the Send path); the updates repeat
    its conditions, so an answer that came back to life in between is left alone."""
    cutoff = timezone.now() - timedelta(seconds=stale_seconds() if older_than is None else older_than)
    qs = Message.objects.filter(status__in=ACTIVE, updated_at__lt=cutoff)
    if conversation is not None:
        qs = qs.filter(conversation=conversation)
    found = list(qs.values_list("id", "conversation__workshop_id"))
    if not found:
        return 0
    with transaction.atomic():
        qs = Message.objects.filter(pk__in=[pk for pk, _w in found], status__in=ACTIVE, updated_at__lt=cutoff)
        now = timezone.now()
        error = _("The answer stopped: the server handling it went away.")
        n = qs.filter(~Q(content="")).update(status=MessageStatus.INTERRUPTED, error=error, error_kind="lost",
                                             completed_at=now, updated_at=now)
        n += qs.filter(content="").update(status=MessageStatus.FAILED, error=error, error_kind="lost",
                                          completed_at=now, updated_at=now)
        for message_id, workshop_id in found:
            broadcast(workshop_id, "interact", {"message": message_id, "status": "ended"})
    return n


@transaction.atomic
def conversation_import(*, membership, endpoint_key: str, model_label: str, title: str,
                        turns: list[tuple[str, str]], is_baseline: bool = False, model_id: str = "") -> Conversation:
    """Store a conversation whose answers were written beforehand (e.g. the demo's baseline
    set, or transcripts from an earlier session). Nothing is generated."""
    conversation = Conversation.objects.create(
        workshop_id=membership.workshop_id, owner=membership, endpoint_key=endpoint_key, model_label=model_label,
        title=shorten(title, 200), is_baseline=is_baseline, is_sandbox=membership.is_facilitator,
    )
    now = timezone.now()
    for i, (question, answer) in enumerate(turns):
        q = Message.objects.create(conversation=conversation, role=MessageRole.USER, content=question,
                                   position=2 * i, status=MessageStatus.COMPLETE, completed_at=now)
        Message.objects.create(conversation=conversation, role=MessageRole.ASSISTANT, content=answer,
                               position=2 * i + 1, status=MessageStatus.COMPLETE, reply_to=q,
                               endpoint_key=endpoint_key, model_id=model_id, completed_at=now)
    broadcast(membership.workshop_id, "baseline" if is_baseline else "interact", {"conversation": conversation.id})
    return conversation
