"""Evaluate in a real browser: the facilitator writes one rubric and has a model draft the other
(reviewed and approved before anyone rates); three participants rate the handed-out answers on a
phone (every score a tap, "does not apply" allowed), then compare two answers to one question; the
facilitator opens the agreement table and its chart, runs a model judge and sees it checked
against the participants. The server runs tasks inline, as `make run` does (the judge's scoring
loop then runs inside the request's thread: this also guards against it waiting on itself)."""

import os

import pytest
from playwright.sync_api import expect

from discussion import services as discussion_services
from evaluation.models import PairRating, Rating
from tests.browser.conftest import login
from tests.evaluation.conftest import SCALE
from tests.factories import PASSWORD, facilitator_of, make_conversation, make_participant, make_workshop
from workshops import services as workshop_services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("CALMA_SCREENSHOTS", "")
PHONE = {"width": 390, "height": 844}


def _shot(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"evaluate-{name}.png"), full_page=True)


@pytest.fixture
def inline_judge(inline_endpoints):
    """Requested before new_page starts the server: a deterministic judge endpoint and a drafter."""
    inline_endpoints(("judge", "Deterministic judge", "fault:judge:ok:browser"), ("drafter", "Drafter", "fault:drafter:ok"))


def test_rubrics_ratings_on_a_phone_and_agreement(inline_judge, new_page):
    workshop = make_workshop(stage="discuss", slug="evaluate-history")
    facilitator = facilitator_of(workshop)
    people = [make_participant(workshop) for _ in range(3)]
    make_conversation(facilitator, [
        ("Who started the 1857 uprising?", "The sepoys of the Bengal Army at Meerut, in May 1857."),
        ("इतिहास में अकबर कौन था?", "अकबर मुग़ल सम्राट था, जिसने 1556 से 1605 तक शासन किया।"),
    ], is_baseline=True, is_sandbox=True)
    from tests.evaluation.test_pairs import compare_conversation

    compare_conversation(facilitator, "Why did the Mughal empire decline?",
                         ["Weak successors.", "Many reasons: revenue, wars, the British."], is_baseline=True, sandbox=True)
    axes = [discussion_services.axis_create(membership=facilitator, name="Balance",
                                            definition="Presenting several perspectives"),
            discussion_services.axis_create(membership=facilitator, name="<b>Accuracy</b>",
                                            definition="Facts and dates are right")]
    workshop_services.workshop_set_stage(workshop=workshop, stage="evaluate", by=facilitator.user)

    fac = new_page()
    login(fac, facilitator.user.username, PASSWORD)
    fac.goto(f"/w/{workshop.slug}/evaluate/")
    expect(fac.get_by_text("<b>Accuracy</b>").first).to_be_visible()  # hostile text shown as text
    fac.goto(f"/w/{workshop.slug}/evaluate/rubrics/{axes[0].id}/")
    for point in range(1, 6):
        fac.get_by_label(f"What a {point} looks like").fill(SCALE[str(point)])
    fac.get_by_role("button", name="Save rubric").click()
    expect(fac.get_by_text("Rubric saved as version 1.")).to_be_visible()
    # The second rubric: a model drafts the scale, the facilitator reviews and approves it.
    fac.goto(f"/w/{workshop.slug}/evaluate/rubrics/{axes[1].id}/")
    fac.get_by_label("Model:", exact=True).select_option("drafter")
    fac.get_by_role("button", name="Draft the empty points").click()
    expect(fac.locator("#drafted-note")).to_be_visible(timeout=60000)
    expect(fac.get_by_label("What a 3 looks like")).to_have_value("Drafted point 3 <script>alert(3)</script>")
    _shot(fac, "drafted")
    fac.get_by_role("button", name="Save and approve the drafted text").click()
    expect(fac.get_by_text("Rubric saved as version 1.")).to_be_visible()
    _shot(fac, "overview")

    for i, person in enumerate(people):
        page = new_page(viewport=PHONE)
        login(page, person.user.username, PASSWORD)
        page.goto(f"/w/{workshop.slug}/")
        page.get_by_role("link", name="Start rating").click()
        for _answer in range(4):  # two baseline answers and the two compare-mode candidates
            expect(page.get_by_text("The model's answer")).to_be_visible()
            groups = page.get_by_role("radiogroup")
            expect(groups).to_have_count(2)
            groups.nth(0).get_by_text(str(3 + i % 2), exact=True).click()
            groups.nth(1).get_by_text("does not apply" if i == 2 else "4", exact=True).click()
            if i == 0 and _answer == 0:
                _shot(page, "rate-phone")
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= PHONE["width"]
            page.get_by_role("button", name="Save and go to the next answer").click()
        # Then the pair: two answers to one question, each person in their own order.
        expect(page.get_by_role("heading", name="Compare two answers")).to_be_visible()
        groups = page.get_by_role("radiogroup")
        expect(groups).to_have_count(3)  # two axes and the optional overall choice
        groups.nth(0).get_by_text("Left answer", exact=True).click()
        groups.nth(1).get_by_text("Equally good", exact=True).click()
        if i == 0:
            _shot(page, "pair-phone")
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.get_by_role("button", name="Save and go on").click()
        expect(page.get_by_text("every answer handed to you is rated")).to_be_visible()
        assert not page.js_errors

    assert Rating.objects.count() == 3 * 4 * 2
    assert Rating.objects.filter(score__isnull=True).count() == 4
    assert PairRating.objects.filter(axis__isnull=False).count() == 3 * 2
    assert PairRating.objects.filter(choice="tie").count() == 3

    fac.goto(f"/w/{workshop.slug}/evaluate/results/")
    table = fac.locator("#agreement-table")
    expect(table).to_contain_text("Balance")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(fac.locator("#eval-chart .main-svg").first).to_be_attached()

    # A model judge scores the rated answers on both axes and is checked against the participants.
    fac.get_by_label("Deterministic judge (fault:judge:ok:browser)").check()
    fac.get_by_role("button", name="Run the judges").click()
    judges = fac.locator("#judge-table")
    expect(judges.locator("tbody tr")).to_have_count(2, timeout=60000)
    expect(judges).to_contain_text("judge")
    expect(judges.locator("tbody tr").first).to_contain_text("4 · 0 · 0 · 0 · 0")  # every rated answer scored
    expect(fac.locator("#pair-table")).to_contain_text("Balance")
    expect(fac.locator("#judge-chart .main-svg").first).to_be_attached()
    _shot(fac, "results")
    assert not fac.js_errors
