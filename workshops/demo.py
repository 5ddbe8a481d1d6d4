"""What each app adds to the demo workshops of `manage.py seed_demo`.

Each app registers its part in its AppConfig.ready() (as with exports, progress and jobs), so
the base app's command imports no upper app:

- `on_every_workshop(hook, no_model_notice=None)`: `hook(workshop=, endpoint_keys=, stdout=)` runs
  for every demo workshop on every run (idempotent) and returns the model endpoint keys the
  workshop offers; `no_model_notice` is printed when no hook offered any.
- `on_stage(stage, hook)`: `hook(workshop=, facilitator=, stdout=)` runs once, when a new demo
  workshop is walked into `stage`. Hooks of one stage run in registration order, i.e. in the
  order of INSTALLED_APPS (the gateway's conversations before the coding of them).
"""

from __future__ import annotations

from collections.abc import Callable

_every_workshop: list[Callable] = []
_no_model_notices: list[str] = []
_stage_hooks: dict[str, list[Callable]] = {}


def on_every_workshop(hook: Callable, *, no_model_notice: str | None = None) -> None:
    _every_workshop.append(hook)
    if no_model_notice:
        _no_model_notices.append(no_model_notice)


def on_stage(stage: str, hook: Callable) -> None:
    _stage_hooks.setdefault(str(stage), []).append(hook)


def every_workshop_hooks() -> list[Callable]:
    return list(_every_workshop)


def stage_hooks(stage: str) -> list[Callable]:
    return list(_stage_hooks.get(str(stage), []))


def no_model_notices() -> list[str]:
    return list(_no_model_notices)
