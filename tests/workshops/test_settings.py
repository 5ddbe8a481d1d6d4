"""Settings parsing: typed readers refuse bad values loudly; production needs a real key."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from calma import env

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("raw,expected", [("1", True), ("true", True), ("YES", True), ("on", True),
                                          ("0", False), ("false", False), ("no", False), ("", False)])
def test_env_bool_accepts_known_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("X_BOOL", raw)
    assert env.env_bool("X_BOOL", default=not expected if raw else False) is expected


def test_env_bool_refuses_unknown(monkeypatch):
    monkeypatch.setenv("X_BOOL", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_BOOL='maybe' is not a boolean"):
        env.env_bool("X_BOOL")


def test_env_int_bounds_and_garbage(monkeypatch):
    monkeypatch.setenv("X_INT", "12")
    assert env.env_int("X_INT", 3, minimum=1, maximum=20) == 12
    monkeypatch.setenv("X_INT", "twelve")
    with pytest.raises(ImproperlyConfigured, match="not a whole number"):
        env.env_int("X_INT", 3)
    monkeypatch.setenv("X_INT", "0")
    with pytest.raises(ImproperlyConfigured, match="below the minimum 1"):
        env.env_int("X_INT", 3, minimum=1)
    monkeypatch.delenv("X_INT")
    assert env.env_int("X_INT", 3) == 3


def test_env_rate_is_checked_at_start(monkeypatch):
    monkeypatch.setenv("X_RATE", "10/30s")
    assert env.env_rate("X_RATE", "60/m") == "10/30s" and env.parse_rate("10/30s") == (10, 30)
    assert env.parse_rate("60/m") == (60, 60) and env.parse_rate("100/5m") == (100, 300)
    for bad in ("abc", "0/m", "10/0m", "10 per minute", "-1/m"):
        monkeypatch.setenv("X_RATE", bad)
        with pytest.raises(ImproperlyConfigured, match="X_RATE="):
            env.env_rate("X_RATE", "60/m")


def test_env_url_checks_scheme(monkeypatch):
    monkeypatch.setenv("X_URL", "mysql://db/x")
    with pytest.raises(ImproperlyConfigured, match="must be a URL starting with postgres://"):
        env.env_url("X_URL", schemes=("postgres",))
    monkeypatch.setenv("X_URL", "postgres://u@h:5432/db")
    assert env.env_url("X_URL", schemes=("postgres",)) == "postgres://u@h:5432/db"


def test_env_choice(monkeypatch):
    assert env.env_choice("X_CHOICE", "b", ("a", "b")) == "b"
    monkeypatch.setenv("X_CHOICE", "a")
    assert env.env_choice("X_CHOICE", "b", ("a", "b")) == "a"
    monkeypatch.setenv("X_CHOICE", "c")
    with pytest.raises(ImproperlyConfigured, match="X_CHOICE='c': use one of a, b."):
        env.env_choice("X_CHOICE", "b", ("a", "b"))


def test_env_list(monkeypatch):
    monkeypatch.setenv("X_LIST", " a.example, b.example ,,")
    assert env.env_list("X_LIST") == ["a.example", "b.example"]


def _load_settings(extra_env: dict) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {
        "DEBUG", "SECRET_KEY", "CALMA_TESTING", "DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}}
    base.update(extra_env)
    code = ("import django, json; from django.conf import settings; django.setup(); "
            "print(json.dumps({'db': settings.DATABASES['default']['ENGINE'], "
            "'layer': settings.CHANNEL_LAYERS['default']['BACKEND'], 'eager': settings.CELERY_TASK_ALWAYS_EAGER, "
            "'chat': settings.CHANNEL_LAYERS['chat']['BACKEND'], "
            "'prefixes': sorted(l.get('CONFIG', {}).get('prefix', '') for l in settings.CHANNEL_LAYERS.values()), "
            "'cache': settings.CACHES['default']['BACKEND'], 'secure': settings.SESSION_COOKIE_SECURE}))")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**base, "DJANGO_SETTINGS_MODULE": "calma.settings"}, timeout=60)


def test_embedded_defaults_without_variables():
    result = _load_settings({"DEBUG": "1"})
    assert result.returncode == 0, result.stderr
    assert '"db": "django.db.backends.sqlite3"' in result.stdout
    assert '"layer": "channels.layers.InMemoryChannelLayer"' in result.stdout
    assert '"chat": "channels.layers.InMemoryChannelLayer"' in result.stdout
    assert '"eager": true' in result.stdout


def test_services_from_urls():
    result = _load_settings({"DEBUG": "1", "DATABASE_URL": "postgres://u@127.0.0.1:5432/x", "REDIS_URL": "redis://127.0.0.1:6379/3",
                             "CHANNEL_PREFIX": "calma"})
    assert result.returncode == 0, result.stderr
    assert '"db": "django.db.backends.postgresql"' in result.stdout
    assert '"layer": "channels_redis.core.RedisChannelLayer"' in result.stdout
    # The chat's deltas: one PUBLISH each, on a prefix of their own (not the board's, not the default's).
    assert '"chat": "channels_redis.pubsub.RedisPubSubChannelLayer"' in result.stdout
    assert '"prefixes": ["calma", "calma.board.", "calma.chat."]' in result.stdout
    assert '"cache": "django.core.cache.backends.redis.RedisCache"' in result.stdout
    assert '"eager": false' in result.stdout


def test_production_with_real_key_has_secure_cookies():
    result = _load_settings({"SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "calma.example.org"})
    assert result.returncode == 0, result.stderr
    assert '"secure": true' in result.stdout


@pytest.mark.parametrize(("env", "message"), [
    ({}, "SECRET_KEY is not set"),  # production, without a key
    ({"SECRET_KEY": "short"}, "at least 32 characters"),
    ({"DEBUG": "perhaps"}, "DEBUG='perhaps' is not a boolean"),
    # Live jobs would be taken for dead ones and re-queued under a running worker.
    ({"DEBUG": "1", "JOB_HEARTBEAT_SECONDS": "10", "JOB_STALE_SECONDS": "15"},
     "JOB_STALE_SECONDS=15 must be at least twice JOB_HEARTBEAT_SECONDS=10"),
    # discussion/conf.py only reads settings: a typo stops the process at start, not at the
    # first socket or map job.
    ({"DEBUG": "1", "DISCUSSION_SOCKET_RATE": "twenty"}, "DISCUSSION_SOCKET_RATE='twenty' is not a whole number"),
    ({"DEBUG": "1", "DISCUSSION_SOCKET_WINDOW": "0"}, "DISCUSSION_SOCKET_WINDOW=0.0 is below the minimum 0.1"),
    ({"DEBUG": "1", "DISCUSSION_EMBED_TEXT": "labels"}, "DISCUSSION_EMBED_TEXT='labels': use one of"),
    ({"DEBUG": "1", "DISCUSSION_BOARD_LAYER": "kafka"}, "DISCUSSION_BOARD_LAYER='kafka': use one of pubsub, redis."),
    ({"DEBUG": "1", "DISCUSSION_EMBEDDING": "bert"}, "DISCUSSION_EMBEDDING='bert': use one of auto, minilm"),
    ({"DEBUG": "1", "DISCUSSION_UMAP_EPOCHS": "5"}, "DISCUSSION_UMAP_EPOCHS=5 is below the minimum 10"),
    ({"DEBUG": "1", "HTTP_CONCURRENCY": "-1"}, "HTTP_CONCURRENCY=-1 is below the minimum 0"),
])
def test_a_bad_setting_stops_start(env, message):
    result = _load_settings(env)
    assert result.returncode != 0
    assert message in result.stderr


def test_discuss_settings_read_through_conf(settings):
    from discussion import conf

    settings.DISCUSSION_SOCKET_RATE, settings.DISCUSSION_SOCKET_WINDOW = 7, 2.5
    settings.DISCUSSION_UMAP_EPOCHS = 123
    assert conf.socket_rate() == (7, 2.5) and conf.umap_epochs() == 123
    assert conf.embed_text_mode() == "label_definition" and conf.torch_threads() == 1
