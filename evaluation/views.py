"""Thin views of the Evaluate stage: authorize, validate, call one service or selector, render."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from discussion.models import Axis, AxisExample, AxisStatus
from evaluation import forms, judging, selectors, services
from workshops.exports import stream_csv, stream_download
from workshops.models import Stage
from workshops.permissions import FACILITATOR, STAFF, workshop_view

RATING = (Stage.EVALUATE,)


@require_http_methods(["GET", "POST"])
@workshop_view(roles=STAFF)
def overview(request, workshop, membership):
    cfg = selectors.settings_for(workshop)
    form = forms.SettingsForm(instance=cfg)
    if request.method == "POST":
        if not membership.is_facilitator:
            raise PermissionDenied(_("Researchers read the evaluation; only facilitators change it."))
        form = forms.SettingsForm(request.POST, instance=cfg)
        if form.is_valid():
            services.evaluation_settings_update(workshop=workshop, **form.cleaned_data)
            messages.success(request, _("Rating settings saved."))
            return redirect("evaluation:overview", slug=workshop.slug)
    return render(request, "evaluation/overview.html", {
        "workshop": workshop, "membership": membership, "form": form,
        "rows": selectors.axes_with_rubrics(workshop), "pool": selectors.pool_stats(workshop),
        **_draft_context(workshop, membership),
    })


@require_http_methods(["GET", "POST"])
@workshop_view(roles=FACILITATOR)
def rubric_edit(request, workshop, membership, axis_id):
    axis = get_object_or_404(Axis, pk=axis_id, workshop=workshop, status=AxisStatus.ACTIVE)
    rubric = getattr(axis, "rubric", None)
    version = selectors.current_version(rubric)
    examples = list(AxisExample.objects.filter(axis=axis).order_by("id"))
    form = forms.RubricForm(request.POST or None, examples=examples, version=version)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.rubric_save(axis=axis, by=membership, approve="approve" in request.POST,
                                         **form.service_kwargs())
        except ValidationError as error:
            for text in error.messages:
                form.add_error(None, text)
        else:
            messages.success(request, _("Rubric saved as version %(n)d.") % {"n": saved.number})
            return redirect("evaluation:overview", slug=workshop.slug)
    return render(request, "evaluation/rubric_edit.html", {
        "workshop": workshop, "membership": membership, "axis": axis, "version": version, "form": form,
        "has_ratings": bool(version and version.in_use()),
        "drafted_points": {key.partition(".")[2] for key in (version.drafted if version else [])},
        **_draft_context(workshop, membership),
    })


def _draft_context(workshop, membership, form=None) -> dict:
    from workshops import jobs

    job = selectors.draft_job(workshop)
    return {"draft_form": form or forms.DraftForm(), "draft_job": jobs.state(job) if job else None,
            "draft_active": bool(job and job.status in ("queued", "running") and not jobs.is_stale(job))}


@require_http_methods(["GET", "POST"])
@workshop_view(roles=FACILITATOR)
def rubric_draft(request, workshop, membership):
    """GET: the draft job's status (polled while it works). POST: ask a model to draft the empty
    scale points of the chosen axes' rubrics (`axis`, repeated)."""
    if request.method == "GET":
        return render(request, "evaluation/rubric_edit.html#draft-status",
                      {"workshop": workshop, "membership": membership, **_draft_context(workshop, membership)})
    form = forms.DraftForm(request.POST)
    axis_ids = [int(a) for a in request.POST.getlist("axis") if a.isascii() and a.isdigit()]
    back = request.POST.get("next") or ""
    if form.is_valid():
        try:
            services.rubric_draft_request(workshop=workshop, by=membership, axis_ids=axis_ids,
                                          endpoint_key=form.cleaned_data["endpoint"])
        except ValidationError as error:
            for text in error.messages:
                messages.error(request, text)
        else:
            messages.success(request, _("A model is drafting; the drafted points will be marked until you review them."))
    else:
        messages.error(request, _("Choose a configured model."))
    if len(axis_ids) == 1 and back == "rubric":
        return redirect("evaluation:rubric_edit", slug=workshop.slug, axis_id=axis_ids[0])
    return redirect("evaluation:overview", slug=workshop.slug)


@require_GET
@workshop_view(roles=("participant",), stages=RATING)
def rate_start(request, workshop, membership):
    """Hand out this person's share (once) and open the first answer they have not finished."""
    if not selectors.ratable_axes(workshop):
        return render(request, "evaluation/rate_waiting.html", {"workshop": workshop, "membership": membership})
    assignments = services.assignments_ensure(membership=membership)
    if not assignments:
        return render(request, "evaluation/rate_waiting.html",
                      {"workshop": workshop, "membership": membership, "empty_pool": True})
    todo = next((a for a in assignments if a.done_at is None), None)
    if todo is not None:
        return redirect("evaluation:rate", slug=workshop.slug, position=todo.position)
    # Then the pairs (compare-mode answers, model comparisons), if there are any to compare.
    pairs = services.pair_assignments_ensure(membership=membership)
    todo = next((a for a in pairs if a.done_at is None), None)
    if todo is not None:
        return redirect("evaluation:rate_pair", slug=workshop.slug, position=todo.position)
    return render(request, "evaluation/rate_done.html",
                  {"workshop": workshop, "membership": membership, "assignments": assignments, "pairs": pairs})


