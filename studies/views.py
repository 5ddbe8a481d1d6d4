"""Thin views of studies: authorize through workshops.permissions, validate, call one service or selector."""

from __future__ import annotations

import json
from functools import wraps

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from studies import forms, selectors, services
from studies.models import AxisMatch, Study
from workshops import exports
from workshops.forms import add_errors
from workshops.models import Workshop
from workshops.permissions import FACILITATOR, readable_workshops, workshop_view


def _study(request, study_slug: str) -> Study:
    """The study, if the person may see it (404 otherwise: its existence is not revealed)."""
    return get_object_or_404(selectors.visible_studies(request.user), slug=study_slug)


def _compared(request, study: Study, slugs: list[str]) -> list[Workshop]:
    """The workshops asked for (all the study's readable ones when none are named); a workshop
    outside the study or that the person cannot read refuses the whole comparison."""
    readable = list(selectors.study_workshops(study, request.user))
    if not slugs:
        return readable
    by_slug = {w.slug: w for w in readable}
    chosen = []
    for slug in dict.fromkeys(slugs):
        if slug not in by_slug:
            raise Http404(_("No workshop of this study that you may read is found at this address."))
        chosen.append(by_slug[slug])
    return chosen


def _with_compared(view):
    """A view of a study's comparison, called as view(request, study, workshops): the workshops
    named by ?w= (see _compared)."""

    @wraps(view)
    def wrapper(request, study_slug):
        study = _study(request, study_slug)
        return view(request, study, _compared(request, study, request.GET.getlist("w")))

    return wrapper


@require_safe
@login_required
def index(request):
    return render(request, "studies/index.html", {
        "studies": selectors.visible_studies(request.user),
        "can_create": readable_workshops(request.user, FACILITATOR).exists(),
        "form": forms.StudyForm(),
    })


