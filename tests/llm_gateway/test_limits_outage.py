"""The shared rate counter while Redis is unreachable: a workshop goes on (edits and messages
are saved in the database), the outage is logged once, and counting resumes when it is back."""

from __future__ import annotations

import logging

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
