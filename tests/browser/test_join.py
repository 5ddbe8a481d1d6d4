"""Joining by an invite link alone, on a phone (390x844), and coming back on another device
with the return code. The header shows the pseudonym, never a username, and fits the phone."""

import re

import pytest
from playwright.sync_api import expect

from tests.factories import facilitator_of, make_participant, make_workshop
from workshops import services
from workshops.models import Membership, Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def test_join_by_link_alone_on_a_phone_then_return_on_another_device(new_page):
    workshop = make_workshop(title="History assistant for students in Delhi", slug="delhi")
    make_participant(workshop)  # P01
    invite = services.invite_create(workshop=workshop, role=Role.PARTICIPANT, by=facilitator_of(workshop).user)

    phone = new_page(viewport=PHONE)
    phone.goto(f"/join/{invite.token}/")
    phone.screenshot(path="/tmp/join-form-phone.png", full_page=True)
    # No username, no password: a name (optional) and consent.
    expect(phone.get_by_label("Password")).to_have_count(0)
    expect(phone.get_by_label("Username")).to_have_count(0)
    phone.get_by_label("Your name (optional)").fill("Hassan")
    phone.get_by_role("button", name="Join the workshop").click()
    expect(phone.locator(".errorlist")).to_contain_text("Tick the box")  # consent is required
    phone.get_by_label("I have read the above and agree to take part.").check()
    phone.get_by_role("button", name="Join the workshop").click()

    # The return code, shown once, with a link to copy.
    expect(phone.get_by_role("heading", name="Your return code")).to_be_visible()
    code = phone.locator("[data-return-code]").inner_text().strip()
    assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", code)
    link = phone.locator("[data-return-link]").input_value()
    assert link.endswith(f"/return/{code}/")
    phone.screenshot(path="/tmp/join-return-code-phone.png", full_page=True)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    phone.get_by_role("link", name="Continue").click()
    expect(phone.get_by_role("heading", name=workshop.title)).to_be_visible()
    member = Membership.objects.get(workshop=workshop, role=Role.PARTICIPANT, display_name="Hassan")
    header = phone.locator("header.site-header")
    expect(header.locator("[data-pseudonym]")).to_have_text(member.pseudonym)
    assert member.user.username not in phone.content()
    assert "Hassan" not in header.inner_text()
    # A compact header: well under a quarter of the phone's height.
    height = header.evaluate("el => el.getBoundingClientRect().height")
    assert height < PHONE["height"] / 6, height
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    phone.screenshot(path="/tmp/join-workshop-home-phone.png")

    # Another device (a fresh browser context): the return link logs the person in.
    laptop = new_page()
    laptop.goto(link)
    expect(laptop.get_by_label("Your return code")).to_have_value(code)
    laptop.get_by_role("button", name="Continue").click()
    laptop.goto(f"/w/{workshop.slug}/")
    expect(laptop.locator("header [data-pseudonym]")).to_have_text(member.pseudonym)
    # connect-src 'self' lets the page open its own websocket (ws: of the same host) and
    # nothing else.
    result = laptop.evaluate("""async (slug) => {
        const violations = [];
        document.addEventListener("securitypolicyviolation", (e) => violations.push(e.blockedURI));
        const own = await new Promise((resolve) => {
            const ws = new WebSocket(`ws://${location.host}/ws/w/${slug}/events/`);
            ws.onopen = () => { ws.close(); resolve("open"); };
            ws.onerror = () => resolve("error");
            setTimeout(() => resolve("timeout"), 10000);
        });
        let other = "allowed";
        try { new WebSocket("ws://calma-elsewhere.invalid/ws/"); } catch (e) { other = "blocked"; }
        await new Promise((r) => setTimeout(r, 300));
        return {own, other, violations};
    }""", workshop.slug)
    assert result["own"] == "open", result
    assert result["other"] == "blocked" or any("calma-elsewhere" in v for v in result["violations"]), result
    # The code page does not show the code a second time.
    phone.goto("/account/code/")
    expect(phone.locator("[data-return-code]")).to_have_count(0)
    assert phone.js_errors == [] and laptop.js_errors == []
