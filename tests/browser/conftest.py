"""Playwright with Debian's Chromium (never a downloaded browser)."""

from __future__ import annotations

import json
import os
import shutil

import pytest


CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module. Not per session: Playwright's sync API keeps an event
    loop running in the main thread while it is alive, which makes Django refuse ORM calls
    (SynchronousOnlyOperation) and pytest-asyncio refuse to start loops in later modules."""
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        raise pytest.UsageError(f"Chromium not found at {CHROMIUM}: `make test` installs Debian's chromium.")
    from playwright.sync_api import sync_playwright

    # While Playwright runs, the test's own ORM calls (and pytest-django's flush after each
    # transactional test) are plain synchronous code in a thread with an event loop: let
    # Django allow them, for this module only. Servers the tests start never get this
    # variable (see asgi_server in tests/conftest.py).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def inline_endpoints(django_db_setup, settings, fault_upstream):
    """Call it with (key, name, model) triples before new_page starts the server: tasks run inline,
    as `make run` does, and the endpoints are those models of the fault upstream."""

    def configure(*endpoints):
        settings.TEST_SERVER_ENV = {
            "CELERY_TASK_ALWAYS_EAGER": "1",
            "LLM_ENDPOINTS": json.dumps([{"key": key, "name": name, "model": model, "base_url": fault_upstream.base_url}
                                         for key, name, model in endpoints]),
            "LLM_ENDPOINTS_FILE": "",
        }

    return configure


@pytest.fixture
def new_page(browser, asgi_server):
    """Factory for pages in separate browser contexts (separate people)."""
    contexts = []

    def make(viewport=None):
        context = browser.new_context(base_url=asgi_server, viewport=viewport or {"width": 1280, "height": 900})
        context.set_default_timeout(15000)
        contexts.append(context)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors
        return page

    yield make
    for context in contexts:
        context.close()


def login(page, username, password):
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def open_new_chat(new_page, workshop, participant, model_label: str):
    """A participant on a phone opens a new conversation with `model_label` ("Model A")."""
    from tests.factories import PASSWORD

    page = new_page(viewport={"width": 390, "height": 844})
    login(page, participant.user.username, PASSWORD)
    page.goto(f"/w/{workshop.slug}/interact/")
    page.get_by_role("button", name=f"New conversation with {model_label}").click()
    return page


@pytest.fixture(scope="module")
def sync_orm_until_database_teardown():
    """Synchronous ORM calls beside Playwright's event loop for a whole module, including the
    transactional flush after its last test (which runs after `browser` has closed). Modules
    whose tests write to the database between browser steps use it:
    `pytestmark = [pytest.mark.usefixtures("sync_orm_until_database_teardown"), ...]`.
    The servers the tests start never inherit the variable (tests/conftest.py removes it)."""
    old = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if old is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = old
