"""YAML written with the safe dumper only (no language-specific tags), streamed document by
document or list item by list item, so that nothing holds the whole file."""

from __future__ import annotations

import yaml


def dump(data) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, default_flow_style=False, width=100)


def list_item(item) -> str:
    """One item of a top-level block sequence ("- ...\n"): concatenated items form a valid list."""
    return dump([item])
