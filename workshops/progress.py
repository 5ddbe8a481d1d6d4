"""Dashboard progress columns contributed by each app.

An app registers a provider in its AppConfig.ready():
    register("interact", [("conversations", _("Conversations")), ...], func)
where func(workshop) returns {membership_id: {"conversations": 3, ...}}. The facilitator
dashboard shows every registered column next to the Familiarize progress.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Provider:
    name: str
    columns: list[tuple[str, str]]
    func: Callable


_providers: dict[str, Provider] = {}


def register(name: str, columns: list[tuple[str, str]], func: Callable) -> None:
    _providers[name] = Provider(name, columns, func)


def providers() -> list[Provider]:
    return list(_providers.values())
