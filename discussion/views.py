"""Thin views of the Discuss stage: authorize, validate, call one service or selector, render."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST, require_safe

from discussion import commands, exports, forms, selectors, services
from discussion import render as board_html
from discussion.models import Segment
from workshops.exports import CSV, download_view
from workshops.models import Stage
from workshops.permissions import FACILITATOR, STAFF, workshop_view

LIVE = (Stage.DISCUSS,)
RESULTS = (Stage.DISCUSS, Stage.EVALUATE, Stage.CLOSED)


def _errors(request, error: ValidationError) -> None:
    for text in error.messages:
        messages.error(request, text)


def _submit(request, form, save, success: str) -> None:
    """A participant's form post: `save()` when the form is valid, then `success` as a message;
    the form's or the service's refusals as error messages."""
    if not form.is_valid():
        for errs in form.errors.values():
            for e in errs:
                messages.error(request, e)
        return
    try:
        save()
    except ValidationError as error:
        _errors(request, error)
    else:
        messages.success(request, success)


def _back(workshop, anchor: str = ""):
    response = redirect("discussion:session", slug=workshop.slug)
    if anchor:
        response["Location"] += f"#{anchor}"
    return response


# Each segment's panel of the session page, and the parts of it that are drawn again on a change.
SEGMENT_TEMPLATES = {
    Segment.TOP_THREE: "discussion/top_three.html",
    Segment.MAP: "discussion/map_panel.html",
    Segment.PRESENTATIONS: "discussion/spotlight.html",
    Segment.BOARD: "discussion/board.html",
    Segment.RATINGS: "discussion/ratings.html",
}
PARTIALS = {
    "header": "discussion/session.html#header",
    "picks": "discussion/top_three.html#picks",
    "spotlight": "discussion/spotlight.html#spotlight",
}


@never_cache
@require_safe
@workshop_view(stages=LIVE)
def session(request, workshop, membership):
    sess = selectors.session_for(workshop)
    axes = list(selectors.active_axes(workshop))
    context = {
        "workshop": workshop,
        "membership": membership,
        "session": sess,
        "segments": [s for s in Segment if s != Segment.NOT_STARTED],
        "session_json": selectors.session_data(sess),
        "axes": axes,
    }
    if sess.segment == Segment.TOP_THREE or membership.is_facilitator:
        context["pick_form"] = forms.PicksForm(membership=membership)
    if sess.segment in (Segment.TOP_THREE, Segment.PRESENTATIONS, Segment.BOARD) or membership.is_facilitator:
        context["all_picks"] = selectors.picks_by_participant(workshop)
        context["my_picks"] = selectors.picks_of(membership)
    if sess.segment == Segment.RATINGS and membership.is_participant:
        context["rating_form"] = forms.RatingsForm(axes=axes, state=selectors.rating_state(membership))
    if membership.is_facilitator:
        context["participants"] = selectors.participants(workshop)
    context["group_ranking"] = selectors.group_ranking(workshop)
    if sess.segment == Segment.BOARD:  # the board's cards, tally and ranking: the same partials as every change
        context.update(cards=selectors.board_cards(workshop), tally=selectors.vote_tally(workshop),
                       ranking=selectors.group_ranking_data(workshop), observer=membership.is_researcher)
    context["segment_template"] = SEGMENT_TEMPLATES.get(sess.segment)
    partial = PARTIALS.get(request.GET.get("partial")) if request.htmx else None
    return render(request, partial or "discussion/session.html", context)


@require_POST
@workshop_view(roles=FACILITATOR)
def control(request, workshop, membership):
    """The facilitator's controls: segment, open/close, reveal, spotlight, timer."""
    form = forms.ControlForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("That control was not understood."))
        return _back(workshop)
    action, data = form.command()
    try:
        commands.run_facilitator(action, workshop=workshop, by=membership, data=data)
        if action == "map.refresh":
            messages.success(request, _("The map is being computed; it appears when ready."))
    except ValidationError as error:
        _errors(request, error)
    return _back(workshop)


@require_POST
@workshop_view(stages=LIVE)
def picks(request, workshop, membership):
    form = forms.PicksForm(request.POST, membership=membership)
    _submit(request, form, lambda: services.picks_save(membership=membership, picks=form.picks()),
            _("Your top three is saved."))
    return _back(workshop, "top-three")


