"""Model comparison in a real browser: the facilitator compares two models on the workshop's own
prompts (and one prompt of their own), sees the per-axis table with exact means, the chart, and
the answers side by side with the judge's reasons; hostile text stays text. The server runs
tasks inline, as `make run` does."""

import os

import pytest
from playwright.sync_api import expect

from discussion import services as discussion_services
from evaluation import services as evaluation_services
from tests.browser.conftest import login
from tests.evaluation.conftest import SCALE
from tests.factories import PASSWORD, facilitator_of, make_conversation, make_participant, make_workshop
from workshops import services as workshop_services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("CALMA_SCREENSHOTS", "")


@pytest.fixture
def inline_models(inline_endpoints):
    """Requested before new_page starts the server: two deterministic models and a judge."""
    inline_endpoints(("model-a", "Model A", "fault:fixed:quality:4"), ("model-b", "Model B", "fault:fixed:quality:2"),
                     ("judge", "Deterministic judge", "fault:judge:ok:compare"))


def test_facilitator_compares_two_models_on_the_workshops_prompts(inline_models, new_page):
    workshop = make_workshop(stage="discuss", slug="compare-history")
    facilitator = facilitator_of(workshop)
    person = make_participant(workshop)
    make_conversation(facilitator, [
        ("Who started the 1857 uprising?", "The sepoys of the Bengal Army at Meerut, in May 1857."),
        ("इतिहास में अकबर कौन था?", "अकबर मुग़ल सम्राट था।"),
    ], is_baseline=True, is_sandbox=True)
    make_conversation(person, [("<img src=x onerror=alert(1)> was Ashoka a pacifist?", "Mostly, after Kalinga.")])
    axes = [discussion_services.axis_create(membership=facilitator, name="Balance", definition="Several perspectives"),
            discussion_services.axis_create(membership=facilitator, name="<b>Accuracy</b>", definition="Facts right")]
    workshop_services.workshop_set_stage(workshop=workshop, stage="evaluate", by=facilitator.user)
    for axis in axes:
        evaluation_services.rubric_save(axis=axis, by=facilitator, scale=SCALE)

    fac = new_page()
    login(fac, facilitator.user.username, PASSWORD)
    fac.goto(f"/w/{workshop.slug}/evaluate/compare/")
    fac.get_by_label("Name").fill("A against B")
    form = fac.locator("#compare-form")
    form.locator("#id_models_0").check()  # Model A (the same endpoints are listed again as judges)
    form.locator("#id_models_1").check()  # Model B
    form.locator("#id_judges_2").check()  # the deterministic judge
    form.get_by_label("Extra prompts, one per line").fill("Was the partition of Bengal reversed?")
    fac.get_by_role("button", name="Start the comparison").click()

    table = fac.locator("#compare-table")
    expect(table.locator("tbody tr")).to_have_count(2, timeout=90000)
    for row in range(2):
        cells = table.locator("tbody tr").nth(row).locator("td")
        expect(cells.nth(0)).to_contain_text("4.00")
        expect(cells.nth(0)).to_contain_text("n = 4")
        expect(cells.nth(1)).to_contain_text("2.00")
    expect(table).to_contain_text("<b>Accuracy</b>")  # hostile text shown as text
    expect(table).to_contain_text("not checked against participants")
    expect(fac.locator("#compare-chart .main-svg").first).to_be_attached()
    prompts = fac.locator(".compare-prompt")
    expect(prompts).to_have_count(4)
    expect(fac.get_by_text("<img src=x onerror=alert(1)> was Ashoka a pacifist?")).to_be_visible()
    expect(prompts.first).to_contain_text("Judged <b>4</b> from the rubric.")
    assert not fac.js_errors
    if SHOTS:
        fac.screenshot(path=os.path.join(SHOTS, "compare-results.png"), full_page=True)
