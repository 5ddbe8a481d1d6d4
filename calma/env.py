"""Typed readers for environment variables.

Every reader refuses a malformed value with an ImproperlyConfigured error that names the
variable, the value and what was expected, so a typo in a deployment's env file stops the
process at start instead of silently turning into a default.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool = False) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a boolean: use one of 1/0, true/false, yes/no, on/off."
    )


def _env_number(name: str, default, convert, kind: str, minimum=None, maximum=None):
    """The number in `name` (`convert`ed; `kind` names it in the refusal), within the bounds given."""
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = convert(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not {kind}.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum {minimum}.")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is above the maximum {maximum}.")
    return number


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    return _env_number(name, default, int, "a whole number", minimum, maximum)


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    return _env_number(name, default, float, "a number", minimum)


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (the default when unset); anything else is refused, naming the choices."""
    value = env_str(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r}: use one of {', '.join(choices)}.")
    return value


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = _raw(name)
    if value is None or value == "":
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_url(name: str, *, schemes: tuple[str, ...], default: str = "") -> str:
    """A URL whose scheme is one of `schemes`; empty string when unset."""
    value = _raw(name)
    if value is None or value == "":
        return default
    parsed = urlparse(value)
    if parsed.scheme not in schemes or not (parsed.netloc or parsed.path):
        raise ImproperlyConfigured(
            f"{name} must be a URL starting with {' or '.join(s + '://' for s in schemes)}; "
            f"got {value!r}."
        )
    return value


_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")
_RATE_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(value: str, name: str = "rate") -> tuple[int, int]:
    """'20/m' -> (20, 60); '100/5m' -> (100, 300); '10/30s' -> (10, 30)."""
    match = _RATE_RE.match(value or "")
    if not match or int(match.group(1)) < 1 or match.group(2) == "0":
        raise ImproperlyConfigured(f"{name}={value!r} must look like 20/m, 100/h or 10/30s (at least 1).")
    count, multiple, unit = match.groups()
    return int(count), int(multiple or 1) * _RATE_UNIT[unit]


def env_rate(name: str, default: str) -> str:
    """A rate such as '30/m' (count per window), checked at start; returned as written."""
    value = env_str(name, default)
    parse_rate(value, name)
    return value