def _saved(request, form, submit) -> bool:
    """A POST whose form is valid: `submit()`; a refusal of the service is shown on the form."""
    if request.method != "POST" or not form.is_valid():
        return False
    try:
        submit()
    except ValidationError as error:
        for text in error.messages:
            form.add_error(None, text)
        return False
    return True


def _rating_page(name, *, view, handed, form, submit, not_handed, words):
    """The page `evaluation:<name>` (drawn by evaluation/<name>.html) of one answer or pair handed
    to the participant to rate: `view(membership, position)` (None: not handed to them, 404 with
    `not_handed`), `form(data, axes=, mine=)` its form, `submit(membership, position, form)` saves
    a valid POST, then on to the next. `handed(membership)` lists all handed to the person (the
    navigation and the progress bar); a POST that comes back to the page was refused (400).
    `words`: (the progress line with %(done)s and %(total)s, the navigation's name, the word for
    one that is done), lazily translated."""
    progress, nav_label, done_word = words

    @require_http_methods(["GET", "POST"])
    @workshop_view(roles=("participant",), stages=RATING)
    def page(request, workshop, membership, position):
        shown = view(membership, position)
        if shown is None:
            raise Http404(str(not_handed))
        axes = selectors.ratable_axes(workshop)
        bound = form(request.POST or None, axes=axes, mine=shown["mine"])
        if _saved(request, bound, lambda: submit(membership, position, bound)):
            return redirect("evaluation:rate_start", slug=workshop.slug)
        rows = handed(membership)
        done = sum(1 for a in rows if a.done_at)
        return render(request, f"evaluation/{name}.html", {
            "workshop": workshop, "membership": membership, "view": shown, "form": bound,
            "axis_fields": [(row, bound[f"axis_{row['axis'].id}"]) for row in axes],
            "done": done, "position": position, "handed": rows, "url_name": f"evaluation:{name}",
            "progress": str(progress) % {"done": done, "total": len(rows)}, "nav_label": nav_label,
            "done_word": done_word,
        }, status=400 if request.method == "POST" else 200)

    page.__name__ = page.__qualname__ = name
    return page


rate = _rating_page(
    "rate", view=selectors.assignment_view, handed=selectors.assignments_of, form=forms.RatingsForm,
    submit=lambda membership, position, form: services.ratings_submit(
        membership=membership, position=position, scores=form.scores()),
    not_handed=gettext_lazy("This answer was not handed to you to rate."),
    words=(gettext_lazy("%(done)s of %(total)s answers rated"), gettext_lazy("Answers to rate"), gettext_lazy("rated")))

rate_pair = _rating_page(
    "rate_pair", view=selectors.pair_view, handed=selectors.pair_assignments_of, form=forms.PairForm,
    submit=lambda membership, position, form: services.pair_ratings_submit(
        membership=membership, position=position, choices=form.choices()),
    not_handed=gettext_lazy("This pair was not handed to you to compare."),
    words=(gettext_lazy("%(done)s of %(total)s pairs compared"), gettext_lazy("Pairs to compare"),
           gettext_lazy("compared")))


def _judge_context(workshop, membership, form=None) -> dict:
    from workshops import jobs

    job = selectors.judge_job(workshop)
    pending = sum(len(judging.pairs_to_score(run)) for run in selectors.judge_runs(workshop))
    axes = len(selectors.ratable_axes(workshop))
    items = selectors.rated_item_count(workshop)
    return {
        "judge_form": form or (forms.JudgeForm() if membership.is_facilitator else None),
        "judge_job": jobs.state(job) if job else None,
        "judge_active": bool(job and job.status in ("queued", "running") and not jobs.is_stale(job)),
        "judge_pending": pending,
        "judge_estimate": judging.estimate_tokens(workshop, items * axes),
        "judge_pairs": items * axes,
    }


@require_GET
@workshop_view(roles=STAFF)
def results(request, workshop, membership):
    rows = selectors.agreement(workshop)
    chart = [{"name": r["axis"].name, "counts": r["counts"], "alpha": r["result"].alpha,
              "low": r["result"].low, "high": r["result"].high} for r in rows]
    judges = selectors.judge_agreement(workshop)
    judge_chart = [{"axis": a["axis"].name, "participants": a["participants"].alpha,
                    "judges": [{"name": j["run"].endpoint_key, "alpha": j["with_judge"].alpha if j["with_judge"] else None,
                                "rho": j["rho"]} for j in a["judges"]]} for a in judges["axes"]]
    return render(request, "evaluation/results.html", {
        "workshop": workshop, "membership": membership, "rows": rows, "judges": judges,
        "pairs": selectors.pair_summary(workshop),
        "chart_data": {"axes": chart, "judges": judge_chart,
                       "labels": {"na": _("does not apply"), "alpha": _("alpha (ordinal)"),
                                  "participants": _("participants alone")}},
        **_judge_context(workshop, membership),
    })


