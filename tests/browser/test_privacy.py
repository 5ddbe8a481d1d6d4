"""Privacy as people see it in a browser (issue 10, items 2 and 3): another participant's
conversations stay out of the group summary; a withdrawal takes the member's text off an open
board at once and off the summary."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from coding import services as coding_services
from workshops.tasks import run_job
from discussion import services as discussion_services
from tests.browser.conftest import login
from tests.discussion.conftest import build, goto
from tests.factories import PASSWORD, facilitator_of, make_conversation, make_participant, make_workshop

pytestmark = [pytest.mark.usefixtures("sync_orm_until_database_teardown"), pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = "/tmp/privacy"



def shot(page, name):
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def withdraw_in_browser(new_page, workshop, membership):
    """The member withdraws through the page, in a browser of their own (returned)."""
    page = new_page()
    login(page, membership.user.username, PASSWORD)
    page.goto(f"/w/{workshop.slug}/withdraw/")
    page.get_by_label("I understand").check()
    page.get_by_role("button", name="Withdraw").click()
    expect(page.get_by_role("heading", level=1)).not_to_have_text("Withdraw from the workshop")
    return page


def test_summary_as_another_participant_and_after_a_withdrawal(new_page):
    workshop = make_workshop(stage="reflect")
    facilitator = facilitator_of(workshop)
    p1, p2 = make_participant(workshop), make_participant(workshop)
    mine = make_conversation(p1, turns=[("How did the Mughal Empire begin?", "Babur founded it in 1526 at Panipat.")])
    theirs = make_conversation(p2, turns=[("My cousin's visa was refused, what now?", "Visa rules differ by country.")])
    coding_services.annotation_create(membership=p2, message_id=theirs.messages.get(role="assistant").id, start=0,
                                      end=4, codes=["p2-only-label"], memo="P2 memo about my cousin")
    coding_services.annotation_create(membership=p1, message_id=mine.messages.get(role="assistant").id, start=0,
                                      end=5, codes=["founder"])
    job = coding_services.summary_request(membership=facilitator)
    run_job(job.id)  # the worker's task, here in the test

    page = new_page()
    login(page, p1.user.username, PASSWORD)
    page.goto(f"/w/{workshop.slug}/reflect/summary/")
    page.get_by_text("Keywords per conversation").click()
    expect(page.get_by_role("row", name="How did the Mughal Empire begin?")).to_be_visible()
    shot(page, "summary-as-P01")
    body = page.locator("body").inner_text()
    assert "My cousin's visa was refused" not in body and p2.pseudonym not in body
    # Not even as a topic: P02 alone talked about visas.
    assert not {"visa", "cousin's", "refused"} & set(page.locator(".cloud").first.inner_text().split())
    expect(page.locator(".cloud").first).to_contain_text("mughal")

    # P02 withdraws through the page; the facilitator's summary no longer holds their data.
    other = withdraw_in_browser(new_page, workshop, p2)
    shot(other, "withdrawn-P02")
    staff = new_page()
    login(staff, facilitator.user.username, PASSWORD)
    staff.goto(f"/w/{workshop.slug}/reflect/summary/")
    shot(staff, "summary-staff-after-withdrawal")
    text = staff.locator("body").inner_text()
    for secret in ("My cousin's visa", "p2-only-label", "P2 memo", p2.pseudonym):
        assert secret not in text, secret
    assert not other.js_errors and not page.js_errors and not staff.js_errors


def test_open_board_drops_a_withdrawn_members_cards_live(new_page):
    d = build()
    w, p1, _p2 = d.people
    goto(d, 4)
    untouched = discussion_services.axis_create(membership=w, name="W alone wrote this", definition="W's words")
    voted = discussion_services.axis_create(membership=w, name="W named this card", definition="W defined it")
    discussion_services.vote_set(membership=p1, axis_ids=[voted.pk])

    page = new_page()
    login(page, p1.user.username, PASSWORD)
    page.goto(f"/w/{d.workshop.slug}/discuss/")
    expect(page.locator(f"#card-name-{untouched.pk}")).to_have_text("W alone wrote this")
    expect(page.locator(f"#card-name-{voted.pk}")).to_have_text("W named this card")
    shot(page, "board-before-withdrawal")

    # W withdraws in their own browser (the server sends the board changes after the commit).
    withdraw_in_browser(new_page, d.workshop, w)
    # The open board follows without a reload: the untouched card goes, the group's card loses W's text.
    expect(page.locator(f"#card-{untouched.pk}")).to_have_count(0)
    expect(page.locator(f"#card-name-{voted.pk}")).to_have_text("(withdrawn)")
    shot(page, "board-after-withdrawal")
    body = page.locator("body").inner_text()
    assert "W alone wrote this" not in body and "W defined it" not in body and "W named this card" not in body
    page.reload()
    expect(page.locator(f"#card-name-{voted.pk}")).to_have_text("(withdrawn)")
    assert "W alone wrote this" not in page.locator("body").inner_text()
    assert not page.js_errors
