"""Reads for workshops: memberships, dashboard rows, invites, Familiarize views."""

from __future__ import annotations

from django.db.models import Count, Prefetch

from workshops import progress
from workshops.models import Invite, Membership, PracticeCode, ReadinessAttempt, Role, Workshop


def memberships_for_user(user):
    return Membership.objects.filter(user=user).select_related("workshop").order_by("-workshop__created_at")


def socket_membership(user, slug: str) -> Membership | None:
    """The membership a websocket may act for: same rule as the pages (not withdrawn, and a
    participant only after consenting). Sync: call it through database_sync_to_async."""
    if not user or not user.is_authenticated:
        return None
    membership = (
        Membership.objects.select_related("workshop", "user")
        .filter(workshop__slug=slug, user=user, withdrawn_at__isnull=True)
        .first()
    )
    if membership is not None and membership.is_participant and not membership.has_consented:
        return None
    return membership


def workshop_stage(workshop_id: int) -> str | None:
    return Workshop.objects.filter(pk=workshop_id).values_list("stage", flat=True).first()


def active_participants(workshop: Workshop):
    return Membership.objects.filter(workshop=workshop).participants().active()


def dashboard_rows(workshop: Workshop) -> tuple[list[tuple[str, str]], list[dict]]:
    """Participants with their progress; returns (extra column headings, rows)."""
    members = list(
        Membership.objects.filter(workshop=workshop, role=Role.PARTICIPANT)
        .annotate(
            practice_count=Count("practice_codes", distinct=True),
            readiness_tries=Count("readiness_attempts", distinct=True),
        )
        .order_by("pseudonym")
    )
    extra_columns: list[tuple[str, str]] = []
    extra_values: dict[int, dict] = {}
    for provider in progress.providers():
        extra_columns.extend(provider.columns)
        for membership_id, values in provider.func(workshop).items():
            extra_values.setdefault(membership_id, {}).update(values)
    rows = []
    for m in members:
        values = extra_values.get(m.id, {})
        rows.append(
            {
                "membership": m,
                "extra": [values.get(key, "") for key, _label in extra_columns],
            }
        )
    return extra_columns, rows


def dashboard_summary(workshop: Workshop) -> dict:
    qs = Membership.objects.filter(workshop=workshop, role=Role.PARTICIPANT)
    active = qs.filter(withdrawn_at__isnull=True)
    return {
        "joined": active.count(),
        "consented": active.filter(consented_at__isnull=False).count(),
        "orientation": active.filter(orientation_done_at__isnull=False).count(),
        "practice": active.filter(practice_done_at__isnull=False).count(),
        "ready": active.filter(readiness_passed_at__isnull=False).count(),
        "withdrawn": qs.filter(withdrawn_at__isnull=False).count(),
    }


def invites_for(workshop: Workshop):
    return Invite.objects.filter(workshop=workshop).select_related("created_by").order_by("-created_at")


# Codes that only describe the form of an answer. The pilot saw these from untrained
# participants ("summary", "introduction", "conclusion"); the practice round points them out.
FORM_ONLY_CODES = {
    "summary", "introduction", "intro", "conclusion", "long", "short", "answer", "response",
    "list", "paragraph", "explanation", "details", "detail", "information", "info", "text",
    "example", "examples", "description", "overview", "lengthy", "brief",
}


def form_only_codes(codes) -> list[str]:
    """The practice codes that name only the form of the answer, not what it does."""
    return [c.code for c in codes if c.code.casefold().strip(" .!") in FORM_ONLY_CODES]


def practice_codes_of(membership: Membership):
    return PracticeCode.objects.filter(membership=membership).order_by("created_at", "id")


def practice_codes_of_others(membership: Membership):
    """Other active participants' practice codes (shown only after one's own practice)."""
    return (
        PracticeCode.objects.filter(membership__workshop_id=membership.workshop_id, membership__withdrawn_at__isnull=True)
        .exclude(membership=membership)
        .select_related("membership")
        .order_by("membership__pseudonym", "created_at")
    )


def last_readiness_attempt(membership: Membership) -> ReadinessAttempt | None:
    return membership.readiness_attempts.order_by("-created_at").first()


def workshop_with_members(slug: str) -> Workshop:
    return Workshop.objects.prefetch_related(
        Prefetch("memberships", queryset=Membership.objects.order_by("pseudonym"))
    ).get(slug=slug)


def pseudonym_map(workshop: Workshop) -> dict[int, str]:
    return dict(Membership.objects.filter(workshop=workshop).values_list("id", "pseudonym"))


