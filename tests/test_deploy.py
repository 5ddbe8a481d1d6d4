"""docker-compose.yml cannot run here (no Docker engine), so run the commands it runs.

Each service's command is taken from the compose file itself and started against the test
Postgres and Redis with production settings (DEBUG off, a real secret key).
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import yaml

from tests.conftest import ROOT, _free_port, wait_for_port
from tests.fixtures_llm import stop_process

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_compose_declares_the_production_stack():
    assert set(SERVICES) == {"postgres", "redis", "migrate", "web", "worker", "beat"}
    assert SERVICES["postgres"]["healthcheck"]["test"][0] == "CMD-SHELL"
    assert "postgres-data:/var/lib/postgresql/data" in SERVICES["postgres"]["volumes"]
    assert "postgres-data" in COMPOSE["volumes"]
    for name in ("migrate", "web", "worker", "beat"):
        service = SERVICES[name]
        assert service["env_file"] == ".env"
        assert service["environment"]["DATABASE_URL"].startswith("postgres://")
        assert service["environment"]["REDIS_URL"].startswith("redis://redis:6379")
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert SERVICES["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    example = (ROOT / ".env.example").read_text()
    for var in ("SECRET_KEY", "POSTGRES_PASSWORD", "ALLOWED_HOSTS", "LLM_ENDPOINTS"):
        assert f"{var}=" in example


@pytest.fixture
def prod_env(transactional_db, settings, tmp_path):
    db = settings.DATABASES["default"]
    url = urlparse(os.environ["DATABASE_URL"])
    env = {k: v for k, v in os.environ.items() if k not in {"CALMA_TESTING", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update({
        "DATABASE_URL": url._replace(path="/" + db["NAME"]).geturl(),
        "SECRET_KEY": "a-production-secret-key-for-the-deploy-test-0123456789",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DEBUG": "0",
        "STATIC_ROOT": str(tmp_path / "static"),
        "CELERY_TASK_ALWAYS_EAGER": "0",
    })
    return env


def _run(cmd, env, timeout=300):
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _python_cmd(cmd: list[str]) -> list[str]:
    """The compose command, run with this virtualenv's interpreter and tools."""
    if cmd[0] == "python":
        return [sys.executable, *cmd[1:]]
    return [sys.executable, "-m", cmd[0], *cmd[1:]]


