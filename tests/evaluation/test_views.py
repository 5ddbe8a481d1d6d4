"""Evaluate pages: who may open what, the participant's rating flow, no anchoring, exports."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import reverse

from evaluation import services
from evaluation.models import Rating, RubricVersion
from tests.evaluation.conftest import SCALE
from tests.factories import make_member

pytestmark = pytest.mark.django_db


def _url(name, ev, *args):
    return reverse(f"evaluation:{name}", args=[ev.workshop.slug, *args])


def _rubrics(ev):
    services.rubric_save(axis=ev.balance, by=ev.facilitator, scale=SCALE)
    services.rubric_save(axis=ev.accuracy, by=ev.facilitator, scale=SCALE)


def test_facilitator_writes_a_rubric_through_the_form(evaluate, client_for):
    ev = evaluate
    client = client_for(ev.facilitator)
    page = client.get(_url("rubric_edit", ev, ev.balance.id))
    assert page.status_code == 200 and "Historians disagree" in page.content.decode()
    data = {f"point_{p}": SCALE[str(p)] for p in range(1, 6)}
    data.update({"should": "name who disagrees\nexplain why", "should_not": "", f"example_{ev.example.id}": "high"})
    response = client.post(_url("rubric_edit", ev, ev.balance.id), data)
    assert response.status_code == 302
    version = RubricVersion.objects.get(rubric__axis=ev.balance)
    assert version.should == ["name who disagrees", "explain why"]
    assert version.examples[0]["polarity"] == "high"
    too_long = {**data, "point_3": "x" * 501}
    assert client.post(_url("rubric_edit", ev, ev.balance.id), too_long).status_code == 200  # form shown again


def test_participant_rates_answers_on_every_axis_and_sees_no_one_elses(evaluate, client_for):
    ev = evaluate
    _rubrics(ev)
    other = ev.participants[1]
    services.assignments_ensure(membership=other)
    services.ratings_submit(membership=other, position=1, scores={ev.balance.id: 1, ev.accuracy.id: 1})
    me = ev.participants[0]
    client = client_for(me)
    start = client.get(_url("rate_start", ev))
    assert start.status_code == 302
    page = client.get(start["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and "Balance" in html and "Accuracy" in html
    assert 'checked' not in html  # nobody else's rating shows, and this person has none yet
    # The progress line and the list of what was handed (drawn once for both rating pages) speak of answers.
    assert "0 of " in html and " answers rated" in html and 'aria-label="Answers to rate"' in html
    incomplete = client.post(start["Location"], {f"axis_{ev.balance.id}": "4"})
    assert incomplete.status_code == 400 and not Rating.objects.filter(membership=me).exists()
    bad = client.post(start["Location"], {f"axis_{ev.balance.id}": "9", f"axis_{ev.accuracy.id}": "2"})
    assert bad.status_code == 400
    ok = client.post(start["Location"], {f"axis_{ev.balance.id}": "4", f"axis_{ev.accuracy.id}": "na"})
    assert ok.status_code == 302
    scores = dict(Rating.objects.filter(membership=me).values_list("axis_id", "score"))
    assert scores == {ev.balance.id: 4, ev.accuracy.id: None}


def test_rating_waits_for_a_complete_rubric(evaluate, client_for):
    ev = evaluate
    response = client_for(ev.participants[0]).get(_url("rate_start", ev))
    assert response.status_code == 200 and "still writing the rubrics" in response.content.decode()


@pytest.mark.parametrize("name,args", [("overview", ()), ("results", ()), ("export_ratings", ()),
                                        ("export_rubrics", ())])
def test_participants_cannot_open_staff_pages(evaluate, client_for, name, args):
    ev = evaluate
    assert client_for(ev.participants[0]).get(_url(name, ev, *args)).status_code == 403


def test_researcher_reads_everything_and_writes_nothing(evaluate, client_for):
    ev = evaluate
    _rubrics(ev)
    researcher = make_member(ev.workshop, role="researcher")
    client = client_for(researcher)
    assert client.get(_url("overview", ev)).status_code == 200
    assert client.get(_url("results", ev)).status_code == 200
    assert client.post(_url("overview", ev), {"answers_per_person": 2, "raters_per_answer": 2}).status_code == 403
    assert client.post(_url("rubric_edit", ev, ev.balance.id), {}).status_code == 403
    assert client.get(_url("rate_start", ev)).status_code == 403


def test_exports_are_annotator_level_pseudonymous_and_resolve(evaluate, client_for):
    ev = evaluate
    _rubrics(ev)
    for p in ev.participants[:3]:
        services.assignments_ensure(membership=p)
        services.ratings_submit(membership=p, position=1, scores={ev.balance.id: 3, ev.accuracy.id: None})
    client = client_for(ev.facilitator)
    body = b"".join(client.get(_url("export_ratings", ev)).streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 6
    assert {r["participant"] for r in rows} == {p.pseudonym for p in ev.participants[:3]}
    assert "person0" not in body  # display names / usernames never leave
    assert {r["not_applicable"] for r in rows if r["axis_id"] == str(ev.accuracy.id)} == {"True"}
    only = b"".join(client.get(_url("export_ratings", ev) + f"?axis={ev.balance.id}").streaming_content)
    assert only.decode("utf-8-sig").count("\n") == 4
    assert client.get(_url("export_ratings", ev) + "?axis=١٢").status_code == 404
    data = json.loads(client.get(_url("export_rubrics", ev)).content)
    assert {r["axis_id"] for r in data["rubrics"]} == {ev.balance.id, ev.accuracy.id}
    assert data["rubrics"][0]["versions"][0]["complete"] is True


def test_results_page_shows_alpha_and_flags(evaluate, client_for):
    ev = evaluate
    _rubrics(ev)
    for i, p in enumerate(ev.participants):
        services.assignments_ensure(membership=p)
        for position in (1, 2, 3):
            services.ratings_submit(membership=p, position=position,
                                    scores={ev.balance.id: 1 + (i + position) % 5, ev.accuracy.id: 4})
    html = client_for(ev.facilitator).get(_url("results", ev)).content.decode()
    assert "agreement-table" in html and "read differently" in html  # Balance: scattered scores
    assert f"?axis={ev.balance.id}" in html  # every number links to the ratings behind it
