"""A facilitator creates a workshop and an invite; a participant joins, consents, completes
orientation, practice and the readiness check; the dashboard shows it live; the stage moves."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login
from tests.factories import PASSWORD, make_facilitator_user
from workshops.models import Membership, Stage, Workshop

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_facilitator_and_participant_walk_through_familiarize(new_page):
    make_facilitator_user(username="fac")
    fac = new_page()
    login(fac, "fac", PASSWORD)
    fac.get_by_role("link", name="New workshop").click()
    fac.get_by_label("Title").fill("Civic assistant")
    fac.get_by_label("Short name (used in links)").fill("civic")
    fac.get_by_label("Deployment context").fill("A chatbot that explains municipal services to residents of Nairobi.")
    fac.get_by_role("button", name="Create workshop").click()
    expect(fac.get_by_role("heading", name="Dashboard")).to_be_visible()
    fac.screenshot(path="/tmp/shot-dashboard-empty.png", full_page=True)

    fac.goto("/w/civic/invites/")
    fac.get_by_label("Label").fill("Residents")
    fac.get_by_role("button", name="Create invite link").click()
    link = fac.locator("[data-invite-link]").first.input_value()
    assert re.search(r"/join/[\w-]+/$", link)

    fac.goto("/w/civic/dashboard/")
    expect(fac.get_by_text("Nobody has joined yet")).to_be_visible()

    # The participant, on a phone-sized screen.
    p = new_page(viewport={"width": 390, "height": 844})
    p.goto(link)
    # One step: a name (optional) and consent; no username, no password.
    p.get_by_label("Your name (optional)").fill("Wanjiru वा")
    p.get_by_label("I have read the above and agree to take part.").check()
    p.get_by_role("button", name="Join the workshop").click()
    expect(p.get_by_role("heading", name="Your return code")).to_be_visible()
    p.get_by_role("link", name="Continue").click()
    expect(p.locator("header [data-pseudonym]")).to_have_text("P01")

    # The dashboard updates itself (websocket event, then htmx refresh) without a reload.
    expect(fac.locator('tr[data-pseudonym="P01"]')).to_be_visible(timeout=10000)

    p.get_by_role("link", name="Read the orientation").click()
    expect(p.get_by_role("heading", name="Open coding, with an example from somewhere else")).to_be_visible()
    p.get_by_role("button", name=re.compile("continue to the practice")).click()
    expect(p.get_by_role("heading", name="Practice: open coding")).to_be_visible()
    p.get_by_label("Code").fill("ignores the vegetarian Friday")
    p.get_by_role("button", name="Add code").click()
    expect(p.locator("#my-codes")).to_contain_text("ignores the vegetarian Friday")
    p.get_by_role("button", name=re.compile("I'm done")).click()
    expect(p.get_by_role("heading", name="How others might have coded it")).to_be_visible()
    p.screenshot(path="/tmp/shot-practice-phone.png", full_page=True)
    p.get_by_role("link", name="Continue to the readiness check").click()

    workshop = Workshop.objects.get(slug="civic")
    for q in workshop.readiness_questions.all():
        p.locator(f'input[name="q{q.id}"][value="{q.correct_choice}"]').check()
    p.get_by_role("button", name="Check my answers").click()
    expect(p.get_by_text("You passed the readiness check")).to_be_visible()

    row = fac.locator('tr[data-pseudonym="P01"]')
    expect(row).to_contain_text("passed", timeout=10000)
    expect(row).to_contain_text("Wanjiru वा")
    fac.screenshot(path="/tmp/shot-dashboard-progress.png", full_page=True)

    p.goto("/w/civic/")
    expect(p.locator(".stage-bar [aria-current=step]")).to_have_text("Familiarize")
    p.wait_for_function("document.documentElement.dataset.live === 'connected'")
    fac.locator("#stage-select").select_option("interact")
    fac.get_by_role("button", name="Move the workshop to this stage").click()
    expect(fac.locator("[data-not-done]")).to_contain_text("Everyone (1) has passed the readiness check")
    fac.get_by_role("button", name="Yes, move to Interact").click()
    expect(fac.get_by_text("The workshop is now in the Interact stage")).to_be_visible()
    workshop.refresh_from_db()
    assert workshop.stage == Stage.INTERACT
    member = Membership.objects.get(workshop=workshop, pseudonym="P01")
    assert member.consented_at and member.orientation_done_at and member.practice_done_at and member.readiness_passed_at

    # The participant's page follows the stage change by itself.
    expect(p.locator(".stage-bar [aria-current=step]")).to_have_text("Interact", timeout=10000)
    assert not fac.js_errors and not p.js_errors, (fac.js_errors, p.js_errors)
