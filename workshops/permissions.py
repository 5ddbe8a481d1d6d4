"""Who may open which workshop page, and in which stage.

`workshop_view` resolves the workshop from the URL's slug, loads the user's membership and
refuses, with a clear page, anyone who is not allowed: 404 for people outside the workshop
(its existence is not revealed), 403 for a member whose role or stage does not fit.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from workshops.i18n import activate_for
from workshops.models import Membership, Role, Stage, Workshop
from workshops.services import membership_seen


class StageClosed(PermissionDenied):
    pass


def membership_for(user, workshop: Workshop) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(workshop=workshop, user=user).first()


def _membership_by_slug(user, slug: str) -> Membership | None:
    """The user's membership of the workshop at `slug`, with the workshop, in one query (every
    workshop page asks this first; the chat's Send path counts its round trips)."""
    return Membership.objects.select_related("workshop").filter(workshop__slug=slug, user=user).first()


# Why `access` refused (None: allowed); `page_refusal` adds the participant's two.
NOT_MEMBER, WITHDRAWN, WRONG_ROLE = "not_member", "withdrawn", "wrong_role"
NO_CONSENT, STAGE_CLOSED = "no_consent", "stage_closed"


def _refusal(membership: Membership | None, roles, allow_withdrawn: bool) -> str | None:
    if membership is None:
        return NOT_MEMBER
    if membership.is_withdrawn and not allow_withdrawn:
        return WITHDRAWN
    if roles is not None and membership.role not in set(roles):
        return WRONG_ROLE
    return None


def page_refusal(membership: Membership | None, *, roles=None, stages=None, require_consent: bool = True,
                 allow_withdrawn: bool = False) -> str | None:
    """Why a member may not use a workshop page (None: allowed): `access`'s rule, and for a
    participant consent given and the workshop in one of `stages` (facilitators and researchers
    are never stage-blocked). Asked by `workshop_view` for every page and by a socket that acts
    like a page (the chat's Send over its socket), so both refuse the same people."""
    refusal = _refusal(membership, roles, allow_withdrawn)
    if refusal is None and membership.is_participant:
        if require_consent and not membership.has_consented:
            return NO_CONSENT
        if stages is not None and membership.workshop.stage not in set(stages):
            return STAGE_CLOSED
    return refusal


def access(user, workshop: Workshop, roles=None, *, allow_withdrawn: bool = False) -> tuple[Membership | None, str | None]:
    """The one rule for who may open what of a workshop: pages (`workshop_view`), the study
    pages and the JSON API all ask it. A person must be a member, not withdrawn, and (when
    `roles` is given) hold one of `roles`. Returns (membership, None) or (membership, refusal)."""
    membership = membership_for(user, workshop)
    return membership, _refusal(membership, roles, allow_withdrawn)


def readable_workshops(user, roles=None):
    """The workshops `access(user, w, roles)` allows, as a queryset (lists and API filters)."""
    if not user.is_authenticated:
        return Workshop.objects.none()
    members = Membership.objects.filter(user=user, withdrawn_at__isnull=True)
    if roles is not None:
        members = members.filter(role__in=list(roles))
    return Workshop.objects.filter(pk__in=members.values("workshop_id"))


def workshop_view(
    roles: Iterable[str] | None = None,
    stages: Iterable[str] | None = None,
    *,
    require_consent: bool = True,
    allow_withdrawn: bool = False,
):
    """Decorate a view taking (request, slug, ...); it is called as view(request, workshop, membership, ...).

    `roles`: roles allowed (default: any member). `stages`: stages in which participants may
    open the page (facilitators and researchers are never stage-blocked).
    """
    allowed_roles = set(roles) if roles else None
    allowed_stages = set(stages) if stages else None

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, slug, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            # `access`'s rule, with the workshop found through the membership (one query).
            membership = _membership_by_slug(request.user, slug)
            refusal = page_refusal(membership, roles=allowed_roles, stages=allowed_stages,
                                   require_consent=require_consent, allow_withdrawn=allow_withdrawn)
            if refusal == NOT_MEMBER:
                raise Http404(_("No workshop you belong to is found at this address."))
            workshop = membership.workshop
            # Pages of a workshop speak the member's language (their choice, else the workshop's);
            # participants' own text is never translated. Set before any refusal page renders.
            activate_for(request, workshop, membership)
            if refusal == WITHDRAWN:
                return render(request, "workshops/withdrawn.html", {"workshop": workshop}, status=403)
            if refusal == WRONG_ROLE:
                raise PermissionDenied(_("This page is for the workshop's %(roles)s only.") % {
                    "roles": ", ".join(str(Role(r).label).lower() for r in sorted(allowed_roles))
                })
            if refusal == NO_CONSENT:
                return redirect("workshops:consent", slug=workshop.slug)
            if refusal == STAGE_CLOSED:
                # The "not open now" page follows stage changes too (base.html's event stream).
                request.workshop, request.membership = workshop, membership
                return render(
                    request,
                    "workshops/stage_closed.html",
                    {
                        "workshop": workshop,
                        "membership": membership,
                        "wanted": [Stage(s).label for s in allowed_stages],
                    },
                    status=403,
                )
            if membership.is_participant:
                record_activity(request, membership)
            membership.workshop = workshop  # saves services a query for membership.workshop
            request.workshop = workshop
            request.membership = membership
            return view(request, workshop, membership, *args, **kwargs)

        return wrapper

    return decorator


def record_activity(request, membership: Membership) -> None:
    """Last activity for the facilitator's dashboard ("idle 6 min", the page a person is on).

    Activity is what the person does: opening a page (a full GET) or changing something (any
    other method). htmx GETs are left out: most are live refreshes the page makes by itself,
    which would keep an absent person looking active. The write is throttled in the service.
    """
    if request.method in ("GET", "HEAD"):
        if getattr(request, "htmx", False):
            return
        match = request.resolver_match
        membership_seen(membership=membership, page=match.view_name if match else "")
    else:
        membership_seen(membership=membership)


FACILITATOR = (Role.FACILITATOR,)
STAFF = (Role.FACILITATOR, Role.RESEARCHER)
