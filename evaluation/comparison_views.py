"""Thin views of the model comparison: the list and the form to start one (facilitator), the
results page with the job's status (staff), putting answer pairs up for a blind A/B test."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from evaluation import comparison as svc
from evaluation import selectors
from evaluation.models import Comparison
from workshops.permissions import STAFF, workshop_view


class ComparisonForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Name"), max_length=svc.TITLE_MAX, required=False)
    models = forms.MultipleChoiceField(label=gettext_lazy("Models to compare (two or more)"),
                                       widget=forms.CheckboxSelectMultiple, required=False)
    judges = forms.MultipleChoiceField(
        label=gettext_lazy("Judges"), widget=forms.CheckboxSelectMultiple, required=False,
        help_text=gettext_lazy("A judge already run on the participants' ratings is reused, with its agreement."))
    prompt_set = forms.ChoiceField(label=gettext_lazy("Questions from Interact"), widget=forms.RadioSelect, choices=[
        ("all", gettext_lazy("Every question participants asked (baseline and their own conversations)")),
        ("baseline", gettext_lazy("The baseline questions")),
        ("chosen", gettext_lazy("The questions chosen below")),
        ("none", gettext_lazy("None: only the prompts added below")),
    ], initial="all")
    questions = forms.MultipleChoiceField(label=gettext_lazy("Chosen questions (★ baseline)"), required=False,
                                          widget=forms.CheckboxSelectMultiple)
    extra = forms.CharField(label=gettext_lazy("Extra prompts, one per line"), required=False,
                            widget=forms.Textarea(attrs={"rows": 3}))
    concurrency = forms.IntegerField(label=gettext_lazy("Answers asked of each model at the same time"),
                                     min_value=1, max_value=32, initial=4)

    def __init__(self, *args, workshop, **kwargs):
        from llm_gateway import registry

        super().__init__(*args, **kwargs)
        endpoints = [(e.key, f"{e.name} ({e.model})") for e in registry.endpoints()]
        self.fields["models"].choices = endpoints
        self.fields["judges"].choices = endpoints
        self.fields["questions"].choices = svc.question_choices(workshop)


def _context(workshop, membership, form=None) -> dict:
    from workshops import jobs

    job = svc.job_of(workshop)
    return {
        "workshop": workshop, "membership": membership,
        "form": form or (ComparisonForm(workshop=workshop) if membership.is_facilitator else None),
        "comparisons": [(c, svc.status(c)) for c in svc.comparisons_of(workshop)],
        "axes": selectors.ratable_axes(workshop),
        "job": jobs.state(job) if job else None,
        "job_active": bool(job and job.status in ("queued", "running") and not jobs.is_stale(job)),
    }


@require_http_methods(["GET", "POST"])
@workshop_view(roles=STAFF)
def compare_list(request, workshop, membership):
    """GET: the workshop's comparisons and (facilitator) the form. POST (facilitator): start one."""
    if request.method == "GET":
        return render(request, "evaluation/compare_list.html", _context(workshop, membership))
    if not membership.is_facilitator:
        raise PermissionDenied(_("Researchers read the comparisons; only facilitators start them."))
    form = ComparisonForm(request.POST, workshop=workshop)
    if form.is_valid():
        data = form.cleaned_data
        try:
            comparison, _job = svc.comparison_create(
                workshop=workshop, by=membership, endpoint_keys=data["models"], judge_keys=data["judges"],
                prompt_set=data["prompt_set"], question_ids=data["questions"], extra=data["extra"],
                concurrency=data["concurrency"], title=data["title"])
        except ValidationError as error:
            for text in error.messages:
                form.add_error(None, text)
        else:
            messages.success(request, _("The models are answering; this page follows the work."))
            return redirect("evaluation:compare_detail", slug=workshop.slug, comparison_id=comparison.id)
    return render(request, "evaluation/compare_list.html", _context(workshop, membership, form), status=400)


@require_http_methods(["GET", "POST"])
@workshop_view(roles=STAFF)
def compare_detail(request, workshop, membership, comparison_id):
    """GET: the results (`?status=1`: only the job's status, polled while it works). POST
    (facilitator): `resume` asks again what failed and judges what is left; `ab` puts the answer
    pairs up for the participants."""
    from workshops import jobs

    comparison = get_object_or_404(Comparison.objects.select_related("workshop"), pk=comparison_id, workshop=workshop)
    if request.method == "POST":
        if not membership.is_facilitator:
            raise PermissionDenied(_("Researchers read the comparisons; only facilitators change them."))
        try:
            if "ab" in request.POST:
                n = svc.ab_open(comparison=comparison, by=membership)
                messages.success(request, _("%(n)d answer pairs are up for the participants to compare, blinded.")
                                 % {"n": n})
            elif "resume" in request.POST:
                svc.comparison_resume(comparison=comparison, by=membership)
                messages.success(request, _("Asking again what failed and judging what is left."))
        except ValidationError as error:
            for text in error.messages:
                messages.error(request, text)
        return redirect("evaluation:compare_detail", slug=workshop.slug, comparison_id=comparison.id)
    job = svc.job_of(workshop)
    context = {"workshop": workshop, "membership": membership, "comparison": comparison,
               "status": svc.status(comparison), "job": jobs.state(job) if job else None,
               "job_active": bool(job and job.status in ("queued", "running") and not jobs.is_stale(job))}
    if request.GET.get("status"):
        return render(request, "evaluation/compare_detail.html#compare-status", context)
    data = svc.results(comparison)
    chart = dict(data["chart"], labels={"mean": _("mean judge score (1–5)"), "unreliable": _("unreliable")})
    return render(request, "evaluation/compare_detail.html", {**context, **data, "chart": chart})

