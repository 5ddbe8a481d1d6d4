"""Limits shared by every process: per-participant message rate (Redis through Django's
cache) and the per-workshop token budget (counted in the database)."""

from __future__ import annotations

import re
import time

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Sum
from django.db.models.functions import Coalesce

_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(value: str) -> tuple[int, int]:
    """'20/m' -> (20, 60); '100/5m' -> (100, 300)."""
    match = _RATE_RE.match(value or "")
    if not match:
        raise ImproperlyConfigured(f"CHAT_RATE_LIMIT={value!r} must look like 20/m, 100/h or 10/30s.")
    count, multiple, unit = match.groups()
    return int(count), int(multiple or 1) * _UNIT[unit]


def rate_check(membership_id: int) -> int | None:
    """Count one message; return None when allowed, else seconds until the window resets.

    Fixed window in the shared cache (atomic INCR in Redis), so the limit holds across
    every web process.
    """
    limit, window = parse_rate(settings.CHAT_RATE_LIMIT)
    now = int(time.time())
    bucket = now // window
    key = f"llm:rate:{membership_id}:{window}:{bucket}"
    cache.add(key, 0, timeout=window + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window + 5)
        count = 1
    if count > limit:
        return (bucket + 1) * window - now
    return None


def tokens_used(workshop) -> int:
    """Tokens used by the workshop's answers. Where an endpoint reports no usage, the
    completion is counted by streamed chunks and the prompt is not counted."""
    from llm_gateway.models import Message

    totals = Message.objects.filter(conversation__workshop=workshop, role="assistant").aggregate(
        prompt=Coalesce(Sum("prompt_tokens"), 0),
        completion=Coalesce(Sum(Coalesce("completion_tokens", "stream_chunks")), 0),
    )
    return totals["prompt"] + totals["completion"]


def budget_left(workshop) -> int | None:
    """Tokens left in the workshop's budget, or None when it has none."""
    from llm_gateway.models import GatewaySettings

    config = GatewaySettings.objects.filter(workshop=workshop).first()
    if config is None or config.token_budget is None:
        return None
    return max(0, config.token_budget - tokens_used(workshop))
