"""Tests generated from the OpenAPI schema (schemathesis) against the real server (uvicorn) and
Postgres: every operation, valid and invalid inputs, every check schemathesis has."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import build_world

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def _unlimited(settings):
    settings.TEST_SERVER_ENV = {"API_RATE_LIMIT": "100000/m"}  # the run sends thousands of requests


@pytest.mark.timeout(900)
def test_schemathesis_finds_no_failures(_unlimited, asgi_server, settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    world = build_world()
    config = tmp_path / "schemathesis.toml"
    # The URLs name the researcher's own workshop and study, so the generated requests reach data.
    config.write_text(
        "[parameters]\n"
        f'"path.slug" = "{world.a.workshop.slug}"\n'
        f'"path.study_slug" = "{world.study.slug}"\n'
    )
    report = tmp_path / "report.json"
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(config), "run",
        f"{asgi_server}/api/v1/openapi.json",
        "--header", f"Authorization: Bearer {world.tokens['researcher']}",
        "--checks", "all", "--max-examples", "25", "--seed", "1", "--workers", "1",
        "--generation-database", "none", "--no-color", "--request-timeout", "60",
        "--report", "json", "--report-json-path", str(report),
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=840,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SCHEMATHESIS_HOOKS": ""})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    from api.api import api

    operations = sum(len(m) for m in api.get_openapi_schema(path_prefix="/api/v1")["paths"].values())
    assert f"Tested: {operations}" in output, output[-3000:]  # every operation was exercised
    assert " 0 failed" in output or "failed" not in output.split("Test cases:")[-1], output[-3000:]
