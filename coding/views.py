"""Thin views of the Reflect stage: authorize, validate, call one service or selector, render.

Participants open these pages from the Reflect stage on (read-only from Discuss on);
facilitators and researchers see everything read-only in any stage. Writes made from the
page's script send `X-Coding: 1` and get back the re-rendered fragment (or a 4xx plain-text
message the page shows next to the field, keeping what was typed); plain form posts get a
redirect back with a message, so the keyboard-only forms also work without script.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from coding import exports, forms, selectors, services
from coding.models import Annotation, Attribute, Code
from workshops.exports import csv_download_view, download_view
from workshops.models import JobStatus, Membership, Stage
from workshops.permissions import FACILITATOR, STAFF, workshop_view

VIEW_STAGES = (Stage.REFLECT, Stage.DISCUSS, Stage.EVALUATE, Stage.CLOSED)


def _is_fetch(request) -> bool:
    """A write from the page's script or from htmx: answer with a fragment or a plain-text refusal."""
    return request.headers.get("X-Coding") == "1" or bool(getattr(request, "htmx", False))


def _message_of(error: ValidationError) -> str:
    return " ".join(error.messages)


def writes(view):
    """Turn service refusals into a 400/403 plain-text answer (script) or a message (form post)."""

    @wraps(view)
    def wrapper(request, workshop, membership, *args, **kwargs):
        membership.workshop = workshop  # already loaded by workshop_view: no second query
        try:
            return view(request, workshop, membership, *args, **kwargs)
        except (ValidationError, PermissionDenied) as error:
            status = 400 if isinstance(error, ValidationError) else 403
            text = _message_of(error) if isinstance(error, ValidationError) else (
                str(error) or _("You cannot change this.")
            )
            if _is_fetch(request):
                return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
            messages.error(request, text)
            back = request.POST.get("next", "")
            # Only a path of this site: redirect() would take any other text for a view name
            # (a 500), and control characters cannot go in a Location header.
            if not (back.startswith("/") and back.isprintable() and len(back) <= 2000) or not \
                    url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                                    require_https=request.is_secure()):
                back = reverse("coding:index", args=[workshop.slug])
            return redirect(back)

    return wrapper


def _coder_for(request, workshop, membership) -> Membership | None:
    """Whose coding a page shows: one's own (participants) or a chosen participant's (staff)."""
    if membership.is_participant:
        return membership
    pseudonym = request.GET.get("coder", "")
    participants = selectors.active_participants(workshop)
    if pseudonym:
        coder = participants.filter(pseudonym=pseudonym).first()
        if coder is None:
            raise Http404(_("No active participant with that pseudonym."))
        return coder
    return None


def _base_context(workshop, membership, **extra):
    return {
        "workshop": workshop,
        "membership": membership,
        "editable": selectors.can_edit(workshop, membership),
        "read_only_reason": _read_only_reason(workshop, membership),
        **extra,
    }


def _read_only_reason(workshop, membership) -> str:
    if selectors.can_edit(workshop, membership):
        return ""
    if not membership.is_participant:
        return _("You are viewing participants' coding read-only.")
    return _("The Reflect stage has ended: your coding is shown read-only.")


# --- Index, transcript ----------------------------------------------------------------------


@require_GET
@workshop_view(stages=VIEW_STAGES)
def index(request, workshop, membership):
    coder = _coder_for(request, workshop, membership)
    context = _base_context(
        workshop, membership,
        coder=coder,
        conversations=selectors.conversation_list(workshop, membership, coder),
        participants=selectors.active_participants(workshop) if not membership.is_participant else None,
        progress=selectors.member_progress(membership) if membership.is_participant else None,
        summary=selectors.shown_summary(workshop),
    )
    return render(request, "coding/index.html", context)


def _conversation(workshop, membership, conversation_id):
    conversation = selectors.visible_conversations(workshop, membership).filter(pk=conversation_id).first()
    if conversation is None:
        raise Http404(_("No conversation you can see is found at this address."))
    return conversation


