"""YAML written with the safe dumper only (no language-specific tags), streamed document by
document or list item by list item, so that nothing holds the whole file."""

from __future__ import annotations

import yaml

# The safe dumper (standard tags only), in its C implementation when libyaml is there (same output
# rules, several times faster); yaml.safe_dump's pure-Python SafeDumper otherwise.
SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump(data) -> str:
    return yaml.dump(data, Dumper=SafeDumper, allow_unicode=True, sort_keys=False, default_flow_style=False,
                     width=100)


def list_item(item) -> str:
    """One item of a top-level block sequence ("- ...\n"): concatenated items form a valid list."""
    return dump([item])
