"""Production headers: CSP connect-src, private pages, HSTS behind TLS, 405 on read-only views."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.factories import facilitator_of, make_member, make_participant, make_workshop
from workshops.models import Role, Stage

pytestmark = pytest.mark.django_db


def _directives(response) -> dict[str, list[str]]:
    csp = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}


def test_connect_src_is_self_only(client):
    """'self' already covers ws:/wss: to the page's own host; bare ws:/wss: allowed any host."""
    directives = _directives(client.get("/login/"))
    assert directives["connect-src"] == ["'self'"]


def test_logged_in_pages_are_private_and_not_stored(client):
    workshop = make_workshop()
    member = make_participant(workshop)
    client.force_login(member.user)
    for path in (f"/w/{workshop.slug}/", "/", "/account/", f"/w/{workshop.slug}/familiarize/"):
        response = client.get(path)
        assert response.status_code == 200, path
        cache = {part.strip() for part in response["Cache-Control"].split(",")}
        assert {"private", "no-store"} <= cache, (path, cache)
        assert "public" not in cache


def test_staff_exports_are_private_too(client):
    workshop = make_workshop(stage=Stage.DISCUSS)
    client.force_login(facilitator_of(workshop).user)
    response = client.get(f"/w/{workshop.slug}/discuss/export/derived-axes.csv")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def _hsts(env: dict) -> int:
    base = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "CALMA_TESTING", "SECURE_HSTS_SECONDS",
                                                              "BEHIND_TLS_PROXY", "DJANGO_SETTINGS_MODULE"}}
    base.update({"SECRET_KEY": "k" * 50, "ALLOWED_HOSTS": "calma.example.org", **env})
    code = "import django, json; from django.conf import settings; django.setup(); print(json.dumps(settings.SECURE_HSTS_SECONDS))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**base, "DJANGO_SETTINGS_MODULE": "calma.settings"})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_hsts_is_on_by_default_behind_tls():
    assert _hsts({"BEHIND_TLS_PROXY": "1"}) >= 31536000
    assert _hsts({}) == 0  # plain HTTP (a closed classroom network): no HSTS
    assert _hsts({"BEHIND_TLS_PROXY": "1", "SECURE_HSTS_SECONDS": "0"}) == 0  # can be turned off


def test_hsts_header_is_sent_over_https(client, settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    response = client.get("/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")


def test_trusted_proxy_settings_use_ipware_with_the_configured_hops():
    base = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_SETTINGS_MODULE"}}
    code = ("import django, json; from django.conf import settings; django.setup(); print(json.dumps(["
            "settings.AXES_IPWARE_META_PRECEDENCE_ORDER, settings.AXES_IPWARE_PROXY_COUNT, "
            "getattr(settings, 'IPWARE_STRICT', None)]))")

    def load(env):
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                                env={**base, **env, "DJANGO_SETTINGS_MODULE": "calma.settings"})
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    assert load({}) == [["REMOTE_ADDR"], None, None]
    assert load({"TRUSTED_PROXY_HOPS": "2", "TRUSTED_PROXY_HEADER": "X-Real-Forwarded"}) == [
        ["HTTP_X_REAL_FORWARDED"], 1, False]


def _read_only_paths(slug):
    return [
        "/", f"/w/{slug}/", f"/w/{slug}/dashboard/", f"/w/{slug}/research/", "/healthz",
        f"/w/{slug}/interact/conversations/", f"/w/{slug}/interact/usage/",
        f"/w/{slug}/interact/export/messages.csv", f"/w/{slug}/interact/export/preferences.csv",
        f"/w/{slug}/discuss/", f"/w/{slug}/discuss/results/", f"/w/{slug}/discuss/report/",
        f"/w/{slug}/discuss/export/derived-axes.csv", f"/w/{slug}/discuss/export/derived-axes.json",
    ]


def test_read_only_views_refuse_post_with_405(client):
    workshop = make_workshop(stage=Stage.DISCUSS)
    client.force_login(facilitator_of(workshop).user)
    for path in _read_only_paths(workshop.slug):
        assert client.get(path).status_code == 200, path
        assert client.post(path, {}).status_code == 405, path


def test_read_only_views_refuse_post_for_researchers_too(client):
    workshop = make_workshop(stage=Stage.DISCUSS)
    client.force_login(make_member(workshop, role=Role.RESEARCHER).user)
    response = client.post(f"/w/{workshop.slug}/discuss/results/", {})
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
