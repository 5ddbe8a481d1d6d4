"""Reads for workshops: memberships, dashboard rows, invites, Familiarize views."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import timedelta

from django.db.models import Count, Prefetch
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.utils.translation import ngettext

from workshops import progress
from workshops.models import STAGE_ORDER, Invite, Membership, PracticeCode, ReadinessAttempt, Role, Stage, Workshop


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


# --- Facilitator dashboard --------------------------------------------------------------------

# Not done with the stage's task and idle this long: marked as behind even when most of the
# group is not done yet either. The facilitator sees the idle time of everyone anyway.
IDLE_AFTER = timedelta(minutes=10)
# Activity is recorded at most once a minute (services.SEEN_WRITE_INTERVAL): below this, a
# person counts as active now.
ACTIVE_WITHIN = timedelta(minutes=2)

SORTS = {
    "needs": gettext_lazy("Needs help first"),
    "pseudonym": gettext_lazy("Pseudonym"),
    "idle": gettext_lazy("Longest idle first"),
    "recent": gettext_lazy("Most recently active first"),
}
SHOWS = {
    "all": gettext_lazy("Everyone"),
    "behind": gettext_lazy("Behind only"),
    "notdone": gettext_lazy("Not done with this stage"),
}
VIEWS = {
    "stage": gettext_lazy("This stage's columns"),
    "all": gettext_lazy("All stages"),
}


def _n_codes(n: int) -> str:
    return ngettext("%(n)d code", "%(n)d codes", n) % {"n": n}


def _n_tries(n: int) -> str:
    return ngettext("%(n)d try", "%(n)d tries", n) % {"n": n}


def familiarize_progress(workshop: Workshop) -> dict[int, dict]:
    """Dashboard columns of the Familiarize stage, per participant."""
    rows = (
        Membership.objects.filter(workshop=workshop, role=Role.PARTICIPANT)
        .annotate(practice_count=Count("practice_codes", distinct=True),
                  readiness_tries=Count("readiness_attempts", distinct=True))
        .values_list("id", "consented_at", "orientation_done_at", "practice_done_at", "practice_count",
                     "readiness_passed_at", "readiness_tries")
    )
    out = {}
    for mid, consented, orientation, practice, codes, passed, tries in rows:
        out[mid] = {
            "consented": _("yes") if consented else _("no"),
            "orientation": _("read") if orientation else _("not yet"),
            "practice": _("done") if practice else (_n_codes(codes) if codes else _("not yet")),
            "ready": _("passed") if passed else (_n_tries(tries) if tries else _("not yet")),
            # Not columns: what familiarize_status reads.
            "_orientation": orientation is not None, "_practice": practice is not None, "_codes": codes,
            "_passed": passed is not None, "_tries": tries,
        }
    return out


def familiarize_status(workshop: Workshop, member_ids, values) -> progress.StageStatus:
    """Familiarize: done once a participant has passed the readiness check."""
    members = {}
    for mid in member_ids:
        v = values.get(mid, {})
        if v.get("_passed"):
            step = _("Ready: passed the readiness check")
        elif v.get("_practice"):
            tries = v.get("_tries", 0)
            step = _("Readiness check") + (" · " + _n_tries(tries) if tries else "")
        elif v.get("_orientation"):
            codes = v.get("_codes", 0)
            step = _("Practice") + (" · " + _n_codes(codes) if codes else "")
        else:
            step = _("Orientation")
        members[mid] = progress.Status(step, bool(v.get("_passed")))
    return progress.StageStatus(_("passed the readiness check"), members)


FAMILIARIZE_COLUMNS = [
    ("consented", gettext_lazy("Consented")), ("orientation", gettext_lazy("Orientation")),
    ("practice", gettext_lazy("Practice")), ("ready", gettext_lazy("Ready")),
]
FAMILIARIZE_PAGES = {
    "workshops:home": gettext_lazy("Workshop home"),
    "workshops:consent": gettext_lazy("Consent"),
    "workshops:orientation": gettext_lazy("Orientation"),
    "workshops:practice": gettext_lazy("Practice"),
    "workshops:readiness": gettext_lazy("Readiness check"),
    "workshops:withdraw": gettext_lazy("Withdraw page"),
}


def idle_text(idle: timedelta | None) -> str:
    """"active now", "idle 6 min", "idle 1 h 5 min", "idle 2 days"; "not seen yet" for None."""
    if idle is None:
        return _("not seen yet")
    if idle < ACTIVE_WITHIN:
        return _("active now")
    minutes = int(idle.total_seconds() // 60)
    if minutes < 60:
        return _("idle %(m)d min") % {"m": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return _("idle %(h)d h %(m)d min") % {"h": hours, "m": minutes} if minutes else _("idle %(h)d h") % {"h": hours}
    days = hours // 24
    return ngettext("idle %(d)d day", "idle %(d)d days", days) % {"d": days}


@dataclass
class DashboardRow:
    membership: Membership
    step: str
    done: bool | None
    behind: bool = False
    reasons: list[str] = dc_field(default_factory=list)
    idle: timedelta | None = None
    idle_text: str = ""
    long_idle: bool = False
    page: str = ""
    cells: list = dc_field(default_factory=list)  # this stage's columns: [(label, value)]
    stages: list = dc_field(default_factory=list)  # all stages: [(stage label, [(label, value)], current)]


def _pseudonym_key(pseudonym: str):
    digits = "".join(ch for ch in pseudonym if ch.isdigit())
    return (pseudonym.rstrip("0123456789"), int(digits) if digits else 0, pseudonym)


def dashboard(workshop: Workshop, *, sort: str = "needs", show: str = "all", query: str = "", view: str = "stage",
              now=None) -> dict:
    """Everything the facilitator's participant table shows, sorted and filtered.

    Per participant: where they are in the current stage (step), whether they are done with the
    stage's task, last activity and page, and a "behind" marker with its reasons: not done while
    most of the group is, or not done and idle for IDLE_AFTER. Withdrawn people come last and
    are never behind. Bad sort/show/view values fall back to the defaults.
    """
    now = now or timezone.now()
    sort = sort if sort in SORTS else "needs"
    show = show if show in SHOWS else "all"
    view = view if view in VIEWS else "stage"
    query = query.strip().casefold()[:80]
    members = list(Membership.objects.filter(workshop=workshop, role=Role.PARTICIPANT).order_by("pseudonym"))
    active_ids = [m.id for m in members if not m.is_withdrawn]

    current = progress.provider_for_stage(workshop.stage)
    if current is None:
        view = "all"  # Closed: no stage of its own, show everything
    shown = progress.providers() if view == "all" else [current]
    values: dict[str, dict[int, dict]] = {p.stage: p.func(workshop) for p in shown}
    status = None
    if current is not None and current.status is not None:
        status = current.status(workshop, active_ids, values[current.stage])
    goal = status.goal if status else ""

    rows: list[DashboardRow] = []
    for m in members:
        s = status.members.get(m.id) if status else None
        if m.is_withdrawn:
            row = DashboardRow(m, _("Withdrawn"), None)
        elif not m.has_consented:
            row = DashboardRow(m, _("Has not agreed to the consent form yet"), False if status and goal else None)
        elif s is not None:
            row = DashboardRow(m, s.step, s.done if goal else None)
        else:
            row = DashboardRow(m, str(Stage(workshop.stage).label), None)
        last = m.last_seen_at or m.consented_at or m.joined_at
        row.idle = max(now - last, timedelta(0)) if last else None
        row.idle_text = idle_text(row.idle)
        # Idle matters while there is something to do: a person who is done is waiting, not stuck.
        row.long_idle = (workshop.stage != Stage.CLOSED and not m.is_withdrawn and row.done is not True
                         and row.idle is not None and row.idle >= IDLE_AFTER)
        row.page = progress.page_label(m.last_seen_page) if m.last_seen_page else ""
        if current is not None:
            v = values[current.stage].get(m.id, {})
            row.cells = [(label, v.get(key, 0)) for key, label in current.columns]  # no row: nothing yet
        for p in shown if view == "all" else []:
            v = values[p.stage].get(m.id, {})
            stage_label = str(Stage(p.stage).label)
            row.stages.append((stage_label, [(label, v.get(key, 0)) for key, label in p.columns], p is current))
        rows.append(row)

    counted = [r for r in rows if r.done is not None]
    done_count = sum(1 for r in counted if r.done)
    most_done = bool(counted) and done_count * 2 > len(counted)
    for r in rows:
        if r.done is False:
            if most_done:
                r.reasons.append(_("%(done)d of %(n)d are done") % {"done": done_count, "n": len(counted)})
            if r.long_idle:
                r.reasons.append(r.idle_text)
            r.behind = bool(r.reasons)

    summary = {
        "participants": len(active_ids),
        "done": done_count,
        "counted": len(counted),
        "behind": sum(1 for r in rows if r.behind),
        "idle": sum(1 for r in rows if r.long_idle),
        "withdrawn": len(members) - len(active_ids),
    }

    if show == "behind":
        rows = [r for r in rows if r.behind]
    elif show == "notdone":
        rows = [r for r in rows if r.done is False]
    if query:
        rows = [r for r in rows
                if query in r.membership.pseudonym.casefold() or query in r.membership.display_name.casefold()]

    never = timedelta.max
    if sort == "pseudonym":
        key = lambda r: _pseudonym_key(r.membership.pseudonym)  # noqa: E731
    elif sort == "idle":
        key = lambda r: (-(r.idle or never).total_seconds(), _pseudonym_key(r.membership.pseudonym))  # noqa: E731
    elif sort == "recent":
        key = lambda r: ((r.idle or never).total_seconds(), _pseudonym_key(r.membership.pseudonym))  # noqa: E731
    else:
        key = lambda r: (not r.behind, r.done is not False, -(r.idle or timedelta(0)).total_seconds(),  # noqa: E731
                         _pseudonym_key(r.membership.pseudonym))
    rows.sort(key=lambda r: (r.membership.is_withdrawn, key(r)))

    return {
        "rows": rows,
        "columns": [label for _key, label in current.columns] if current is not None and view == "stage" else [],
        "stage_columns": [str(Stage(p.stage).label) for p in progress.providers()],
        "current_stage_label": str(Stage(workshop.stage).label),
        "goal": goal,
        "summary": summary,
        "sort": sort, "show": show, "query": query, "view": view,
        "idle_after_minutes": int(IDLE_AFTER.total_seconds() // 60),
    }


# What participants see when the workshop enters a stage, and what closes when it leaves one.
STAGE_OPENS = {
    Stage.FAMILIARIZE: gettext_lazy(
        "The workshop home lists the orientation, a practice round of open coding and the readiness check."),
    Stage.INTERACT: gettext_lazy(
        "The chat with the workshop's models opens: they start conversations and send messages."),
    Stage.REFLECT: gettext_lazy(
        "Coding opens: they highlight excerpts of their own and the baseline conversations and write codes, "
        "then group their codes into attributes (focused coding)."),
    Stage.DISCUSS: gettext_lazy(
        "The live discussion board opens. It waits at “not started” until you start segment 1 there."),
    Stage.CLOSED: gettext_lazy(
        "A thank-you page; the discussion results and their own coding stay readable. Nothing can be changed "
        "any more and invite links stop working."),
}


def _stage_closes(current: str, target: str) -> list[str]:
    out = []
    if current == Stage.FAMILIARIZE:
        out.append(_("The practice round and the readiness check close (the orientation stays readable)."))
    elif current == Stage.INTERACT:
        out.append(_("The chat closes: no new messages can be sent."))
    elif current == Stage.REFLECT:
        if target in (Stage.DISCUSS, Stage.CLOSED):
            out.append(_("Coding becomes read-only: codes and attributes can no longer be changed."))
        else:
            out.append(_("Coding closes until the Reflect stage is opened again."))
    elif current == Stage.DISCUSS:
        out.append(_("The live discussion board closes."))
    return out


def stage_change_preview(workshop: Workshop, target: str) -> dict:
    """What the stage confirmation page says: what participants will see in `target`, what
    closes, and who is not done with the current stage's task (same rule as the dashboard)."""
    board = dashboard(workshop, sort="pseudonym")
    not_done = [r.membership.pseudonym for r in board["rows"] if r.done is False]
    order = [s.value for s in STAGE_ORDER]
    return {
        "current": Stage(workshop.stage),
        "target": Stage(target),
        "same": target == workshop.stage,
        "backwards": order.index(target) < order.index(workshop.stage),
        "opens": STAGE_OPENS[Stage(target)],
        "closes": _stage_closes(workshop.stage, target),
        "goal": board["goal"],
        "participants": board["summary"]["participants"],
        "counted": board["summary"]["counted"],
        "not_done": not_done,
        "behind": [r.membership.pseudonym for r in board["rows"] if r.behind],
    }


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