@require_GET
@workshop_view(stages=VIEW_STAGES)
def transcript(request, workshop, membership, conversation_id):
    conversation = _conversation(workshop, membership, conversation_id)
    coder = _coder_for(request, workshop, membership)
    if coder is None and conversation.owner.is_participant:
        coder = conversation.owner
    conversations = selectors.conversation_list(workshop, membership, coder) if membership.is_participant else []
    context = _base_context(
        workshop, membership,
        conversation=conversation,
        coder=coder,
        turns=selectors.transcript(conversation, coder, editable=selectors.can_edit(workshop, membership)),
        suggestions=selectors.code_suggestions(membership) if membership.is_participant else {"own": [], "group": []},
        participants=selectors.active_participants(workshop) if not membership.is_participant else None,
        conversations=conversations,
        next_conversation=_neighbour(conversations, conversation, 1),
        previous_conversation=_neighbour(conversations, conversation, -1),
    )
    return render(request, "coding/transcript.html", context)


def _neighbour(rows, conversation, step):
    ids = [r["conversation"].id for r in rows]
    if conversation.id not in ids:
        return None
    i = ids.index(conversation.id) + step
    return rows[i]["conversation"] if 0 <= i < len(ids) else None


def _turn_response(request, workshop, membership, message, *, status=200, annotation_id=None, annotations=None):
    turn = selectors.render_turn(message, membership, annotations=annotations)
    response = render(request, "coding/transcript.html#turn", _base_context(
        workshop, membership, turn=turn, coder=membership,
    ), status=status)
    if annotation_id:
        response["X-Annotation-Id"] = str(annotation_id)
    return response


def _cleaned(form, refusal=None) -> dict:
    """The posted form's cleaned data; an invalid form is refused (`writes` answers it) with
    `refusal`, or with every error of the form."""
    if not form.is_valid():
        raise ValidationError(refusal or [e for errs in form.errors.values() for e in errs])
    return form.cleaned_data


def _own_annotation(workshop, membership, pk) -> Annotation:
    annotation = get_object_or_404(
        Annotation.objects.select_related("message"), pk=pk, membership__workshop=workshop
    )
    return annotation


@require_POST
@workshop_view(stages=VIEW_STAGES)
@writes
def annotation_create(request, workshop, membership):
    data = _cleaned(forms.AnnotationCreateForm(request.POST))
    arguments = {
        "membership": membership, "message_id": data["message"], "start": data["start"],
        "end": data["end"], "codes": request.POST.getlist("code"), "memo": data["memo"],
    }
    try:
        annotation = services.annotation_create(**arguments)
    except IntegrityError:  # the same span saved at the same moment from another tab: now it exists
        annotation = services.annotation_create(**arguments)
    # The service returns the turn as it wrote it: the fragment needs no second read.
    return _turn_response(request, workshop, membership, annotation.message, status=201, annotation_id=annotation.id,
                          annotations=annotation.turn_annotations)


def _change_view(lookup, respond):
    """A decorator for a POST that changes one thing, `lookup(workshop, membership, pk)`: the
    decorated `change(request, membership, thing, ...)` makes the change (a refusal is answered
    by `writes`), then `respond(request, workshop, membership, thing)` answers."""

    def decorator(change):
        @require_POST
        @workshop_view(stages=VIEW_STAGES)
        @writes
        @wraps(change)
        def view(request, workshop, membership, pk, **kwargs):
            thing = lookup(workshop, membership, pk)
            change(request, membership, thing, **kwargs)
            return respond(request, workshop, membership, thing)

        return view

    return decorator


# A change of an annotation answers with its turn drawn again, the annotation named in X-Annotation-Id.
_annotation_change = _change_view(
    _own_annotation,
    lambda request, workshop, membership, annotation: _turn_response(
        request, workshop, membership, annotation.message, annotation_id=annotation.id),
)


