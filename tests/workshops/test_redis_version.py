"""redis-py's per-connection package-metadata scan is done once per process (workshops.apps)."""

from __future__ import annotations

import importlib.metadata

import redis.asyncio


def test_new_redis_connections_do_not_rescan_package_metadata(monkeypatch):
    calls = []
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: calls.append(name) or real(name))
    for _ in range(5):
        redis.asyncio.Connection(host="127.0.0.1")
    assert calls.count("redis") <= 1  # without the cache: once per connection
