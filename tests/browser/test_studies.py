"""Studies in a real browser: a facilitator makes a second workshop from a template; once both
groups have final axes, a researcher opens the comparison, asks for suggested matches, confirms
one, rejects another and downloads the comparison CSV."""

import csv
import io
import os

import pytest
from playwright.sync_api import expect

from studies import services as study_services
from studies.models import AxisMatch, MatchStatus, WorkshopOrigin
from tests.browser.conftest import login
from tests.discussion.conftest import Discuss, add_code, build
from tests.factories import PASSWORD, facilitator_of, make_conversation, make_participant
from tests.studies.world import GROUP_A, GROUP_B, add_final_axes
from workshops import services as workshop_services
from workshops.models import Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("sync_orm_until_database_teardown")]

SHOTS = os.environ.get("CALMA_SCREENSHOTS", "")


def _shot(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"studies-{name}.png"), full_page=True)


def _second_group(workshop):
    """The new workshop's own people, codes and final axes (seeded through factories and services)."""
    d = Discuss()
    d.workshop = workshop
    d.facilitator = facilitator_of(workshop)
    for stage in ("interact", "reflect", "discuss"):
        workshop_services.workshop_set_stage(workshop=workshop, stage=stage, by=d.facilitator.user)
    workshop.refresh_from_db()
    d.people = [make_participant(workshop) for _ in range(2)]
    for person in d.people:
        conversation = make_conversation(person, [("Why did the Mughal empire decline?",
                                                   "Historians disagree: some stress religion, others economics.")])
        add_code(person, "religious bias", conversation.messages.get(role="assistant"), excerpt="Historians disagree")
    return add_final_axes(d, GROUP_B)


@pytest.fixture
def inline_tasks(django_db_setup, settings):
    """Requested before new_page starts the server: jobs run inline, as under `make run`."""
    settings.TEST_SERVER_ENV = {"CELERY_TASK_ALWAYS_EAGER": "1"}


def test_template_then_compare_confirm_reject_and_download(inline_tasks, new_page):
    a = build(stage="discuss", participants=2)
    add_final_axes(a, GROUP_A)
    study = study_services.study_create(title="History assistant, two communities", slug="history-two",
                                        by=a.facilitator.user, workshops=[a.workshop])
    study_services.study_grant(study=study, user=a.researcher.user, by=a.facilitator.user)

    # The facilitator makes the second workshop from the first.
    fac = new_page()
    login(fac, a.facilitator.user.username, PASSWORD)
    fac.goto(f"/w/{a.workshop.slug}/template/")
    expect(fac.get_by_text("Not copied: participants")).to_be_visible()
    fac.get_by_label("Title of the new workshop").fill("History assistant — second group")
    fac.get_by_label("Short name (used in links)").fill("history-second")
    _shot(fac, "template")
    fac.get_by_role("button", name="Create workshop").click()
    fac.wait_for_url("**/w/history-second/")
    new = WorkshopOrigin.objects.get(template=a.workshop).workshop
    assert new.slug == "history-second" and new.system_prompt == a.workshop.system_prompt
    assert not new.memberships.filter(role=Role.PARTICIPANT).exists()

    b_axes = _second_group(new)
    assert len(b_axes) == 3

    # The researcher (study-wide access: the new workshop joined the template's study) compares.
    res = new_page()
    login(res, a.researcher.user.username, PASSWORD)
    res.goto(f"/studies/{study.slug}/")
    res.get_by_role("link", name="Compare the workshops' axes").click()
    expect(res.get_by_role("heading", name="Final axes side by side")).to_be_visible()
    res.get_by_role("button", name="Suggest matches by meaning").click(timeout=180000)
    res.wait_for_load_state()
    bias = AxisMatch.objects.get(study=study, axis_a__name="Bias", axis_b__name="Religious and political bias")
    other = (AxisMatch.objects.filter(study=study).exclude(pk=bias.pk).order_by("similarity").first())
    row = res.locator(f"tr[data-match='{bias.pk}']")
    expect(row).to_be_visible(timeout=60000)
    row.get_by_label("Note").fill("Both are about taking sides")
    row.get_by_role("button", name="Confirm").click()
    expect(res.locator(f"tr[data-match='{bias.pk}']")).to_have_attribute("data-status", "confirmed")
    res.locator(f"tr[data-match='{other.pk}']").get_by_role("button", name="Reject").click()
    expect(res.locator(f"tr[data-match='{other.pk}']")).to_have_attribute("data-status", "rejected")
    expect(res.locator("[data-unmatched]").filter(has_text="Empathy")).to_be_visible()
    _shot(res, "compare")
    bias.refresh_from_db()
    other.refresh_from_db()
    assert bias.status == MatchStatus.CONFIRMED and bias.decided_by == a.researcher.user
    assert other.status == MatchStatus.REJECTED

    with res.expect_download() as info:
        res.get_by_role("link", name="Download comparison (CSV)").click()
    download = info.value
    assert download.suggested_filename == f"{study.slug}-comparison.csv"
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8-sig").read())))
    confirmed = [r for r in rows if r["status"] == "confirmed"]
    assert [(r["axis_a_name"], r["axis_b_name"], r["note"]) for r in confirmed] == [
        ("Bias", "Religious and political bias", "Both are about taking sides")]
    assert confirmed[0]["decided_by"] == a.researcher.user.username and float(confirmed[0]["similarity"]) > 0
    assert any(r["status"] == "rejected" and r["axis_a_id"] == str(other.axis_a_id) for r in rows)
    assert any(r["kind"] == "unmatched" and r["axis_a_name"] == "Empathy" for r in rows)
    assert not res.js_errors and not fac.js_errors