def _code_views(change, kind, form, refusal, given_as):
    """The two views that put a code on and take one off a `kind` (an annotation or an attribute),
    through `change` (its `_change_view`) and services.<kind>_add_code / _remove_code. The code
    to add is `form`'s cleaned "code", handed to the service as `given_as` (a code's text or id);
    `refusal` (lazy) answers an invalid form."""
    add, remove = getattr(services, f"{kind}_add_code"), getattr(services, f"{kind}_remove_code")

    def add_code(request, membership, thing):
        data = _cleaned(form(request.POST), str(refusal))
        add(membership=membership, **{kind: thing, given_as: data["code"]})

    def remove_code(request, membership, thing, code_id):
        remove(membership=membership, code_id=code_id, **{kind: thing})

    for view, name in ((add_code, f"{kind}_add_code"), (remove_code, f"{kind}_remove_code")):
        view.__name__ = view.__qualname__ = name
    return change(add_code), change(remove_code)


annotation_add_code, annotation_remove_code = _code_views(
    _annotation_change, "annotation", forms.CodeTextForm, gettext_lazy("A code can be at most 120 characters."), "text")


@_annotation_change
def annotation_memo(request, membership, annotation):
    data = _cleaned(forms.MemoForm(request.POST), _("A memo can be at most 5000 characters."))
    services.annotation_set_memo(membership=membership, annotation=annotation, memo=data["memo"])


@require_POST
@workshop_view(stages=VIEW_STAGES)
@writes
def annotation_delete(request, workshop, membership, pk):
    annotation = _own_annotation(workshop, membership, pk)
    message = annotation.message
    services.annotation_delete(membership=membership, annotation=annotation)
    return _turn_response(request, workshop, membership, message)


# --- Focused coding ---------------------------------------------------------------------------


def _board_context(request, workshop, membership, coder):
    return _base_context(workshop, membership, coder=coder, board=selectors.focus_board(coder) if coder else None,
                         participants=selectors.active_participants(workshop) if not membership.is_participant else None)


def _board_response(request, workshop, membership):
    if _is_fetch(request):
        return render(request, "coding/focus.html#board", _board_context(request, workshop, membership, membership))
    return redirect("coding:focus", slug=workshop.slug)


@require_GET
@workshop_view(stages=VIEW_STAGES)
def focus(request, workshop, membership):
    coder = _coder_for(request, workshop, membership)
    return render(request, "coding/focus.html", _board_context(request, workshop, membership, coder))


def _own_attribute(workshop, pk) -> Attribute:
    return get_object_or_404(Attribute, pk=pk, workshop=workshop)


# A change of an attribute answers with the focused-coding board drawn again.
_attribute_change = _change_view(
    lambda workshop, membership, pk: _own_attribute(workshop, pk),
    lambda request, workshop, membership, attribute: _board_response(request, workshop, membership),
)


@require_POST
@workshop_view(stages=VIEW_STAGES)
@writes
def attribute_create(request, workshop, membership):
    data = _cleaned(forms.AttributeForm(request.POST))
    code_ids = [int(i) for i in request.POST.getlist("code") if i.isascii() and i.isdigit()]  # not "²" or "١"
    services.attribute_create(membership=membership, name=data["name"], definition=data["definition"],
                              code_ids=code_ids)
    return _board_response(request, workshop, membership)


@_attribute_change
def attribute_update(request, membership, attribute):
    data = _cleaned(forms.AttributeForm(request.POST))
    services.attribute_update(
        membership=membership, attribute=attribute,
        name=data["name"] if "name" in request.POST else None,
        definition=data["definition"] if "definition" in request.POST else None,
    )


@_attribute_change
def attribute_delete(request, membership, attribute):
    services.attribute_delete(membership=membership, attribute=attribute)


