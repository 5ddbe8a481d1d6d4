"""The card cap as a participant meets it: the refusal is shown on the board as a message, and
goes once a later change of theirs goes through."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login
from tests.discussion.conftest import build, goto
from tests.factories import PASSWORD


@pytest.fixture
def capped_server_env(settings):
    settings.TEST_SERVER_ENV = {"DISCUSSION_CARDS_PER_MEMBER": "2"}


@pytest.mark.timeout(300)
def test_a_participant_at_the_card_cap_sees_why_their_card_was_refused(django_db_setup, capped_server_env,
                                                                        new_page, transactional_db):
    d = build()
    goto(d, 4)
    page = new_page()
    login(page, d.people[0].user.username, PASSWORD)
    page.goto(f"/w/{d.workshop.slug}/discuss/")
    for name in ("Fairness", "Accuracy", "One too many"):
        page.get_by_label("Name", exact=True).first.fill(name)
        page.get_by_role("button", name="Add card").click()
        if name != "One too many":
            expect(page.locator(".axis-card", has_text=name)).to_be_visible()
    status = page.locator("#board-status")
    expect(status).to_contain_text("You have 2 cards on the board, the most one person may add")
    expect(page.locator(".axis-card", has_text="One too many")).to_have_count(0)
    expect(page.get_by_label("Name", exact=True).first).to_have_value("One too many")  # what was typed is kept
    page.screenshot(path="/tmp/robust-board-cap.png", full_page=False)
    # Once one of their cards is off the board the kept text goes through, and the refusal,
    # no longer true, leaves the screen.
    page.on("dialog", lambda dialog: dialog.accept())
    mine = page.locator(".axis-card", has=page.get_by_role("heading", name="Fairness", exact=True))
    mine.get_by_role("button", name="Remove from board").click()
    expect(mine).to_have_count(0)
    expect(status).to_have_text("")
    page.get_by_role("button", name="Add card").click()
    expect(page.locator(".axis-card", has_text="One too many")).to_be_visible()
    expect(status).not_to_have_class(re.compile(r"\berror\b"))
    assert not page.js_errors