@require_http_methods(["GET", "POST"])
@login_required
def study_create(request):
    if not readable_workshops(request.user, FACILITATOR).exists():
        raise PermissionDenied(_("Facilitators create studies."))
    form = forms.StudyForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            study = services.study_create(by=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_errors(form, error)
        else:
            return redirect("studies:detail", study_slug=study.slug)
    return render(request, "studies/study_form.html", {"form": form}, status=400 if form.is_bound else 200)


@never_cache
@require_http_methods(["GET", "POST"])
@login_required
def detail(request, study_slug):
    study = _study(request, study_slug)
    can_manage = services.can_manage_study(request.user, study)
    add_form, grant_form = forms.AddWorkshopForm(), forms.GrantForm()
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied(_("Only the study's facilitators change it."))
        if "workshop" in request.POST:
            add_form = forms.AddWorkshopForm(request.POST)
            if add_form.is_valid():
                workshop = readable_workshops(request.user, FACILITATOR).filter(slug=add_form.cleaned_data["workshop"]).first()
                if workshop is None:
                    add_form.add_error("workshop", _("You facilitate no workshop with this short name."))
                else:
                    try:
                        services.study_add_workshop(study=study, workshop=workshop, by=request.user)
                    except ValidationError as error:
                        add_errors(add_form, error)
                    else:
                        return redirect("studies:detail", study_slug=study.slug)
        else:
            grant_form = forms.GrantForm(request.POST)
            if grant_form.is_valid():
                user = get_user_model().objects.filter(username=grant_form.cleaned_data["username"]).first()
                if user is None:
                    grant_form.add_error("username", _("No account with this username."))
                else:
                    services.study_grant(study=study, user=user, by=request.user)
                    messages.success(request, _("%(user)s can now read every workshop of this study.") % {"user": user.get_username()})
                    return redirect("studies:detail", study_slug=study.slug)
    return render(request, "studies/detail.html", {
        "study": study, "workshops": selectors.study_workshops(study, request.user), "can_manage": can_manage,
        "add_form": add_form, "grant_form": grant_form, "researchers": study.researchers.select_related("user"),
    }, status=400 if request.method == "POST" else 200)


@require_http_methods(["GET", "POST"])
@workshop_view(roles=FACILITATOR)
def from_template(request, workshop, membership):
    form = forms.TemplateForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            new = services.workshop_from_template(template=workshop, by=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, _("Workshop created from %(title)s.") % {"title": workshop.title})
            return redirect("workshops:home", slug=new.slug)
    return render(request, "studies/template_form.html", {
        "workshop": workshop, "form": form, "study": selectors.study_of(workshop), "origin": selectors.origin_of(workshop),
    }, status=400 if form.is_bound else 200)


@never_cache
@require_safe
@login_required
@_with_compared
def compare(request, study, workshops):
    return render(request, "studies/compare.html", {
        "study": study, "workshops": workshops, "data": selectors.comparison(study, workshops),
        "job": selectors.match_job(workshops),
        "all_workshops": selectors.study_workshops(study, request.user),
        "query": "&".join(f"w={w.slug}" for w in workshops),
    })


@require_POST
@login_required
def suggest(request, study_slug):
    study = _study(request, study_slug)
    workshops = _compared(request, study, request.POST.getlist("w"))
    try:
        services.matches_request(study=study, by=request.user, workshops=workshops)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect(_compare_url(study, workshops))


def _compare_url(study, workshops) -> str:
    from django.urls import reverse

    return reverse("studies:compare", kwargs={"study_slug": study.slug}) + "?" + "&".join(f"w={w.slug}" for w in workshops)


@require_POST
@login_required
def decide(request, study_slug, match_id):
    study = _study(request, study_slug)
    match = get_object_or_404(AxisMatch.objects.select_related("axis_a__workshop", "axis_b__workshop"),
                              pk=match_id, study=study)
    readable = set(selectors.study_workshops(study, request.user).values_list("pk", flat=True))
    if match.axis_a.workshop_id not in readable or match.axis_b.workshop_id not in readable:
        raise Http404(_("No match you may read is found at this address."))
    form = forms.DecideForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("That decision could not be read."))
    else:
        axis_b = None
        if form.cleaned_data["axis_b"]:
            from discussion.selectors import active_axes

            axis_b = active_axes(match.axis_b.workshop).filter(pk=form.cleaned_data["axis_b"]).first()
        try:
            services.match_decide(match=match, by=request.user, status=form.cleaned_data["status"],
                                  note=form.cleaned_data["note"], axis_b=axis_b)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
    slugs = request.POST.getlist("w") or [match.axis_a.workshop.slug, match.axis_b.workshop.slug]
    return redirect(_compare_url(study, _compared(request, study, slugs)))


@require_safe
@login_required
@_with_compared
def export_csv(request, study, workshops):
    columns = selectors.COMPARISON_COLUMNS
    rows = ([row[c] if row[c] is not None else "" for c in columns] for row in selectors.comparison_rows(study, workshops))
    return exports.stream_download(request, exports.stream_csv(columns, rows), content_type=exports.CSV,
                                   filename=f"{study.slug}-comparison.csv")


@require_safe
@login_required
@_with_compared
def export_json(request, study, workshops):
    def chunks():
        yield '{"study": ' + json.dumps(study.slug) + ', "workshops": ' + json.dumps([w.slug for w in workshops])
        yield ', "rows": ['
        for i, row in enumerate(selectors.comparison_rows(study, workshops)):
            yield ("," if i else "") + "\n" + json.dumps(row, ensure_ascii=False)
        yield "\n]}\n"

    return exports.stream_download(request, chunks(), content_type="application/json; charset=utf-8",
                                   filename=f"{study.slug}-comparison.json")


@never_cache
@require_safe
@login_required
@_with_compared
def labels(request, study, workshops):
    term = request.GET.get("q", "")[:200]
    return render(request, "studies/labels.html", {
        "study": study, "workshops": workshops, "term": term,
        "groups": selectors.label_view(workshops, term) if term.strip() else [],
        "query": "&".join(f"w={w.slug}" for w in workshops),
    })