attribute_add_code, attribute_remove_code = _code_views(
    _attribute_change, "attribute", forms.CodeChoiceForm, gettext_lazy("Choose a code."), "code_id")


@require_GET
@workshop_view(stages=VIEW_STAGES)
def attribute_excerpts(request, workshop, membership, pk):
    attribute = get_object_or_404(Attribute.objects.select_related("membership"), pk=pk, workshop=workshop)
    if membership.is_participant and attribute.membership_id != membership.id:
        raise Http404
    if attribute.membership.is_withdrawn:
        raise Http404
    return render(request, "coding/focus.html#excerpts", {"attribute": attribute,
                                                           "excerpts": selectors.attribute_excerpts(attribute),
                                                           "workshop": workshop})


@require_POST
@workshop_view(stages=VIEW_STAGES)
@writes
def code_update(request, workshop, membership, pk):
    code = get_object_or_404(Code, pk=pk, workshop=workshop)
    data = _cleaned(forms.CodeEditForm(request.POST))
    renaming = "text" in request.POST
    code = services.code_update(
        membership=membership, code=code,
        text=data["text"] if renaming else None,
        memo=data["memo"] if "memo" in request.POST else None,
    )
    if renaming and not _is_fetch(request):
        messages.success(request, _("The code is now called “%(code)s”.") % {"code": code.text})
    return _board_response(request, workshop, membership)


@require_POST
@workshop_view(stages=VIEW_STAGES)
@writes
def code_delete(request, workshop, membership, pk):
    services.code_delete(membership=membership, code=get_object_or_404(Code, pk=pk, workshop=workshop))
    return _board_response(request, workshop, membership)


# --- Baseline comparison, group summary -------------------------------------------------------------


@require_GET
@workshop_view(roles=STAFF)
def compare(request, workshop, membership):
    template = "coding/compare.html#live" if request.htmx else "coding/compare.html"
    return render(request, template, _base_context(
        workshop, membership, baseline=selectors.baseline_comparison(workshop),
        participant_count=selectors.active_participants(workshop).count(),
    ))


def _summary_context(workshop, membership):
    job = selectors.latest_summary_job(workshop)
    done = selectors.shown_summary(workshop)
    result = selectors.summary_for(done.result, workshop, membership) if done else None
    stale = bool(done) and done.fingerprint != selectors.summary_fingerprint(workshop)
    return _base_context(workshop, membership, job=job, done=done, result=result, stale=stale,
                         JobStatus=JobStatus)


@require_GET
@workshop_view(stages=VIEW_STAGES)
def summary(request, workshop, membership):
    context = _summary_context(workshop, membership)
    if request.htmx:
        return render(request, "coding/summary.html#status", context)
    return render(request, "coding/summary.html", context)


@require_POST
@workshop_view(roles=FACILITATOR)
@writes
def summary_generate(request, workshop, membership):
    job = services.summary_request(membership=membership, force=request.POST.get("force") == "1")
    if job.status == JobStatus.DONE:
        messages.info(request, _("The summary is up to date with the current data."))
    return redirect("coding:summary", slug=workshop.slug)


# --- Exports ------------------------------------------------------------------------------------


export_annotations = csv_download_view(exports.ANNOTATION_COLUMNS, exports.annotation_rows,
                                       filename="{slug}-annotations.csv", method=require_GET)
export_codebook = csv_download_view(exports.CODEBOOK_COLUMNS, exports.codebook_rows, filename="{slug}-codebook.csv",
                                    method=require_GET)
export_focused = csv_download_view(exports.FOCUSED_COLUMNS, exports.focused_rows, filename="{slug}-focused-codes.csv",
                                   method=require_GET)
export_qdc = download_view(exports.qdc_document, content_type="application/xml; charset=utf-8",
                           filename="{slug}-codebook.qdc", method=require_GET)
export_qdpx = download_view(exports.qdpx_archive, content_type="application/zip", filename="{slug}-project.qdpx",
                            method=require_GET)
