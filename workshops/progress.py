"""Dashboard progress columns contributed by each app.

An app registers the provider of its stage in its AppConfig.ready():
    register("interact", [("conversations", _("Conversations")), ...], func,
             status=status_func, pages={"llm_gateway:index": _("Chat")})
where func(workshop) returns {membership_id: {"conversations": 3, ...}}. The facilitator
dashboard shows the columns of the current stage's provider (all of them on request).

`status(workshop, member_ids, values)` says, for the stage, what "done" means now and where
each person is: it returns a StageStatus whose `members` maps every id in member_ids to a
Status(step, done). `done` is None when the stage has no individual task at the moment (a
live discussion segment the group does together): nobody is then marked as behind for it.

`pages` names the app's participant pages (URL names) for "last seen on ...".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Status:
    step: str
    done: bool | None


@dataclass(frozen=True)
class StageStatus:
    goal: str  # what a participant has done when `done` is True, e.g. "passed the readiness check"
    members: dict[int, Status] = field(default_factory=dict)


@dataclass(frozen=True)
class Provider:
    stage: str  # a workshops.models.Stage value; one provider per stage
    columns: list[tuple[str, str]]
    func: Callable
    status: Callable | None = None
    pages: dict[str, str] = field(default_factory=dict)


_providers: dict[str, Provider] = {}


def register(
    stage: str,
    columns: list[tuple[str, str]],
    func: Callable,
    *,
    status: Callable | None = None,
    pages: dict[str, str] | None = None,
) -> None:
    """The provider of `stage` (a workshops.models.Stage value)."""
    _providers[stage] = Provider(stage, columns, func, status, dict(pages or {}))


def providers() -> list[Provider]:
    """Providers in stage order."""
    from workshops.models import STAGE_ORDER

    order = {s.value: i for i, s in enumerate(STAGE_ORDER)}
    return sorted(_providers.values(), key=lambda p: order.get(p.stage, len(order)))


def provider_for_stage(stage: str) -> Provider | None:
    return _providers.get(stage)


def page_label(view_name: str) -> str:
    """A participant page's name for people ("Focused coding"), or "" if no app named it."""
    for p in _providers.values():
        if view_name in p.pages:
            return str(p.pages[view_name])
    return ""
