"""The researcher page's list of exports; each app registers its own in AppConfig.ready()."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Export:
    title: str
    description: str
    url: Callable  # url(workshop) -> str


_exports: list[Export] = []


def register(title: str, description: str, url: Callable) -> None:
    _exports.append(Export(title, description, url))


def available(workshop) -> list[dict]:
    return [{"title": e.title, "description": e.description, "url": e.url(workshop)} for e in _exports]
