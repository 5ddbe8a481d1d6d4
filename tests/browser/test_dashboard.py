"""The facilitator dashboard with 30 participants, and the Discuss board with cards, fit a
laptop (1280x800) and a phone (390x844): nothing overflows horizontally. Screenshots go to
/tmp/dash-*.png."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from discussion import services as discussion_services
from discussion.models import Segment
from tests.browser.conftest import login
from tests.discussion.conftest import build
from tests.factories import PASSWORD
from workshops.models import Membership

pytestmark = [pytest.mark.usefixtures("sync_orm_until_database_teardown"), pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"laptop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
PROJECTOR = {"width": 1024, "height": 768}

# Every visible element that sticks out of the viewport (visually hidden helpers excepted).
OVERFLOW_JS = """() => {
  const vw = document.documentElement.clientWidth;
  const out = [];
  // Content of a sideways-scrolling strip (the phone's stage bar) may run past the edge: the strip itself may not.
  const inScroller = (el) => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      if (['auto', 'scroll'].includes(getComputedStyle(a).overflowX)) return true;
    }
    return false;
  };
  for (const el of document.body.querySelectorAll('*')) {
    if (inScroller(el)) continue;
    if (el.closest('.sr-only, .skip-link, thead')) {
      const cs = getComputedStyle(el.closest('.sr-only, .skip-link, thead'));
      if (cs.position === 'absolute') continue;
    }
    const r = el.getBoundingClientRect();
    if (r.width <= 1 || r.height <= 1) continue;
    if (r.right > vw + 1 || r.left < -1 || r.width > vw + 1) {
      out.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} [${Math.round(r.left)}, ${Math.round(r.right)}]`);
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, clientWidth: vw,
          wide: out.slice(0, 15)};
}"""



def assert_fits(page, what):
    result = page.evaluate(OVERFLOW_JS)
    assert result["scrollWidth"] <= result["innerWidth"], (what, result)
    assert not result["wide"], (what, result)


def shot(page, name, anchor=None):
    """The full page, and one screenful from `anchor` on (what a person sees there)."""
    page.screenshot(path=f"/tmp/dash-{name}.png", full_page=True)
    if anchor:
        page.locator(anchor).first.evaluate("el => el.scrollIntoView()")
        page.screenshot(path=f"/tmp/dash-{name}-screen.png")
        page.evaluate("window.scrollTo(0, 0)")


@pytest.mark.timeout(600)
def test_dashboard_and_board_fit_a_laptop_and_a_phone(django_db_setup, new_page, transactional_db):
    d = build(participants=30)
    workshop = d.workshop
    now = timezone.now()
    people = d.people
    # A realistic spread: names in several scripts, a long unbroken one, some idle, one withdrawn.
    names = ["Wanjiru वा", "Hassan حسن", "Li 李", "A" * 60, "Ananya Krishnamurthy-Venkataraman"]
    for i, m in enumerate(people):
        Membership.objects.filter(pk=m.pk).update(
            display_name=names[i % len(names)] if i < len(names) else m.display_name,
            last_seen_at=now - timedelta(minutes=(i * 7) % 40),
            last_seen_page=["discussion:session", "workshops:home", "coding:focus"][i % 3],
        )
    discussion_services.session_set_segment(workshop=workshop, by=d.facilitator, segment=Segment.TOP_THREE)
    for m in people[:20]:  # ten have not saved a top three
        discussion_services.picks_save(membership=m, picks=[{"name": "Bias", "definition": "Taking one side"},
                                                              {"name": "Accuracy", "definition": "Dates are right"}])
    from workshops import services as workshop_services

    workshop_services.membership_withdraw(membership=people[-1])

    fac = {}
    for size, viewport in VIEWPORTS.items():
        page = new_page(viewport=viewport)
        login(page, d.facilitator.user.username, PASSWORD)
        fac[size] = page
        for view in ["stage", "all"]:
            page.goto(f"/w/{workshop.slug}/dashboard/?view={view}")
            expect(page.locator("tr[data-pseudonym]")).to_have_count(30)
            expect(page.locator("tr[data-behind]").first).to_be_visible()
            assert page.locator("tr[data-behind]").count() == 9  # ten without picks, one withdrawn
            shot(page, f"dashboard-{view}-{size}", anchor="#progress-h")
            assert_fits(page, f"dashboard {view} {size}")

    projector = new_page(viewport=PROJECTOR)
    login(projector, d.facilitator.user.username, PASSWORD)
    projector.goto(f"/w/{workshop.slug}/dashboard/?names=hide")
    expect(projector.locator("tr[data-pseudonym]")).to_have_count(30)
    expect(projector.locator("#progress")).not_to_contain_text("Ananya")
    shot(projector, "dashboard-projector", anchor="#progress-h")
    assert_fits(projector, "dashboard projector")

    # Filtering without a reload (htmx) and the stage confirmation page, on the laptop.
    page = fac["laptop"]
    page.goto(f"/w/{workshop.slug}/dashboard/")
    page.locator("#dash-show").select_option("behind")
    expect(page.locator("tr[data-pseudonym]")).to_have_count(9)
    assert "show=behind" in page.url
    page.locator("#stage-select").select_option("closed")
    page.get_by_role("button", name="Move the workshop to this stage").click()
    expect(page.get_by_role("heading", name="Move from Discuss to Closed?")).to_be_visible()
    expect(page.locator("[data-not-done]")).to_contain_text("9 of 29 participants have not yet saved a top three")
    shot(page, "stage-confirm-laptop")
    assert_fits(page, "stage confirmation")

    # The Discuss board with cards, for the facilitator and a participant at both sizes.
    discussion_services.session_set_segment(workshop=workshop, by=d.facilitator, segment=Segment.BOARD)
    for name, definition in [
        ("Bias towards colonial accounts", "Favouring British sources over Indian ones " * 3),
        ("Accuracy", "Facts, dates and names are right"),
        ("Respect for religions", "Does not favour or disparage a religion"),
        ("Age-appropriate language", "Words a 15-year-old understands"),
        ("Nuance", "Averyveryverylongwordwithoutanyspacesatallthatcouldpushthelayoutwide" * 2),
    ]:
        discussion_services.axis_create(membership=people[0], name=name, definition=definition)
    for size, viewport in VIEWPORTS.items():
        participant = new_page(viewport=viewport)
        login(participant, people[1].user.username, PASSWORD)
        for who, page in [("facilitator", fac[size]), ("participant", participant)]:
            page.goto(f"/w/{workshop.slug}/discuss/")
            expect(page.locator(".axis-card")).to_have_count(5)
            shot(page, f"board-{who}-{size}", anchor="#board")
            assert_fits(page, f"board {who} {size}")
    assert not any(p.js_errors for p in fac.values())
