"""Joining by link alone, return codes, login throttling that cannot be bypassed, private pages.

The forged-header tests run the web command of docker-compose.yml itself (uvicorn decides
what REMOTE_ADDR is, so the Django test client cannot show that bug); the others use the test
client, whose REMOTE_ADDR is 127.0.0.1 unless a test sets it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from urllib.parse import urlparse

import httpx
import pytest
import yaml
from axes.models import AccessAttempt
from django.test import Client

from tests.conftest import ROOT, _free_port, wait_for_port
from tests.factories import PASSWORD, UserFactory, facilitator_of, make_participant, make_workshop
from workshops import services
from workshops.models import Membership, ReturnCode, Role

pytestmark = pytest.mark.django_db

CODE_RE = re.compile(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\b")


@pytest.fixture
def throttled(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 5
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 30
    return settings


def _invite(workshop, **kwargs):
    return services.invite_create(workshop=workshop, role=kwargs.pop("role", Role.PARTICIPANT),
                                  by=facilitator_of(workshop).user, **kwargs)


def _join(client, invite, name="Hassan"):
    response = client.post(f"/join/{invite.token}/", {"display_name": name, "agree": "on"})
    assert response.status_code == 302, response.content.decode()[:2000]
    page = client.get(response["Location"]).content.decode()
    return CODE_RE.search(page).group(0), page


def _login(client, username, password, **extra):
    return client.post("/login/", {"username": username, "password": password}, **extra)


# --- Join by link and return codes ---------------------------------------------------------


def test_join_shows_a_return_code_once_and_stores_only_its_hash(client):
    workshop = make_workshop()
    code, page = _join(client, _invite(workshop))
    assert f"/return/{code}/" in page
    stored = ReturnCode.objects.get(user=Membership.objects.get(workshop=workshop, role=Role.PARTICIPANT).user)
    assert code not in stored.code_hash and code.replace("-", "") not in stored.code_hash
    assert len(stored.code_hash) == 64
    # Shown once: opening the page again does not show it.
    again = client.get("/account/code/").content.decode()
    assert not CODE_RE.search(again)
    assert "shown once" in again


def test_return_code_logs_the_person_in_on_another_device(client):
    workshop = make_workshop()
    code, _page = _join(client, _invite(workshop))
    member = Membership.objects.get(workshop=workshop, role=Role.PARTICIPANT)
    phone = Client()
    # Opening the link only shows the form (a chat app's link preview logs nobody in).
    form = phone.get(f"/return/{code}/")
    assert form.status_code == 200 and f'value="{code}"' in form.content.decode()
    assert "_auth_user_id" not in phone.session
    # Typed by hand, in lower case with spaces and an O for a zero, it still works.
    typed = code.lower().replace("-", " ").replace("0", "o")
    response = phone.post("/return/", {"code": typed})
    assert response.status_code == 302
    assert int(phone.session["_auth_user_id"]) == member.user_id
    assert phone.get(f"/w/{workshop.slug}/").status_code == 200
    assert ReturnCode.objects.get(user=member.user).last_used_at is not None


def test_a_new_return_code_replaces_the_old_one(client):
    workshop = make_workshop()
    old, _page = _join(client, _invite(workshop))
    response = client.post("/account/", {"new_code": "1"})
    new = CODE_RE.search(client.get(response["Location"]).content.decode()).group(0)
    assert new != old
    assert Client().post("/return/", {"code": old}).status_code == 200  # refused, form again
    assert Client().post("/return/", {"code": new}).status_code == 302


def test_wrong_return_codes_are_throttled_per_address(throttled):
    workshop = make_workshop()
    code, _page = _join(Client(), _invite(workshop))
    guesser = Client(REMOTE_ADDR="198.51.100.9")
    statuses = [guesser.post("/return/", {"code": f"AAAA-BBBB-{n:04d}"}).status_code for n in range(30)]
    assert statuses.count(200) >= 29 and statuses[-1] in (200, 429)
    # The address is now locked: even the right code is refused from there ...
    response = guesser.post("/return/", {"code": code})
    assert response.status_code == 429
    assert "_auth_user_id" not in guesser.session
    # ... and not elsewhere.
    assert Client(REMOTE_ADDR="198.51.100.10").post("/return/", {"code": code}).status_code == 302
    # Codes are not kept in the throttle's records.
    assert not AccessAttempt.objects.filter(post_data__contains="BBBB").exists()


def test_a_few_wrong_codes_in_a_classroom_do_not_lock_it(throttled):
    workshop = make_workshop()
    invite = _invite(workshop)
    codes = [_join(Client(REMOTE_ADDR="192.0.2.1"), invite, name=f"P{i}")[0] for i in range(8)]
    room = "192.0.2.1"
    for i, code in enumerate(codes):
        person = Client(REMOTE_ADDR=room)
        assert person.post("/return/", {"code": "ZZZZ-ZZZZ-ZZZZ"}).status_code == 200  # a typo each
        assert person.post("/return/", {"code": code}).status_code == 302, i


def test_staff_invites_join_the_same_way_and_can_set_a_password(client):
    workshop = make_workshop()
    _join(client, _invite(workshop, role=Role.RESEARCHER), name="Dr R")
    researcher = Membership.objects.get(workshop=workshop, role=Role.RESEARCHER)
    assert researcher.pseudonym == "R01"
    assert client.get(f"/w/{workshop.slug}/research/").status_code == 200
    # Optional: a username and a password, for logging in the usual way.
    weak = client.post("/account/", {"username": "dr.r", "password1": "short", "password2": "short"})
    assert weak.status_code == 200 and "too short" in weak.content.decode()
    response = client.post("/account/", {"username": "dr.r", "password1": "a-Long-passphrase-42",
                                         "password2": "a-Long-passphrase-42"})
    assert response.status_code == 302
    assert client.get(f"/w/{workshop.slug}/").status_code == 200  # still logged in
    other = Client()
    assert _login(other, "dr.r", "a-Long-passphrase-42").status_code == 302
    assert int(other.session["_auth_user_id"]) == researcher.user_id
    # Changing it later asks for the current one (a session left open is not enough).
    change = {"password1": "another-Long-phrase-7", "password2": "another-Long-phrase-7"}
    response = client.post("/account/", {**change, "current_password": "wrong"})
    assert response.status_code == 200 and "not your current password" in response.content.decode()
    assert client.post("/account/", {**change, "current_password": "a-Long-passphrase-42"}).status_code == 302


def test_joining_never_asks_for_or_reveals_a_username(client):
    UserFactory(username="taken")
    workshop = make_workshop()
    page = client.get(f"/join/{_invite(workshop).token}/").content.decode()
    assert 'name="username"' not in page and 'name="password1"' not in page
    # The login form answers a wrong password for an existing and an unknown name alike.
    existing = _login(Client(), "taken", "wrong-password").content.decode()
    unknown = _login(Client(), "nobody-by-this-name", "wrong-password").content.decode()
    strip = lambda html: re.sub(r'(value="|"X-CSRFToken": ")[^"]*"', "", html)  # noqa: E731
    assert strip(existing) == strip(unknown)


def test_a_hindi_workshops_invite_speaks_hindi(client):
    workshop = make_workshop(language="hi")
    invite = _invite(workshop)
    page = client.get(f"/join/{invite.token}/").content.decode()
    assert "आपका नाम (वैकल्पिक)" in page  # "Your name (optional)"
    _code, page = _join(client, invite)
    assert "आपका वापसी कोड" in page  # "Your return code"


# --- Header and display name --------------------------------------------------------------


def test_header_shows_the_pseudonym_and_never_the_username(client):
    workshop = make_workshop()
    member = make_participant(workshop, name="Hassan P")
    client.force_login(member.user)
    page = client.get(f"/w/{workshop.slug}/").content.decode()
    header = page.split('<header class="site-header">')[1].split("</header>")[0]
    assert member.pseudonym in header
    assert member.user.username not in page
    assert "Hassan P" not in header
    # The person's own display name is on their own account page.
    assert "Hassan P" in client.get("/account/").content.decode()


# --- Login throttling ---------------------------------------------------------------------


def test_password_spraying_from_one_address_is_throttled(throttled):
    UserFactory(username="real-person")
    sprayer = Client(REMOTE_ADDR="203.0.113.50")
    statuses = [_login(sprayer, f"guess-{n}", "Winter2026!").status_code for n in range(40)]
    assert 429 in statuses, "forty usernames, one failure each, were never throttled"
    assert statuses.index(429) <= 30
    # Locked: not even a right password gets through from there, for the cool-off time ...
    response = _login(sprayer, "real-person", PASSWORD)
    assert response.status_code == 429 and "_auth_user_id" not in sprayer.session
    # ... while another address logs in.
    assert _login(Client(REMOTE_ADDR="203.0.113.51"), "real-person", PASSWORD).status_code == 302


def test_one_valid_login_does_not_reset_the_address_count(throttled):
    UserFactory(username="accomplice")
    sprayer = Client(REMOTE_ADDR="203.0.113.60")
    for n in range(29):
        _login(sprayer, f"guess-{n}", "Spring2026!")
    assert _login(Client(REMOTE_ADDR="203.0.113.60"), "accomplice", PASSWORD).status_code == 302
    _login(sprayer, "guess-29", "Spring2026!")
    assert _login(sprayer, "guess-30", "Spring2026!").status_code == 429


def test_a_classroom_behind_one_address_is_not_locked_out_by_typos(throttled):
    room = "192.0.2.77"
    people = [UserFactory(username=f"student{n}") for n in range(20)]
    for person in people:
        device = Client(REMOTE_ADDR=room)
        assert _login(device, person.username, "typo" + PASSWORD).status_code == 200
        assert _login(device, person.username, PASSWORD).status_code == 302, person.username


def test_one_account_locks_after_five_failures(throttled):
    UserFactory(username="target")
    attacker = Client(REMOTE_ADDR="203.0.113.70")
    for _ in range(5):
        _login(attacker, "target", "wrong")
    assert _login(attacker, "target", PASSWORD).status_code == 429


def test_behind_a_trusted_proxy_only_the_proxys_entry_counts(throttled):
    """TRUSTED_PROXY_HOPS=1: the proxy appends the client's address to X-Forwarded-For; what
    the client wrote further left is ignored, so rotating it neither bypasses nor avoids locking."""
    throttled.AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR",)
    throttled.AXES_IPWARE_PROXY_COUNT = 0
    throttled.IPWARE_STRICT = False
    UserFactory(username="target")
    proxy = "10.0.0.2"
    attacker = Client(REMOTE_ADDR=proxy)
    for n in range(5):
        _login(attacker, "target", "wrong", HTTP_X_FORWARDED_FOR=f"198.18.0.{n}, 203.0.113.80")
    response = _login(attacker, "target", PASSWORD, HTTP_X_FORWARDED_FOR="198.18.9.9, 203.0.113.80")
    assert response.status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.80"}
    # Another client behind the same proxy is someone else.
    other = Client(REMOTE_ADDR=proxy)
    assert _login(other, "target", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.81").status_code == 302


def test_username_over_255_characters_is_a_form_error(throttled, client):
    response = _login(client, "x" * 300, "whatever")
    assert response.status_code == 200
    assert "at most 150 characters" in response.content.decode()
    response = client.post("/login/", {"username": "y" * 100_000, "password": "p" * 5000})
    assert response.status_code == 200
    # The admin's login form passes any length on to authenticate(): still no 500.
    response = client.post("/admin/login/", {"username": "z" * 300, "password": "whatever"})
    assert response.status_code == 200
    assert AccessAttempt.objects.filter(username="z" * 255).exists()


@pytest.fixture
def compose_web(transactional_db, settings):
    """The web service's command from docker-compose.yml on the test database, throttling on."""
    command = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["web"]["command"]
    db_url = urlparse(os.environ["DATABASE_URL"])._replace(path="/" + settings.DATABASES["default"]["NAME"]).geturl()
    port = _free_port()
    cmd = [sys.executable, "-m", *command]
    cmd[cmd.index("--host") + 1] = "127.0.0.1"
    cmd[cmd.index("--port") + 1] = str(port)
    cmd[cmd.index("--workers") + 1] = "1"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update({"DATABASE_URL": db_url, "CALMA_TESTING": "1", "DEBUG": "0", "SECURE_COOKIES": "0",
                "AXES_ENABLED": "1", "ALLOWED_HOSTS": "127.0.0.1"})
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout=60, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _http_login(base, username, password, forwarded=None):
    with httpx.Client(base_url=base, timeout=20) as http:
        token = http.get("/login/").cookies["csrftoken"]
        headers = {"X-CSRFToken": token, "Referer": base + "/login/"}
        if forwarded:
            headers["X-Forwarded-For"] = forwarded
        return http.post("/login/", data={"username": username, "password": password}, headers=headers)


