"""Thin views: authorize (workshop_view), validate with a form, call a service or selector."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import authenticate, login, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.conf import settings
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from workshops import forms, i18n, selectors, services
from workshops.models import Invite, Membership, Role, Stage
from workshops.permissions import FACILITATOR, STAFF, membership_for, workshop_view


def _post(request):
    """POST data for a form, or None for GET (an empty POST still binds, so errors show)."""
    return request.POST if request.method == "POST" else None


# --- Accounts and home ------------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    form_class = forms.LoginForm
    redirect_authenticated_user = True


@require_safe
@login_required
def home(request):
    memberships = selectors.memberships_for_user(request.user)
    return render(request, "workshops/home.html", {
        "memberships": memberships,
        "can_create": request.user.has_perm("workshops.add_workshop"),
    })


@login_required
@permission_required("workshops.add_workshop", raise_exception=True)
def workshop_create(request):
    form = forms.WorkshopCreateForm(_post(request))
    if request.method == "POST" and form.is_valid():
        try:
            workshop = services.workshop_create(created_by=request.user, **form.cleaned_data)
        except ValidationError as error:
            forms.add_errors(form, error)
        else:
            messages.success(request, _("Workshop created. Next: invite people and check the orientation."))
            return redirect("workshops:dashboard", slug=workshop.slug)
    return render(request, "workshops/workshop_form.html", {"form": form, "creating": True})


def error_403(request, exception=None):
    message = str(exception) if exception and str(exception) else _("You do not have access to this page.")
    return render(request, "403.html", {"message": message}, status=403)


def error_404(request, exception=None):
    return render(request, "404.html", {}, status=404)


# --- Joining ---------------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def join(request, token):
    invite = Invite.objects.select_related("workshop").filter(token=token).first()
    if invite is None:
        raise Http404(_("This invite link is not valid. Check it with your facilitator."))
    workshop = invite.workshop
    if request.user.is_authenticated:
        existing = membership_for(request.user, workshop)
        if existing is not None:
            return render(request, "workshops/join_refused.html", {
                "workshop": workshop, "reason": _("You have already joined this workshop."), "existing": existing,
            }, status=409)
    # The invite's page speaks the workshop's language, like its other pages, unless the
    # visitor chose another with the picker; the choice becomes their membership's language.
    language = i18n.activate_for(request, workshop)
    reason = invite.unusable_reason()
    if reason:
        return render(request, "workshops/join_refused.html", {"workshop": workshop, "reason": reason}, status=410)

    form = forms.JoinForm(_post(request), initial={"language": language})
    if request.method == "POST" and form.is_valid():
        fields = {"invite": invite, "display_name": form.cleaned_data["display_name"],
                  "language": form.cleaned_data.get("language") or language}
        try:
            if request.user.is_authenticated:
                services.membership_join(user=request.user, consent=True, **fields)
            else:
                membership, code = services.account_join_by_link(consent=True, **fields)
        except ValidationError as error:
            forms.add_errors(form, error)
        else:
            chosen = fields["language"]
            if request.user.is_authenticated:
                return _with_language_cookie(redirect("workshops:home", slug=workshop.slug), chosen)
            login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            # Shown once, on the next page; only its hash is stored.
            request.session[_RETURN_CODE_KEY] = {"code": code, "slug": workshop.slug, "language": chosen}
            return _with_language_cookie(redirect("return_code_show"), chosen)
    return render(request, "workshops/join.html", {
        "invite": invite, "workshop": workshop, "form": form, "existing_user": request.user.is_authenticated,
        "login_url": reverse("login") + "?next=" + request.path, "return_url": reverse("return_login"),
    })


_RETURN_CODE_KEY = "calma_return_code_once"


def _with_language_cookie(response, language: str):
    """Remember the interface language for pages outside a workshop (LocaleMiddleware reads it)."""
    if i18n.supported(language):
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME, language, max_age=365 * 24 * 3600, samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            secure=request_secure_default(), httponly=True,
        )
    return response


def request_secure_default() -> bool:
    return bool(getattr(settings, "SESSION_COOKIE_SECURE", False))


@require_http_methods(["GET", "HEAD", "POST"])
def language_set(request):
    """The header's language picker: the member's language in the workshop they are on (or, on
    other pages, the visitor's cookie), then back to the page they were on. A GET changes
    nothing and goes back (like Django's set_language, which this replaces)."""
    if request.method != "POST":
        return redirect(reverse("home"))
    language = request.POST.get("language", "")
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        next_url = reverse("home")
    if not i18n.supported(language):
        return redirect(next_url)
    slug = request.POST.get("workshop", "")
    if slug and request.user.is_authenticated:
        membership = Membership.objects.select_related("workshop").filter(workshop__slug=slug, user=request.user).first()
        if membership is not None:
            services.membership_set_language(membership=membership, language=language)
    translation.activate(language)
    return _with_language_cookie(redirect(next_url), language)


@require_safe
def return_code_show(request):
    """The return code just made, shown once (popped from the session), with its link."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    once = request.session.pop(_RETURN_CODE_KEY, None)
    context = {"code": None, "next_url": reverse("home")}
    if once:
        context["code"] = once["code"]
        context["return_link"] = request.build_absolute_uri(reverse("return_login_code", args=[once["code"]]))
        if once.get("slug"):
            context["next_url"] = reverse("workshops:home", args=[once["slug"]])
            if once.get("language"):
                translation.activate(once["language"])
                request.LANGUAGE_CODE = translation.get_language()
    return render(request, "workshops/return_code.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
def return_login(request, code=""):
    """Log in with a return code (on another device). GET only shows the form (link
    previews must not log anyone in); the POST goes to /return/ so the code is not kept in
    the throttle's log of paths. Wrong codes are throttled like wrong passwords."""
    if request.method == "POST":
        form = forms.ReturnCodeForm(request.POST)
        if form.is_valid():
            user = authenticate(request, return_token=form.cleaned_data["code"])
            if user is not None:
                login(request, user)
                services.return_code_used(user=user)
                next_url = request.POST.get("next", "")
                if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
                    next_url = reverse("home")
                return redirect(next_url)
            form.add_error("code", _("That code did not work. Check it, or ask your facilitator."))
    else:
        form = forms.ReturnCodeForm(initial={"code": code} if code else None)
    return render(request, "registration/return.html", {"form": form, "next": request.GET.get("next", "")})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def account(request):
    """The person's own account: a new return code, an optional username and password."""
    user = request.user
    form = forms.AccountLoginForm(_post(request), user=user, request=request)
    if request.method == "POST" and "new_code" in request.POST:
        code = services.return_code_issue(user=user)
        request.session[_RETURN_CODE_KEY] = {"code": code, "slug": ""}
        return redirect("return_code_show")
    if request.method == "POST" and form.is_valid():
        try:
            services.account_set_login(
                user=user, username=form.cleaned_data["username"], password=form.cleaned_data["password1"]
            )
        except ValidationError as error:
            forms.add_errors(form, error)
        else:
            update_session_auth_hash(request, user)
            messages.success(request, _("Saved. You can now log in with your username and password."))
            return redirect("account")
    return render(request, "workshops/account.html", {
        "form": form,
        "memberships": selectors.memberships_for_user(user),
        "has_password": user.has_usable_password(),
        "has_return_code": hasattr(user, "return_code"),
    })


@workshop_view(require_consent=False)
def consent(request, workshop, membership):
    if membership.has_consented:
        return redirect("workshops:home", slug=workshop.slug)
    form = forms.ConsentForm(_post(request))
    if request.method == "POST" and form.is_valid():
        services.membership_consent(membership=membership)
        messages.success(request, _("Thank you. Your pseudonym in this workshop is %(p)s.") % {"p": membership.pseudonym})
        return redirect("workshops:home", slug=workshop.slug)
    return render(request, "workshops/consent.html", {"workshop": workshop, "membership": membership, "form": form})


@workshop_view(roles=[Role.PARTICIPANT], require_consent=False)
def withdraw(request, workshop, membership):
    form = forms.WithdrawForm(_post(request))
    if request.method == "POST" and form.is_valid():
        services.membership_withdraw(membership=membership, reason=form.cleaned_data["reason"])
        return render(request, "workshops/withdrawn.html", {"workshop": workshop, "just_now": True})
    return render(request, "workshops/withdraw.html", {"workshop": workshop, "form": form})


# --- Workshop pages ---------------------------------------------------------------------------


@require_safe
@workshop_view()
def workshop_home(request, workshop, membership):
    return render(request, "workshops/workshop_home.html", {
        "workshop": workshop,
        "membership": membership,
        "stage": Stage(workshop.stage),
    })


@workshop_view(roles=FACILITATOR)
def workshop_settings(request, workshop, membership):
    form = forms.WorkshopForm(_post(request), instance=workshop)
    if request.method == "POST" and form.is_valid():
        services.workshop_update(workshop=workshop, **{f: form.cleaned_data[f] for f in form.Meta.fields})
        messages.success(request, _("Settings saved."))
        return redirect("workshops:settings", slug=form.cleaned_data["slug"])
    return render(request, "workshops/workshop_form.html", {"form": form, "workshop": workshop})


@require_safe
@workshop_view(roles=FACILITATOR)
def dashboard(request, workshop, membership):
    board = selectors.dashboard(
        workshop,
        sort=request.GET.get("sort", ""),
        show=request.GET.get("show", ""),
        query=request.GET.get("q", ""),
        view=request.GET.get("view", ""),
    )
    context = {
        "workshop": workshop,
        "board": board,
        "query_text": request.GET.get("q", "")[:80],
        "hide_names": request.GET.get("names") == "hide",
        "sorts": selectors.SORTS.items(),
        "shows": selectors.SHOWS.items(),
        "views": selectors.VIEWS.items(),
        "summary": selectors.dashboard_summary(workshop),
        "stages": Stage.choices,
        "invite_count": workshop.invites.filter(revoked_at__isnull=True).count(),
        "stage_log": workshop.stage_changes.select_related("changed_by")[:10],
    }
    if request.htmx:
        return render(request, "workshops/dashboard.html#progress", context)
    return render(request, "workshops/dashboard.html", context)


@require_http_methods(["GET", "POST"])
@workshop_view(roles=FACILITATOR)
def stage_set(request, workshop, membership):
    """Move the stage in two steps: GET (or a POST without `confirm`) shows what participants
    will see and who is not done with the current stage; the POST from that page moves it."""
    form = forms.StageForm(request.POST if request.method == "POST" else request.GET)
    if not form.is_valid():
        messages.error(request, _("Choose one of the stages."))
        return redirect("workshops:dashboard", slug=workshop.slug)
    stage = form.cleaned_data["stage"]
    confirmed = request.method == "POST" and form.cleaned_data["confirm"]
    moved_meanwhile = confirmed and form.cleaned_data["from_stage"] != workshop.stage
    if confirmed and not moved_meanwhile:
        services.workshop_set_stage(workshop=workshop, stage=stage, by=request.user)
        messages.success(request, _("The workshop is now in the %(stage)s stage.") % {"stage": Stage(workshop.stage).label})
        return redirect("workshops:dashboard", slug=workshop.slug)
    return render(request, "workshops/stage_confirm.html", {
        "workshop": workshop,
        "preview": selectors.stage_change_preview(workshop, stage),
        "moved_meanwhile": moved_meanwhile,
    })


@workshop_view(roles=FACILITATOR)
def invites(request, workshop, membership):
    form = forms.InviteForm(_post(request))
    if request.method == "POST" and form.is_valid():
        try:
            invite = services.invite_create(workshop=workshop, by=request.user, **form.cleaned_data)
        except ValidationError as error:
            forms.add_errors(form, error)
        else:
            messages.success(request, _("Invite link created: copy it and send it to the people you invite."))
            return redirect(reverse("workshops:invites", args=[workshop.slug]) + f"#invite-{invite.id}")
    return render(request, "workshops/invites.html", {
        "workshop": workshop, "form": form, "invites": selectors.invites_for(workshop),
        "site_url": request.build_absolute_uri("/").rstrip("/"),
    })


@require_POST
@workshop_view(roles=FACILITATOR)
def invite_revoke(request, workshop, membership, invite_id):
    invite = get_object_or_404(Invite, pk=invite_id, workshop=workshop)
    services.invite_revoke(invite=invite)
    messages.success(request, _("Invite revoked: the link no longer works."))
    return redirect("workshops:invites", slug=workshop.slug)


# --- Familiarize --------------------------------------------------------------------------------


@workshop_view()
def orientation(request, workshop, membership):
    if request.method == "POST" and membership.is_participant:
        services.orientation_complete(membership=membership)
        return redirect("workshops:practice", slug=workshop.slug)
    return render(request, "workshops/orientation.html", {"workshop": workshop, "membership": membership})


@workshop_view(stages=[Stage.FAMILIARIZE])
def practice(request, workshop, membership):
    form = forms.PracticeCodeForm(_post(request))
    if request.method == "POST" and membership.is_participant:
        if "done" in request.POST:
            try:
                services.practice_complete(membership=membership)
            except ValidationError as error:
                forms.add_errors(form, error)
                form.is_bound = True
            else:
                return redirect("workshops:practice", slug=workshop.slug)
        elif form.is_valid():
            try:
                services.practice_code_add(membership=membership, **form.cleaned_data)
            except ValidationError as error:
                forms.add_errors(form, error)
            else:
                if request.htmx:
                    form = forms.PracticeCodeForm()
                else:
                    return redirect("workshops:practice", slug=workshop.slug)
    done = membership.practice_done_at is not None or not membership.is_participant
    context = {
        "workshop": workshop,
        "membership": membership,
        "form": form,
        "my_codes": (my_codes := list(selectors.practice_codes_of(membership))),
        "form_only": selectors.form_only_codes(my_codes),
        "others": selectors.practice_codes_of_others(membership) if done else [],
        "example_codes": [c for c in workshop.practice_example_codes.splitlines() if c.strip()] if done else [],
        "done": done,
    }
    if request.htmx:
        return render(request, "workshops/practice.html#coder", context)
    return render(request, "workshops/practice.html", context)


@require_POST
@workshop_view(roles=[Role.PARTICIPANT], stages=[Stage.FAMILIARIZE])
def practice_delete(request, workshop, membership, code_id):
    try:
        services.practice_code_delete(membership=membership, practice_code_id=code_id)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("workshops:practice", slug=workshop.slug)


@workshop_view(stages=[Stage.FAMILIARIZE])
def readiness(request, workshop, membership):
    questions = [i18n.localize_question(q) for q in workshop.readiness_questions.select_related("workshop")]
    answers: dict[int, int] = {}
    errors: dict[int, str] = {}
    attempt = None
    if request.method == "POST" and membership.is_participant:
        for q in questions:
            raw = request.POST.get(f"q{q.id}")
            try:
                value = int(raw)
                if not 0 <= value < len(q.choices):
                    raise ValueError
                answers[q.id] = value
            except (TypeError, ValueError):
                errors[q.id] = _("Choose an answer.")
        if not errors:
            try:
                attempt = services.readiness_submit(membership=membership, answers=answers)
            except ValidationError as error:
                messages.error(request, " ".join(error.messages))
            membership.refresh_from_db()
    return render(request, "workshops/readiness.html", {
        "workshop": workshop, "membership": membership, "questions": questions, "answers": answers,
        "errors": errors, "attempt": attempt or selectors.last_readiness_attempt(membership),
        "just_submitted": attempt is not None,
    })


@workshop_view(roles=FACILITATOR)
def familiarize_edit(request, workshop, membership):
    form = forms.FamiliarizeForm(_post(request), instance=workshop)
    initial = [
        {"prompt": q.prompt, "choices": "\n".join(q.choices), "correct_choice": q.correct_choice + 1, "explanation": q.explanation}
        for q in workshop.readiness_questions.all()
    ]
    formset = forms.ReadinessFormSet(_post(request), initial=initial, prefix="q")
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        questions = [
            {"prompt": f.cleaned_data["prompt"], "choices": f.cleaned_data["choice_list"],
             "correct_choice": f.cleaned_data["correct_choice"] - 1, "explanation": f.cleaned_data.get("explanation", "")}
            for f in formset.forms
            if f.has_changed() or f.initial
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        services.workshop_update(workshop=workshop, **{f: form.cleaned_data[f] for f in form.Meta.fields})
        services.readiness_questions_replace(workshop=workshop, questions=questions)
        messages.success(request, _("Familiarize content saved."))
        return redirect("workshops:familiarize_edit", slug=workshop.slug)
    return render(request, "workshops/familiarize_edit.html", {"workshop": workshop, "form": form, "formset": formset})


@workshop_view(roles=FACILITATOR)
def workshop_texts(request, workshop, membership):
    """The workshop's content in another language (one language per page: ?lang=hi)."""
    others = [(code, name) for code, name in i18n.native_languages() if code != workshop.language]
    if request.method == "POST" and not request.POST.get("lang"):
        return HttpResponseBadRequest(_("Which language? The form was sent without one."))
    language = request.POST.get("lang") or request.GET.get("lang") or (others[0][0] if others else "")
    if language not in [code for code, _name in others]:
        raise Http404(_("No such language."))
    saved = (workshop.translations or {}).get(language) or {}
    questions = list(workshop.readiness_questions.all())
    form = forms.WorkshopTextsForm(_post(request), initial=saved)
    rows = []
    for q in questions:
        t = (q.translations or {}).get(language) or {}
        if request.method == "POST":
            t = {"prompt": request.POST.get(f"q{q.id}-prompt", ""),
                 "choices": request.POST.get(f"q{q.id}-choices", "").splitlines(),
                 "explanation": request.POST.get(f"q{q.id}-explanation", "")}
        rows.append({"q": q, "prompt": t.get("prompt", ""), "choices": "\n".join(t.get("choices") or []),
                     "explanation": t.get("explanation", "")})
    if request.method == "POST" and form.is_valid():
        try:
            services.workshop_translations_save(
                workshop=workshop, language=language, texts=form.cleaned_data,
                questions={r["q"].id: {"prompt": r["prompt"][:500], "choices": r["choices"].splitlines(),
                                       "explanation": r["explanation"][:1000]} for r in rows},
            )
        except ValidationError as error:
            forms.add_errors(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect(reverse("workshops:texts", args=[workshop.slug]) + "?lang=" + language)
    return render(request, "workshops/texts.html", {
        "workshop": workshop, "form": form, "rows": rows, "language": language, "others": others,
        "originals": {f: getattr(workshop, f) for f in i18n.TRANSLATABLE_FIELDS},
    })


@require_safe
@workshop_view(roles=STAFF)
def research(request, workshop, membership):
    from workshops import exports

    return render(request, "workshops/research.html", {"workshop": workshop, "exports": exports.available(workshop)})


