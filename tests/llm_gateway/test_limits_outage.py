"""The shared rate counter while Redis is unreachable: a workshop goes on (edits and messages
are saved in the database), the outage is logged once, and counting resumes when it is back."""

from __future__ import annotations

import logging
import time

from llm_gateway import limits


def test_an_unreachable_cache_allows_and_logs_once(settings, caplog, monkeypatch):
    monkeypatch.setattr(limits, "_outage_logged_at", 0.0)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}  # nothing listens on port 1
    with caplog.at_level(logging.WARNING, logger="llm_gateway.limits"):
        assert [limits.hit("board", 1, "1/m") for _ in range(3)] == [None, None, None]
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1


def test_the_limit_holds_when_the_cache_answers(settings):

    import uuid

    ident = uuid.uuid4().hex
    assert limits.hit("board-test", ident, "2/m") is None
    assert limits.hit("board-test", ident, "2/m") is None
    assert limits.hit("board-test", ident, "2/m") is not None


def test_one_counter_in_redis_and_in_local_memory(settings):
    """The pipelined Redis counter and `make run`'s local-memory one count alike, and the Redis
    key expires with its window (a counter without a TTL would lock a member out for good)."""
    import uuid

    from django.core.cache import cache

    assert hasattr(cache._cache, "get_client"), "the test settings use Redis"
    if time.time() % 60 > 58:  # all four hits in one window
        time.sleep(2.5)
    ident = uuid.uuid4().hex
    bucket = int(time.time()) // 60
    redis_answers = [limits.hit("count-test", ident, "3/m") for _ in range(4)]
    full_key = cache.make_and_validate_key(f"count-test:rate:{ident}:60:{bucket}")
    ttl = cache._cache.get_client(full_key).ttl(full_key)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    local_answers = [limits.hit("count-test", ident, "3/m") for _ in range(4)]
    assert redis_answers[:3] == [None, None, None] and isinstance(redis_answers[3], int)
    assert local_answers[:3] == [None, None, None] and isinstance(local_answers[3], int)
    assert 0 < ttl <= 65