def test_migrate_and_web_commands_serve_healthz_in_production_mode(prod_env):
    migrate = _run(_python_cmd(SERVICES["migrate"]["command"]), prod_env)
    assert migrate.returncode == 0, migrate.stderr
    # The Dockerfile collects static files at build time with production settings.
    collect = _run([sys.executable, "manage.py", "collectstatic", "--noinput"], prod_env)
    assert collect.returncode == 0, collect.stderr
    assert list(Path(prod_env["STATIC_ROOT"]).glob("css/app.*.css")), "hashed static files expected"
    deploy_check = _run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "ERROR"], prod_env)
    assert deploy_check.returncode == 0, deploy_check.stderr

    port = _free_port()
    cmd = _python_cmd(SERVICES["web"]["command"])
    cmd[cmd.index("--host") + 1] = "127.0.0.1"
    cmd[cmd.index("--port") + 1] = str(port)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=prod_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(port, timeout=60, proc=proc)
        health = None
        for _ in range(50):
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert health is not None and health.status_code == 200, health and health.text
        data = health.json()
        assert data["database"]["vendor"] == "postgresql"
        assert data["channel_layer"]["backend"] == "RedisChannelLayer"
        assert data["broker"] == {"ok": True, "mode": "celery"}
        page = httpx.get(f"http://127.0.0.1:{port}/login/", timeout=10)
        assert page.status_code == 200
        cookie = page.headers.get("set-cookie", "")
        assert "csrftoken=" in cookie and "Secure" in cookie  # secure cookies in production
        css = page.text.split('href="/static/css/app.')[1].split('"')[0]
        static = httpx.get(f"http://127.0.0.1:{port}/static/css/app.{css}", timeout=10)
        assert static.status_code == 200 and "max-age" in static.headers.get("cache-control", "")
        # A browser's idle keep-alive connection outlives a participant's pause: with uvicorn's
        # default (5 s) the server closed it just as the browser reused it, and the Send on it
        # was lost (ReadError, question never stored: benchmarks/gateway_concurrency.py).
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/healthz")
        assert conn.getresponse().read() and conn.sock is not None
        first_socket = conn.sock
        time.sleep(6)
        conn.request("GET", "/healthz")  # on the same connection (http.client reopens only a closed one it knows of)
        assert conn.sock is first_socket and conn.getresponse().status == 200
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_worker_command_starts_and_answers_ping(prod_env):
    cmd = _python_cmd(SERVICES["worker"]["command"])
    cmd += ["--hostname", f"deploytest-{os.getpid()}@%h"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=prod_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        replies = ""
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            ping = _run([sys.executable, "-m", "celery", "-A", "calma", "inspect", "ping",
                         "-d", f"deploytest-{os.getpid()}@{os.uname().nodename}", "--timeout", "2"], prod_env, timeout=60)
            replies = ping.stdout
            if "pong" in replies:
                break
            time.sleep(1)
        assert "pong" in replies
    finally:
        stop_process(proc, timeout=30)


def test_beat_command_sends_the_periodic_sweeps(prod_env, tmp_path):
    """The beat service runs the one schedule (CELERY_BEAT_SCHEDULE): the job sweeper and the
    stale-answer sweep are sent to the broker on their intervals."""
    cmd = _python_cmd(SERVICES["beat"]["command"])
    schedule = cmd.index("--schedule") + 1
    assert cmd[schedule].startswith("/tmp/")  # writable by the image's non-root user
    cmd[schedule] = str(tmp_path / "celerybeat-schedule")
    env = {**prod_env, "JOB_SWEEP_SECONDS": "1", "LLM_SWEEP_SECONDS": "1"}
    log_path = tmp_path / "beat.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 120
            wanted = ("Sending due task sweep-jobs (workshops.tasks.sweep_jobs)",
                      "Sending due task sweep-answers (llm_gateway.tasks.sweep_answers)")
            text = ""
            while time.monotonic() < deadline:
                text = log_path.read_text()
                if all(w in text for w in wanted) or proc.poll() is not None:
                    break
                time.sleep(0.5)
            assert all(w in text for w in wanted), text[-3000:]
        finally:
            stop_process(proc, timeout=30)
    from calma.celery import app

    app.control.purge()  # the sent sweeps are not for another test's worker


WORKER_ONLY = ("torch", "umap", "sentence_transformers", "transformers", "sklearn", "numba", "plotly")


def test_web_process_imports_no_worker_only_package(prod_env):
    """The web image has no `worker` extra (Dockerfile target "web"): the ASGI app, every URL's
    view and the Celery app must load without torch, UMAP, sentence-transformers, scikit-learn."""
    code = (
        "import sys, calma.asgi, calma.celery\n"
        "from django.urls import get_resolver\n"
        "def walk(patterns):\n"
        "    for p in patterns:\n"
        "        walk(p.url_patterns) if hasattr(p, 'url_patterns') else p.callback\n"
        "walk(get_resolver().url_patterns)\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({WORKER_ONLY!r})))\n"
    )
    result = _run([sys.executable, "-c", code], prod_env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout


def test_web_process_keeps_its_startup_objects_out_of_full_collections(prod_env):
    """The ASGI module freezes what startup built (calma/asgi.py): a full pass of the cycle
    collector afterwards walks only what the process made since, not Django and the apps."""
    code = (
        "import gc, calma.asgi\n"
        "print(gc.get_freeze_count(), len(gc.get_objects()))\n"
    )
    result = _run([sys.executable, "-c", code], prod_env, timeout=120)
    assert result.returncode == 0, result.stderr
    frozen, tracked = map(int, result.stdout.strip().splitlines()[-1].split())
    assert frozen > 20 * max(tracked, 1), (frozen, tracked)