@require_http_methods(["GET", "POST"])
@workshop_view(roles=STAFF)
def judges(request, workshop, membership):
    """GET: the judge job's status (polled by the results page while it works). POST (facilitator):
    start judges, or resume what is left."""
    if request.method == "GET":
        return render(request, "evaluation/results.html#judge-status",
                      {"workshop": workshop, "membership": membership, **_judge_context(workshop, membership)})
    if not membership.is_facilitator:
        raise PermissionDenied(_("Researchers read the evaluation; only facilitators change it."))
    if "resume" in request.POST:
        services.judge_resume(workshop=workshop, by=membership)
        messages.success(request, _("Scoring what is left."))
        return redirect("evaluation:results", slug=workshop.slug)
    form = forms.JudgeForm(request.POST)
    if _saved(request, form, lambda: services.judge_runs_start(
            workshop=workshop, by=membership, endpoint_keys=form.cleaned_data["endpoints"],
            concurrency=form.cleaned_data["concurrency"])):
        messages.success(request, _("The judges are scoring; this page follows their progress."))
        return redirect("evaluation:results", slug=workshop.slug)
    return render(request, "evaluation/results.html", {
        "workshop": workshop, "membership": membership, "rows": selectors.agreement(workshop),
        "judges": selectors.judge_agreement(workshop), "chart_data": {"axes": [], "judges": [], "labels": {}},
        **_judge_context(workshop, membership, form),
    }, status=400)


RATING_COLUMNS = [
    "workshop", "axis_id", "axis_name", "rubric_id", "rubric_version", "item_id", "message_id",
    "conversation_id", "is_baseline", "question", "answer", "participant", "score", "not_applicable",
    "rated_at",
]


def _rating_rows(workshop, axis_id=None):
    qs = selectors.ratings_for_export(workshop)
    if axis_id is not None:
        qs = qs.filter(axis_id=axis_id)
    for r in qs.iterator(chunk_size=100):  # rows carry answer texts: a page of 100 bounds the memory
        message = r.item.message
        question = message.reply_to.content if message.reply_to_id else ""
        yield [workshop.slug, r.axis_id, r.axis.name, r.rubric_version.rubric_id, r.rubric_version.number,
               r.item_id, message.id, message.conversation_id, message.conversation.is_baseline, question,
               message.content, r.membership.pseudonym, "" if r.score is None else r.score,
               r.score is None, r.updated_at.isoformat()]


@require_GET
@workshop_view(roles=STAFF)
def export_ratings(request, workshop, membership):
    axis_id = request.GET.get("axis")
    if axis_id is not None and not (axis_id.isascii() and axis_id.isdigit()):
        raise Http404
    return stream_download(request, stream_csv(RATING_COLUMNS, _rating_rows(workshop, int(axis_id) if axis_id else None)),
                           content_type="text/csv; charset=utf-8", filename=f"{workshop.slug}-ratings.csv")


@require_GET
@workshop_view(roles=STAFF)
def export_rubrics(request, workshop, membership):
    data = {"workshop": workshop.slug, "rubrics": [
        {"rubric_id": rubric.id, "axis_id": rubric.axis_id, "versions": [
            {"version": v.number, "name": v.name, "definition": v.definition, "scale": v.scale,
             "should": v.should, "should_not": v.should_not, "examples": v.examples, "drafted": v.drafted,
             "model_text": v.model_text,
             "complete": v.is_complete,
             "author": v.created_by.pseudonym if v.created_by else None, "created_at": v.created_at.isoformat()}
            for v in rubric.versions.all()]}
        for rubric in selectors.rubric_versions_for_export(workshop)]}
    response = HttpResponse(json.dumps(data, ensure_ascii=False, indent=2), content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{workshop.slug}-rubrics.json"'
    return response


PAIR_RATING_COLUMNS = [
    "workshop", "pair_id", "source", "question_id", "question", "first_message_id", "first_answer",
    "second_message_id", "second_answer", "axis_id", "axis_name", "rubric_id", "rubric_version", "participant",
    "choice", "shown_swapped", "rated_at",
]


def _pair_rating_rows(workshop):
    for r in selectors.pair_ratings_for_export(workshop).iterator(chunk_size=100):
        item = r.item
        version = r.rubric_version
        yield [workshop.slug, item.id, item.source, item.question_id or "",
               item.question.content if item.question_id else "", item.first_id, item.first.content,
               item.second_id, item.second.content, r.axis_id or "", r.axis.name if r.axis_id else "",
               version.rubric_id if version else "", version.number if version else "", r.membership.pseudonym,
               r.choice, r.shown_swapped, r.updated_at.isoformat()]


@require_GET
@workshop_view(roles=STAFF)
def export_pair_ratings(request, workshop, membership):
    """Annotator-level pairwise choices; `axis_id` empty is an overall choice, `choice` names the
    pair's first or second answer whatever side the rater saw it on (`shown_swapped`)."""
    return stream_download(request, stream_csv(PAIR_RATING_COLUMNS, _pair_rating_rows(workshop)),
                           content_type="text/csv; charset=utf-8", filename=f"{workshop.slug}-pair-ratings.csv")