@require_POST
@workshop_view(stages=LIVE)
def ratings(request, workshop, membership):
    axes = list(selectors.active_axes(workshop))
    form = forms.RatingsForm(request.POST, axes=axes)
    _submit(request, form,
            lambda: services.segment5_submit(membership=membership, ratings=form.ratings(), ranking=form.ordered_ids()),
            _("Thank you: your ratings and ranking are saved. You can change them while this segment is open."))
    return _back(workshop, "ratings")


@never_cache
@require_GET
@workshop_view(stages=LIVE)
def board_state(request, workshop, membership):
    """The board's snapshot (a re-sync): its JSON, and its cards, tally and ranking rendered by
    the same partials as the page and every broadcast change."""
    state = selectors.board_state(workshop, membership)
    language = translation.get_language()
    state["html"] = {"cards": board_html.cards_html(state["cards"], language),
                     "tally": board_html.tally_html(state["tally"], language),
                     "ranking": board_html.ranking_html(state["ranking"], language)}
    return JsonResponse(state)


@never_cache
@require_GET
@workshop_view(stages=LIVE)
def excerpts(request, workshop, membership):
    """The excerpt picker of a card (htmx fragments): the member's highlights and readable
    transcripts, a search over both, or one transcript cut into sentences to choose from."""
    form = forms.ExcerptSearchForm(request.GET)
    here = {"picker_url": reverse("discussion:excerpts", args=[workshop.slug]), "membership": membership}
    if not form.is_valid():
        return render(request, "discussion/excerpt_picker.html#browse",
                      {**selectors.picker_browse(membership), **here}, status=400)
    conversation = form.cleaned_data.get("conversation")
    if conversation:
        context = selectors.picker_transcript(membership, conversation)
        if context is None:
            raise Http404(_("No such conversation."))
        return render(request, "discussion/excerpt_picker.html#transcript",
                      {**context, **here, "focus": form.cleaned_data.get("message")})
    context = selectors.picker_browse(membership, q=form.cleaned_data.get("q") or "")
    partial = "results" if form.cleaned_data.get("partial") == "results" else "browse"
    return render(request, f"discussion/excerpt_picker.html#{partial}", {**context, **here})


@never_cache
@require_GET
@workshop_view(stages=LIVE)
def map_json(request, workshop, membership):
    return JsonResponse(selectors.map_data(workshop, membership))


@never_cache
@require_safe
@workshop_view(roles=STAFF)
def results(request, workshop, membership):
    context = _results_context(workshop, membership)
    return render(request, "discussion/results.html", context)


@never_cache
@require_safe
@workshop_view(roles=STAFF)
def report(request, workshop, membership):
    context = _results_context(workshop, membership)
    context["generated_at"] = timezone.now()
    context["events"] = selectors.session_log(workshop)
    return render(request, "discussion/report.html", context)


def _results_context(workshop, membership) -> dict:
    shift = selectors.consensus_shift(workshop)
    likert = selectors.likert_distribution(workshop)
    axes = selectors.axis_provenance(workshop)
    return {
        "workshop": workshop,
        "membership": membership,
        "shift": shift,
        "likert": likert,
        "axes": axes,
        "chart_data": {"likert": likert, "shift": shift["rows"], "group": shift["group"],
                       "labels": {"before": _("Before (segment 1 picks)"), "after": _("After (segment 5 ranking)"),
                                  "rho": _("Spearman ρ with the group ranking"),
                                  "code": _("initial code"), "attribute": _("attribute"),
                                  "likert": [_("Strongly disagree"), _("Disagree"), _("Neutral"), _("Agree"), _("Strongly agree")]}},
        "map": selectors.map_data(workshop, membership),
    }


export_csv = download_view(exports.axes_csv_rows, content_type=CSV, filename="{slug}-derived-axes.csv")


@require_safe
@workshop_view(roles=STAFF)
def export_json(request, workshop, membership):
    data = exports.axes_json(workshop)
    response = JsonResponse(data, json_dumps_params={"ensure_ascii": False, "indent": 1})
    response["Content-Disposition"] = f'attachment; filename="{workshop.slug}-derived-axes.json"'
    return response

