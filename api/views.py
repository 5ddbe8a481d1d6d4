"""Pages of the API: personal tokens (create, shown once; revoke) and the documentation page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from api import forms, selectors, services
from workshops import permissions


def _may_use_api(user) -> bool:
    """Tokens are for people who read research data: facilitators and researchers."""
    return permissions.readable_workshops(user, permissions.STAFF).exists()


@never_cache
@require_http_methods(["GET", "POST"])
@login_required
def tokens(request):
    if not _may_use_api(request.user):
        raise PermissionDenied(_("API tokens are for a workshop's facilitators and researchers."))
    form = forms.TokenForm(request.POST if request.method == "POST" else None)
    created = None
    if form.is_valid():
        token, raw = services.token_create(user=request.user, name=form.cleaned_data["name"])
        created = {"token": token, "raw": raw}  # shown on this response only
        form = forms.TokenForm()
    return render(request, "api/tokens.html", {"form": form, "tokens": selectors.tokens_of(request.user),
                                               "created": created},
                  status=400 if form.is_bound and not form.is_valid() else 200)


@require_POST
@login_required
def token_revoke(request, token_id):
    token = get_object_or_404(selectors.tokens_of(request.user), pk=token_id)
    services.token_revoke(token=token, by=request.user)
    messages.success(request, _("Token “%(name)s” revoked.") % {"name": token.name})
    return redirect("api:tokens")


@require_safe
def docs(request):
    from api.api import api

    schema = api.get_openapi_schema(path_prefix="/api/v1")
    operations = []
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            params = [p["name"] for p in op.get("parameters", []) if p.get("in") == "query"]
            operations.append({"method": method.upper(), "path": path, "summary": op.get("summary", ""),
                               "description": op.get("description", ""), "params": params,
                               "tag": (op.get("tags") or [""])[0]})
    return render(request, "api/docs.html", {"operations": operations, "schema_url": "/api/v1/openapi.json"})


def not_found(request, rest=""):
    return JsonResponse({"detail": "Not found."}, status=404)
