"""Test set-up: the suite runs against the real Postgres and Redis (see `make test`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.register_assert_rewrite("tests.fixtures_llm")  # imported here before pytest_plugins loads it
from tests.fixtures_llm import free_port as _free_port  # noqa: E402, F401 (tests import it from here)
from tests.fixtures_llm import stop_process  # noqa: E402

pytest_plugins = ["tests.fixtures_llm"]


def pytest_configure(config):
    db = os.environ.get("DATABASE_URL", "")
    redis = os.environ.get("REDIS_URL", "")
    if not db.startswith(("postgres://", "postgresql://")) or not redis.startswith("redis://"):
        raise pytest.UsageError(
            "The test suite runs against real Postgres and Redis: set DATABASE_URL=postgres://... and "
            "REDIS_URL=redis://... (`make test` does this and starts the services)."
        )


@pytest.fixture(autouse=True)
def _no_axes_lockouts(settings):
    # Login throttling has its own test; elsewhere repeated logins must not lock people out.
    settings.AXES_ENABLED = False


@pytest.fixture(autouse=True)
def _fresh_vector_memory():
    # The map engine's per-process vector copies outlive a test's rolled-back Embedding rows.
    yield
    from discussion import mapping

    mapping.forget_vectors()


@pytest.fixture
def celery_eager():
    """Run tasks inline (tests wrap calls in django_capture_on_commit_callbacks(execute=True),
    because tasks are queued on commit)."""
    from calma.celery import app

    old = app.conf.task_always_eager
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = old


def delete_cache_keys(match: str) -> None:
    """Delete the keys of the shared cache (Redis) matching `match`: counters keyed by ids that a
    fresh test database hands out again."""
    from django.core.cache import cache

    client = cache._cache.get_client(write=True)
    for key in client.scan_iter(match=match):
        client.delete(key)


@pytest.fixture
def client_for(client):
    """Log a membership's user into the Django test client."""

    def login(membership_or_user):
        user = getattr(membership_or_user, "user", membership_or_user)
        client.force_login(user)
        return client

    return login


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def subprocess_database_url(settings) -> str:
    """DATABASE_URL naming the test database pytest-django made, for a process the test starts."""
    return urlparse(os.environ["DATABASE_URL"])._replace(path="/" + settings.DATABASES["default"]["NAME"]).geturl()


CELERY = str(Path(sys.executable).parent / "celery")


def celery_env(settings, **extra: str) -> dict[str, str]:
    """The environment of a celery process on the test database: tasks are not run eagerly, the
    embedding model is not downloaded, the log is not buffered; `extra` on top."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update({"DATABASE_URL": subprocess_database_url(settings), "CELERY_TASK_ALWAYS_EAGER": "0",
                "CALMA_TESTING": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **extra})
    return env


@pytest.fixture
def asgi_server(transactional_db, settings):
    """The real app under uvicorn (HTTP + websockets) on the test database and Redis.

    Data written by the test is visible to it because the test runs with transactional_db.
    Yields the base URL.
    """
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DATABASE_URL": subprocess_database_url(settings),
        "CALMA_TESTING": "1",
        "DEBUG": "0",
        "SECURE_COOKIES": "0",
        "AXES_ENABLED": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    }
    extra_env = getattr(settings, "TEST_SERVER_ENV", {})
    env.update(extra_env)
    log_path = ROOT / f".test-server-{port}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "calma.asgi:application", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, proc=proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop_process(proc)
    if log_path.exists():
        text = log_path.read_text()
        log_path.unlink()
        if "Traceback" in text:
            print(text[-5000:])