def test_forged_forwarded_for_does_not_bypass_the_lockout(compose_web):
    UserFactory(username="target")
    for _ in range(5):
        assert _http_login(compose_web, "target", "wrong").status_code in (200, 429)
    response = _http_login(compose_web, "target", PASSWORD, forwarded="198.51.100.77")
    assert response.status_code == 429, "a made-up X-Forwarded-For got past the lockout"


def test_rotating_forwarded_for_still_locks(compose_web):
    UserFactory(username="victim")
    for n in range(6):
        _http_login(compose_web, "victim", "wrong", forwarded=f"198.51.100.{n + 1}")
    response = _http_login(compose_web, "victim", PASSWORD, forwarded="198.51.100.200")
    assert response.status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"127.0.0.1"}


def test_no_server_command_lets_a_client_choose_its_address():
    """uvicorn rewrites the peer address from X-Forwarded-For when told to trust it; every
    way this project starts the server leaves that to TRUSTED_PROXY_HOPS instead."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["web"]["command"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    local = (ROOT / "scripts" / "run_local.sh").read_text()
    assert "--no-proxy-headers" in compose and "--forwarded-allow-ips" not in compose
    assert '"--no-proxy-headers"' in dockerfile.split("CMD")[-1]
    assert "--no-proxy-headers" in [line for line in local.splitlines() if "uvicorn" in line][-1]
