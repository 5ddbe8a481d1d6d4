"""The Discuss stage end to end: a facilitator and three participants in separate browsers."""

from __future__ import annotations

import csv
import io
import json
import os

import pytest
from playwright.sync_api import expect

from discussion import mapping
from tests.browser.conftest import login
from tests.discussion.conftest import build
from tests.factories import PASSWORD

pytestmark = [pytest.mark.usefixtures("sync_orm_until_database_teardown"), pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = "/tmp/discuss"



def shot(page, name):
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def go_segment(fac, n):
    fac.get_by_role("button", name=f"Go to segment {n}", exact=True).click()
    expect(fac.locator(".segment-bar li.current")).to_contain_text(f"{n} ·", timeout=30000)


@pytest.mark.timeout(600)
def test_facilitator_and_three_participants_run_the_five_segments(django_db_setup, new_page, transactional_db):
    # django_db_setup first: the database set-up refuses to run inside Playwright's event loop.
    d = build()
    mapping.compute(d.workshop)  # the map of everyone's labels (the refresh button queues the same task)
    slug = d.workshop.slug
    url = f"/w/{slug}/discuss/"

    fac = new_page()
    login(fac, d.facilitator.user.username, PASSWORD)
    fac.goto(url)
    people = []
    for member in d.people:
        page = new_page(viewport={"width": 390, "height": 844})  # phones
        login(page, member.user.username, PASSWORD)
        page.goto(url)
        expect(page.locator(".session-status")).to_contain_text("has not started")
        people.append(page)
    p1, p2, p3 = people

    # Segment 1: individual top three, hidden until revealed.
    go_segment(fac, 1)
    for page in people:
        expect(page.get_by_role("button", name="Save my top three")).to_be_visible()
    p1.get_by_label("From my attributes").first.select_option(label="Bias")
    expect(p1.locator("#id_name_1")).to_have_value("Bias")
    p1.get_by_role("button", name="Save my top three").click()
    expect(p1.locator(".messages")).to_contain_text("Your top three is saved")
    p2.locator("#id_name_1").fill("<b>Religious</b> bias")
    p2.locator("#id_definition_1").fill("Favouring or disparaging a religion")
    p2.get_by_role("button", name="Save my top three").click()
    p3.locator("#id_name_1").fill("Accuracy")
    p3.locator("#id_definition_1").fill("Facts and dates are right")
    p3.get_by_role("button", name="Save my top three").click()
    expect(p3.locator(".messages")).to_contain_text("Your top three is saved")
    expect(p2.locator("#picks-overview")).not_to_contain_text("Facts and dates are right")
    fac.get_by_role("button", name="Reveal everyone's picks").click()
    # Revealed live on the participants' screens, hostile markup shown as text.
    expect(p1.locator("#picks-overview")).to_contain_text("<b>Religious</b> bias")
    expect(p1.locator("#picks-overview")).to_contain_text("Facts and dates are right")

    # Segment 2: the affinity map shows everyone's labels.
    go_segment(fac, 2)
    for page in people:
        expect(page.locator(".segment-bar li.current")).to_contain_text("2 ·", timeout=30000)
    map_text = p2.locator("#affinity-map")
    for label in ("colonial bias", "religious bias", "bias to british government"):
        expect(map_text).to_contain_text(label, timeout=30000)  # P01's, P02's and P03's labels
    p2.locator("#map-mine").check()
    expect(p2.locator("#map-list")).to_contain_text("religious bias")
    expect(p2.locator("#map-list")).not_to_contain_text("colonial bias")
    p2.locator("#map-mine").uncheck()
    p2.locator("#map-search").fill("colonial")
    shot(p2, "segment2-map-phone")
    shot(fac, "segment2-map-facilitator")

    # Segment 3: spotlight.
    go_segment(fac, 3)
    fac.get_by_label("Spotlight on").select_option(label=d.people[1].pseudonym)
    fac.get_by_role("button", name="Show").click()
    for page in people:  # a live refresh of four screens: the bound of segment 2's, for a loaded machine
        expect(page.locator("#spotlight")).to_contain_text(f"{d.people[1].pseudonym} presents their top three",
                                                           timeout=30000)
    expect(p3.locator("#spotlight")).to_contain_text("<b>Religious</b> bias")

    # Segment 4: the board. A card made by one participant appears on the others' screens.
    go_segment(fac, 4)
    for page in people + [fac]:
        expect(page.locator("#board-presence")).to_contain_text(d.people[2].pseudonym)
    p1.get_by_label("Name", exact=True).first.fill("Fairness to all sides")
    p1.get_by_label("Definition", exact=True).first.fill("Presents colonial and Indian accounts <script>alert(1)</script>")
    p1.get_by_role("button", name="Add card").click()
    for page in (p2, p3, fac):
        card = page.locator(".axis-card", has_text="Fairness to all sides")
        expect(card).to_be_visible()
        expect(card).to_contain_text("<script>alert(1)</script>")
    p3.get_by_text("Put one of my top three on the board").click()
    p3.get_by_role("button", name="Accuracy").click()  # put my pick on the board
    expect(p2.locator(".axis-card", has_text="Accuracy")).to_be_visible()
    p2.get_by_label("Name", exact=True).first.fill("Respect for religions")
    p2.get_by_role("button", name="Add card").click()
    expect(p1.locator(".axis-card", has_text="Respect for religions")).to_be_visible()
    # The excerpt picker: P01 searches their transcripts, ticks two sentences of the model's
    # answer (one by keyboard) and attaches the passage; P02 sees it on the card without reload.
    from discussion.models import Axis

    answer = d.answers[d.people[0].pk]
    fairness = Axis.objects.get(workshop=d.workshop, name="Fairness to all sides", status="active")
    p1.locator(f"#card-{fairness.pk}").get_by_role("button", name="Add an excerpt…").click()
    picker = p1.get_by_role("dialog", name="Add an excerpt to")
    expect(picker).to_be_visible()
    expect(picker).to_contain_text("Many historians differ on this")  # P01's own highlight, attachable at once
    picker.get_by_label("Search your highlights and the transcripts").fill("Indian rulers")
    # Typing searches by itself after a pause; the button makes it certain (a fill that lands
    # before htmx has wired the freshly loaded form would otherwise search nothing).
    picker.get_by_role("button", name="Search", exact=True).click()
    picker.get_by_role("button", name="Open in the transcript").click()
    turn = picker.locator(f"#picker-msg-{answer.pk}")
    turn.get_by_role("checkbox", name="Many historians differ on this.").click()
    last = turn.get_by_role("checkbox", name="Some accounts centre Britain")
    last.focus()
    last.press(" ")
    expect(last).to_have_attribute("aria-checked", "true")
    expect(turn.locator(".picker-preview")).to_contain_text("Many historians differ on this. Some accounts centre Britain")
    shot(p1, "segment4-excerpt-picker-phone")
    turn.get_by_role("button", name="Attach the chosen passage").click()
    expect(picker.locator("#picker-status")).to_contain_text("Attached")
    passage = "Many historians differ on this. Some accounts centre Britain; others centre Indian rulers and people."
    for page in (p2, fac):
        expect(page.locator(f"#card-{fairness.pk} .excerpts")).to_contain_text(passage)
    picker.get_by_role("button", name="Close").click()
    expect(picker).to_be_hidden()

    # Two people edit the same card: the second writer sees the conflict with both texts.
    acc = Axis.objects.get(workshop=d.workshop, name="Accuracy", status="active")
    c1, c2 = p1.locator(f"#card-{acc.pk}"), p2.locator(f"#card-{acc.pk}")
    c1.get_by_role("button", name="Edit", exact=True).click()
    c2.get_by_role("button", name="Edit", exact=True).click()
    expect(p3.locator(f"#card-{acc.pk} .editing")).to_contain_text(d.people[0].pseudonym)
    c1.locator("textarea").fill("Facts, dates and names are right")
    c1.get_by_role("button", name="Save", exact=True).click()
    expect(p3.locator(f"#card-{acc.pk}")).to_contain_text("Facts, dates and names are right")
    c2.locator("textarea").fill("Sources are cited")
    c2.get_by_role("button", name="Save", exact=True).click()
    conflict = c2.locator(".conflict")
    expect(conflict).to_contain_text("Facts, dates and names are right")
    expect(conflict).to_contain_text("Sources are cited")
    shot(p2, "segment4-conflict-phone")
    c2.get_by_role("button", name="Keep the current text").click()
    expect(c2.locator(".conflict")).to_have_count(0)
    expect(c2).to_contain_text("Facts, dates and names are right")

    # Merging asks first, naming both cards; anyone in the group can undo it, live on every screen.
    from discussion.models import AxisEvent

    p3.get_by_label("Name", exact=True).first.fill("Religious respect")
    p3.get_by_label("Definition", exact=True).first.fill("No religion is mocked")
    p3.get_by_role("button", name="Add card").click()
    expect(p2.locator(".axis-card", has_text="Religious respect")).to_be_visible()
    extra = Axis.objects.get(workshop=d.workshop, name="Religious respect", status="active")
    respect = Axis.objects.get(workshop=d.workshop, name="Respect for religions", status="active")
    p2.locator(f"#merge-{extra.pk}").select_option(label="Respect for religions")
    dialog = p2.get_by_role("dialog", name="Merge two cards?")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#merge-from")).to_have_text("Religious respect")
    expect(dialog.locator("#merge-into")).to_have_text("Respect for religions")
    shot(p2, "segment4-merge-confirm-phone")
    dialog.screenshot(path=f"{SHOTS}/segment4-merge-dialog.png")
    dialog.get_by_role("button", name="Cancel").click()  # nothing is sent
    expect(dialog).to_be_hidden()
    expect(p2.locator(f"#merge-{extra.pk}")).to_have_value("")
    p2.locator(f"#merge-{extra.pk}").select_option(label="Respect for religions")
    dialog.get_by_role("button", name="Merge", exact=True).click()
    expect(p2.locator("#board-status")).to_contain_text("Merged")
    for page in (p1, p3, fac):
        expect(page.locator(f"#card-{extra.pk}")).to_have_count(0)
    merged_card = p1.locator(f"#card-{respect.pk}")
    expect(merged_card.locator(".merges")).to_contain_text("Religious respect")
    shot(p1, "segment4-merged-card-phone")
    merged_card.screenshot(path=f"{SHOTS}/segment4-merged-card.png")
    merged_card.get_by_role("button", name="Undo merge").click()  # P01 undoes P02's merge
    for page in (p2, p3, fac):
        expect(page.locator(f"#card-{extra.pk}")).to_contain_text("No religion is mocked")
        expect(page.locator(f"#card-{respect.pk} .merges")).to_have_count(0)
    # Merged again, for good this time (the export below names it).
    p3.locator(f"#merge-{extra.pk}").select_option(label="Respect for religions")
    p3.get_by_role("dialog", name="Merge two cards?").get_by_role("button", name="Merge", exact=True).click()
    for page in (p1, p2, fac):
        expect(page.locator(f"#card-{extra.pk}")).to_have_count(0)
    assert list(AxisEvent.objects.filter(axis=respect).values_list("kind", flat=True)) == [
        "created", "merged", "unmerged", "merged"]  # the cancelled merge sent nothing
    # Live vote.
    for page in people:
        page.locator("#vote-place-1").select_option(label="Fairness to all sides")
        page.locator("#vote-place-2").select_option(label="Accuracy")
        page.get_by_role("button", name="Submit my vote").click()
    expect(fac.locator("#vote-tally li").first).to_contain_text("Fairness to all sides · 15 points")
    # The facilitator records the group's ranking; everyone sees it.
    fac.locator("#rank-place-1").select_option(label="Fairness to all sides")
    fac.locator("#rank-place-2").select_option(label="Accuracy")
    fac.locator("#rank-place-3").select_option(label="Respect for religions")
    fac.get_by_role("button", name="Record the group ranking").click()
    expect(p2.locator("#final-ranking li")).to_have_count(3)
    shot(p2, "segment4-board-phone")
    shot(fac, "segment4-board-facilitator")

    # Segment 5: individual Likert ratings and rankings.
    go_segment(fac, 5)
    for i, page in enumerate(people):
        expect(page.get_by_role("button", name="Submit my ratings and ranking")).to_be_visible()
        ratings = page.locator("fieldset.rating")
        expect(ratings).to_have_count(3)
        for j in range(3):
            ratings.nth(j).locator(f"input[type=radio][value='{[4, 5, 3][(i + j) % 3]}']").check()
            ratings.nth(j).locator("select").select_option(str((i + j) % 3 + 1))
        page.get_by_role("button", name="Submit my ratings and ranking").click()
        expect(page.locator(".messages")).to_contain_text("your ratings and ranking are saved")
    shot(p1, "segment5-ratings-phone")

    # Results and the derived-axes CSV.
    fac.goto(f"/w/{slug}/discuss/results/")
    expect(fac.locator(".axes-table")).to_contain_text("Fairness to all sides")
    fac.wait_for_selector("#likert-chart .main-svg")
    shot(fac, "results")
    with fac.expect_download() as info:
        fac.get_by_role("link", name="Derived axes (CSV)").click()
    path = info.value.path()
    rows = list(csv.DictReader(io.StringIO(open(path, encoding="utf-8-sig").read())))
    assert {r["name"] for r in rows} == {"Fairness to all sides", "Accuracy", "Respect for religions"}
    by_name = {r["name"]: r for r in rows}
    assert by_name["Fairness to all sides"]["group_rank"] == "1"
    # Proposed by P03 (their pick), edited by P01 in the conflict above.
    assert by_name["Accuracy"]["proposed_by"] == d.people[2].pseudonym
    assert by_name["Accuracy"]["participants"] == f"{d.people[0].pseudonym} {d.people[2].pseudonym}"
    merged = json.loads(by_name["Respect for religions"]["merged_cards"])
    assert [(m["name"], m["definition"], m["proposed_by"], m["merged_by"]) for m in merged] == [
        ("Religious respect", "No religion is mocked", d.people[2].pseudonym, d.people[2].pseudonym)]
    assert all(r["likert_n"] == "3" for r in rows)
    for page in people + [fac]:
        assert not page.js_errors, page.js_errors
