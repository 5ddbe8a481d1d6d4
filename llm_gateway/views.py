"""Thin views of the Interact stage: authorize, validate, call one service or selector, render."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from llm_gateway import exports, forms, registry, selectors, services
from llm_gateway.models import CompareMode, Message, MessageStatus, WorkshopModel
from workshops.exports import stream_csv, stream_download
from workshops.models import Stage
from workshops.permissions import FACILITATOR, STAFF, workshop_view

CHAT_STAGES = (Stage.INTERACT,)


def _error_text(error: ValidationError) -> str:
    return " ".join(error.messages)


def _conversation_or_404(membership, conversation_id):
    conversation = selectors.readable_conversation(membership, conversation_id)
    if conversation is None:
        raise Http404(_("No conversation of yours is found at this address."))
    return conversation


def can_write(membership, conversation) -> bool:
    return conversation.owner_id == membership.id and not membership.is_researcher


@workshop_view(stages=CHAT_STAGES)
def chat_index(request, workshop, membership):
    offered = selectors.offered_models(workshop)
    config = selectors.gateway_settings(workshop)
    if request.method == "POST":
        compare = request.POST.get("compare") == "1"
        model_id = request.POST.get("model", "")
        model = (WorkshopModel.objects.filter(workshop=workshop, pk=int(model_id)).first()
                 if model_id.isascii() and model_id.isdigit() else None)
        if (model is None and not (compare and config.compare_mode == CompareMode.MODELS)) or membership.is_researcher:
            messages.error(request, _("Choose one of the models offered in this workshop."))
        else:
            try:
                conversation = services.conversation_create(membership=membership, workshop_model=model,
                                                            compare=compare)
            except ValidationError as error:
                messages.error(request, _error_text(error))
            else:
                return redirect("llm_gateway:conversation", slug=workshop.slug, conversation_id=conversation.id)
    conversations = selectors.conversations_of(membership)
    return render(request, "llm_gateway/chat_index.html", {
        "workshop": workshop, "membership": membership, "offered": [m for m in offered if m.configured],
        "conversations": [(c, selectors.label_for(workshop, c, staff=not membership.is_participant)) for c in conversations],
        "config_errors": selectors.configuration_errors(workshop) if membership.is_facilitator else [],
        "compare_mode": config.compare_mode, "compare_count": config.compare_count,
    })


def _thread_context(request, workshop, membership, conversation, form=None, error=None):
    staff = not membership.is_participant
    chat_messages = selectors.messages_for(conversation)
    current = [m for m in chat_messages if m.status != MessageStatus.SUPERSEDED]
    return {
        "workshop": workshop, "membership": membership, "conversation": conversation,
        "items": selectors.thread_items(conversation, chat_messages), "last_id": current[-1].id if current else None,
        "label": selectors.label_for(workshop, conversation, staff=staff),
        "form": form or forms.MessageForm(),
        "can_write": can_write(membership, conversation),
        "is_staff": staff,
        "error": error,
    }


@require_safe
@workshop_view(stages=CHAT_STAGES)
def conversation(request, workshop, membership, conversation_id):
    conversation = _conversation_or_404(membership, conversation_id)
    context = _thread_context(request, workshop, membership, conversation)
    if request.htmx:  # the page reading its thread again (llm_gateway_chat.js): the title may have changed too
        return render(request, "llm_gateway/conversation.html#thread", {**context, "oob_heading": True})
    return render(request, "llm_gateway/conversation.html", context)


def send(membership, conversation, data) -> tuple[tuple[Message, ...] | None, Message | None, str | None]:
    """The chat's Send, whichever way it came (this module's `message_send` over HTTP, or the
    conversation's socket in consumers.py): validate, store, and return (the new messages, the
    answer before them, None) or (None, None, the reason in words). The caller has checked that
    `membership` may write to `conversation`."""
    form = forms.MessageForm(data)
    if not form.is_valid():
        return None, None, " ".join(e for errs in form.errors.values() for e in errs)
    thread = services.thread_for_send(conversation)
    previous = selectors.last_counting(thread)
    try:
        sent = services.message_send(conversation=conversation, membership=membership,
                                     text=form.cleaned_data["text"], thread=thread)
    except ValidationError as exc:
        return None, None, _error_text(exc)
    return sent, previous, None


def sent_context(workshop, membership, conversation, sent, previous) -> dict:
    """What `conversation.html#sent` draws after a Send: only what changed. The two new messages
    are appended; the previous last answer is re-rendered (it loses its "ask again" button). A
    long thread costs no more to send to."""
    return {**_message_context(workshop, membership, conversation, last_id=sent[-1].id),
            "new_messages": sent, "previous": previous, "first": previous is None}


@require_POST
@workshop_view(stages=CHAT_STAGES)
def message_send(request, workshop, membership, conversation_id):
    conversation = _conversation_or_404(membership, conversation_id)
    if not can_write(membership, conversation):
        raise Http404
    sent, previous, error = send(membership, conversation, request.POST)
    if request.htmx:
        if error:
            # Nothing changes in the thread; the text stays in the box, the reason shows under it.
            response = render(request, "llm_gateway/conversation.html#composer_error", {"error": error, "oob": True})
            response["HX-Reswap"] = "none"
            return response
        if conversation.is_compare:  # the last choice closes and a new set of answers opens: the whole thread
            context = _thread_context(request, workshop, membership, conversation)
            response = render(request, "llm_gateway/conversation.html#thread", {**context, "sent_id": sent[0].id,
                                                                                 "oob_heading": True})
            response["HX-Reswap"] = "outerHTML"
            return response
        return render(request, "llm_gateway/conversation.html#sent",
                      sent_context(workshop, membership, conversation, sent, previous))
    if error:
        messages.error(request, error)
    return redirect("llm_gateway:conversation", slug=workshop.slug, conversation_id=conversation.id)


def _message_context(workshop, membership, conversation, *, last_id) -> dict:
    return {
        "workshop": workshop, "membership": membership, "conversation": conversation,
        "is_staff": not membership.is_participant, "can_write": can_write(membership, conversation),
        "last_id": last_id, "label": selectors.label_for(workshop, conversation, staff=not membership.is_participant),
    }


@require_safe
@workshop_view(stages=CHAT_STAGES)
def message_fragment(request, workshop, membership, conversation_id, message_id):
    conversation = _conversation_or_404(membership, conversation_id)
    message = selectors.shown_as_ended([get_object_or_404(Message, pk=message_id, conversation=conversation)])[0]
    message.retry_ok = selectors.candidate_retry_ok(conversation, message)
    last = selectors.last_message(conversation)
    return render(request, "llm_gateway/conversation.html#message", {
        "m": message, **_message_context(workshop, membership, conversation, last_id=last.id if last else None),
    })


def _writable_conversation(membership, conversation_id):
    conversation = _conversation_or_404(membership, conversation_id)
    if not can_write(membership, conversation):
        raise Http404
    return conversation


def _thread_changed(request, workshop, membership, conversation, *, error, success=None, **extra):
    """The answer to a change of the thread: under htmx the thread drawn again (`error` shown in
    it); a plain form post goes back to the conversation, `error` (or `success`) as a message."""
    if request.htmx:
        return render(request, "llm_gateway/conversation.html#thread",
                      {**_thread_context(request, workshop, membership, conversation, error=error), **extra})
    if error:
        messages.error(request, error)
    elif success:
        messages.success(request, success)
    return redirect("llm_gateway:conversation", slug=workshop.slug, conversation_id=conversation.id)


@require_POST
@workshop_view(stages=CHAT_STAGES)
def answer_regenerate(request, workshop, membership, conversation_id, message_id):
    conversation = _writable_conversation(membership, conversation_id)
    services.stale_sweep(conversation=conversation)  # an answer whose server died can be asked again
    message = get_object_or_404(Message, pk=message_id, conversation=conversation)
    error = None
    try:
        services.answer_regenerate(message=message, membership=membership)
    except ValidationError as exc:
        error = _error_text(exc)
    return _thread_changed(request, workshop, membership, conversation, error=error)


@require_POST
@workshop_view(stages=CHAT_STAGES)
def preference_choose(request, workshop, membership, conversation_id, question_id):
    conversation = _writable_conversation(membership, conversation_id)
    error = None
    try:
        services.preference_choose(conversation=conversation, membership=membership, question_id=question_id,
                                   choice=request.POST.get("choice", ""), note=request.POST.get("note", ""))
    except ValidationError as exc:
        error = _error_text(exc)
    return _thread_changed(request, workshop, membership, conversation, error=error,
                           success=_("Your choice is saved."), choice_error=error, choice_error_for=question_id)


@require_POST
@workshop_view(roles=FACILITATOR)
def conversation_baseline(request, workshop, membership, conversation_id):
    conversation = _conversation_or_404(membership, conversation_id)
    wanted = request.POST.get("is_baseline") == "1"
    try:
        services.conversation_set_baseline(conversation=conversation, is_baseline=wanted)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, _("Marked as a baseline conversation: every participant will code it in Reflect.")
                         if wanted else _("No longer a baseline conversation."))
    target = request.POST.get("next")
    if target == "list":
        return redirect("llm_gateway:conversations", slug=workshop.slug)
    return redirect("llm_gateway:conversation", slug=workshop.slug, conversation_id=conversation.id)


@workshop_view(roles=FACILITATOR)
def models_setup(request, workshop, membership):
    config = selectors.gateway_settings(workshop)
    offered = selectors.offered_models(workshop)
    initial = {"endpoints": [m.endpoint_key for m in offered if m.configured],
               "token_budget": config.token_budget, "max_answer_tokens": config.max_answer_tokens,
               "compare_mode": config.compare_mode, "compare_count": config.compare_count,
               "compare_variants": config.compare_variants}
    form = forms.ModelsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                services.workshop_models_set(workshop=workshop, endpoint_keys=data["endpoints"])
                services.gateway_settings_update(workshop=workshop, token_budget=data["token_budget"],
                                                 max_answer_tokens=data["max_answer_tokens"])
                services.compare_settings_update(workshop=workshop, mode=data["compare_mode"],
                                                 count=data["compare_count"], variants=data["compare_variants"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("Models saved."))
            return redirect("llm_gateway:models", slug=workshop.slug)
    from llm_gateway import limits

    return render(request, "llm_gateway/models.html", {
        "workshop": workshop, "membership": membership, "form": form, "offered": offered,
        "endpoints": registry.endpoints(), "config_errors": selectors.configuration_errors(workshop),
        "tokens_used": limits.tokens_used(workshop), "config": config,
    })


@require_safe
@workshop_view(roles=STAFF)
def conversations_all(request, workshop, membership):
    rows = [(c, selectors.label_for(workshop, c, staff=True)) for c in selectors.workshop_conversations(workshop)]
    return render(request, "llm_gateway/conversations.html", {
        "workshop": workshop, "membership": membership, "rows": rows,
    })


@require_safe
@workshop_view(roles=STAFF)
def usage(request, workshop, membership):
    from llm_gateway import limits

    return render(request, "llm_gateway/usage.html", {
        "workshop": workshop, "membership": membership,
        "by_participant": selectors.usage_by_participant(workshop),
        "by_model": selectors.usage_by_model(workshop),
        "config_errors": selectors.configuration_errors(workshop),
        "tokens_used": limits.tokens_used(workshop), "config": selectors.gateway_settings(workshop),
    })


def _csv(request, filename: str, columns: list[str], rows) -> object:
    return stream_download(request, stream_csv(columns, rows, bom=False),
                           content_type="text/csv; charset=utf-8", filename=filename)


@require_safe
@workshop_view(roles=STAFF)
def export_messages(request, workshop, membership):
    """Every message, one row each (ordered by message id), pseudonymous (llm_gateway.exports)."""
    return _csv(request, f"{workshop.slug}-interact-messages.csv", exports.MESSAGE_COLUMNS,
                exports.message_rows(workshop))


@require_safe
@workshop_view(roles=STAFF)
def export_preferences(request, workshop, membership):
    """Compare mode: one row per set of candidate answers, with what the participant chose."""
    return _csv(request, f"{workshop.slug}-interact-preferences.csv", exports.PREFERENCE_COLUMNS,
                exports.preference_rows(workshop))


def conversation_url(workshop, conversation) -> str:
    return reverse("llm_gateway:conversation", args=[workshop.slug, conversation.id])
