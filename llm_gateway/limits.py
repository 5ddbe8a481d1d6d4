"""Limits shared by every process: per-member rates (Redis through Django's cache) and the
per-workshop token budget (counted in the database).

`hit` is the project's one rate counter: the chat (CHAT_RATE_LIMIT) and the live board's
commands (DISCUSSION_MEMBER_RATE, discussion/consumers.py) both count through it, per member,
so opening more tabs or sockets does not buy more.

Why not django-ratelimit (it was declared in pyproject.toml and never imported; it is dropped):
- Half of the counting happens in websocket consumers (the board's commands), where there is no
  HttpRequest; django-ratelimit's API (`@ratelimit`, `is_ratelimited(request, ...)`) is built
  around one, and its key functions read it.
- During a Redis outage the event must be let through (the edit or message is saved in the
  database; a restart must not stop a workshop) and logged once a minute. django-ratelimit
  4.1 catches only ValueError around its cache calls, so a Redis error becomes a server error
  (and a failed count denies unless RATELIMIT_FAIL_OPEN, then silently).
- `make run` uses the local-memory cache, which django-ratelimit's system check refuses
  (django_ratelimit.E003) unless silenced.
- The answer the caller needs is the seconds until the window resets, to tell the participant
  how long to wait; django-ratelimit gives it through `get_usage(request, ...)`, again on a request.
What remains is one fixed-window counter in the shared cache (SET NX + INCR, one round trip), about 40 lines.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.db.models import Sum
from django.db.models.functions import Coalesce
from redis.exceptions import RedisError

from calma.env import parse_rate as _parse_rate

log = logging.getLogger(__name__)
_outage_logged_at = 0.0


def parse_rate(value: str, name: str = "CHAT_RATE_LIMIT") -> tuple[int, int]:
    """'20/m' -> (20, 60); '100/5m' -> (100, 300)."""
    return _parse_rate(value, name)


def hit(scope: str, ident, rate: str) -> int | None:
    """Count one event of `scope` for `ident` against `rate` ('30/m'); return None when
    allowed, else the seconds until the window resets.

    Fixed window in the shared cache (atomic INCR in Redis), so the limit holds across
    every socket and every web process. While the cache cannot be reached (Redis restarting)
    the event is allowed: a short outage must not stop a workshop's edits and messages, which
    are saved in the database (logged once a minute).
    """
    limit, window = parse_rate(rate, scope)
    now = int(time.time())
    bucket = now // window
    key = f"{scope}:rate:{ident}:{window}:{bucket}"
    try:
        count = _count(key, window + 5)
    except (RedisError, OSError) as error:
        return _allow_during_outage(error)
    if count > limit:
        return max(1, (bucket + 1) * window - now)
    return None


def _count(key: str, timeout: int) -> int:
    """Add one to the counter `key` (created with `timeout`) and return it.

    With Redis: SET NX EX and INCR in one pipelined round trip (every chat message and board
    command counts here; two sequential cache calls were a visible share of the Send path in
    the profile of 50 simultaneous sends). Other caches (`make run`'s local memory): add, incr."""
    backend = getattr(cache, "_cache", None)
    if hasattr(backend, "get_client"):  # django.core.cache.backends.redis.RedisCache
        full_key = cache.make_and_validate_key(key)
        pipe = backend.get_client(full_key, write=True).pipeline(transaction=False)
        pipe.set(full_key, 0, ex=timeout, nx=True)
        pipe.incr(full_key)
        return int(pipe.execute()[1])
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=timeout)
        return 1


def _allow_during_outage(error: Exception) -> None:
    global _outage_logged_at
    if time.monotonic() - _outage_logged_at > 60:
        _outage_logged_at = time.monotonic()
        log.warning("rate limits not counted: the cache is unreachable (%s)", error.__class__.__name__)
    return None


def rate_check(membership_id: int) -> int | None:
    """Count one chat message of a member (CHAT_RATE_LIMIT)."""
    return hit("llm", membership_id, settings.CHAT_RATE_LIMIT)


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
