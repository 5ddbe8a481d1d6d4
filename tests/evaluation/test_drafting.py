"""'Draft with a model': drafted scale points fill only empty points, stay marked until a person
edits or approves them, block rating until then, and the export says what a model wrote."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from evaluation import drafting, selectors, services
from evaluation.models import RubricVersion
from tests.evaluation.conftest import SCALE
from workshops import jobs
from workshops.models import Job

pytestmark = pytest.mark.django_db


def test_parse_draft_is_strict():
    good = json.dumps({str(p): f"point {p}" for p in range(1, 6)})
    assert drafting.parse_draft(f"```json\n{good}\n```")["3"] == "point 3"
    assert drafting.parse_draft(json.dumps({"scale": json.loads(good)}))["5"] == "point 5"
    assert drafting.parse_draft("1 is bad, 5 is good") is None
    assert drafting.parse_draft(json.dumps({"1": "a", "2": "b", "3": "c", "4": "d"})) is None  # a point missing
    assert drafting.parse_draft(json.dumps({"1": "a", "2": "b", "3": " ", "4": "d", "5": "e"})) is None
    assert drafting.parse_draft(json.dumps({"1": 1, "2": "b", "3": "c", "4": "d", "5": "e"})) is None


def _draft(ev, use_judge, *, mode="ok", axis=None):
    use_judge(judge=f"fault:drafter:{mode}")
    job = services.rubric_draft_request(workshop=ev.workshop, by=ev.facilitator,
                                        axis_ids=[(axis or ev.balance).id], endpoint_key="judge")
    jobs.execute(jobs.job_claim(job_id=job.id))  # what the worker does with the queued job
    job.refresh_from_db()
    return job


@pytest.mark.django_db(transaction=True)
def test_draft_fills_only_empty_points_and_blocks_rating_until_reviewed(evaluate, use_judge, client_for):
    ev = evaluate
    services.rubric_save(axis=ev.balance, by=ev.facilitator, scale={"1": "Only one side, by us."})
    job = _draft(ev, use_judge)
    assert job.status == "done", job.error
    version = RubricVersion.objects.get(rubric__axis=ev.balance)
    assert version.scale["1"] == "Only one side, by us."  # a person's text is never replaced
    assert version.scale["2"].startswith("Drafted point 2")
    assert version.drafted == ["scale.2", "scale.3", "scale.4", "scale.5"]
    assert version.model_text["scale.2"]["model"] == "fault:drafter:ok"
    assert not [r for r in selectors.ratable_axes(ev.workshop) if r["axis"].id == ev.balance.id]

    client = client_for(ev.facilitator)
    page = client.get(reverse("evaluation:rubric_edit", args=[ev.workshop.slug, ev.balance.id])).content.decode()
    assert 'id="drafted-note"' in page and page.count('data-drafted="1"') == 4
    assert "<script>alert(2)</script>" not in page and "&lt;script&gt;alert(2)" in page  # shown as text

    # Saving with one point edited: that point is the person's, the others stay drafted.
    form = {f"point_{p}": version.scale[str(p)] for p in range(1, 6)}
    form["point_2"] = "Mostly one side; the facilitator's words."
    client.post(reverse("evaluation:rubric_edit", args=[ev.workshop.slug, ev.balance.id]), form)
    version.refresh_from_db()
    assert version.drafted == ["scale.3", "scale.4", "scale.5"]
    assert version.model_text["scale.2"]["reviewed"] == "edited"
    # Approving keeps the drafted text and records who approved it; the rubric can now be rated.
    form["point_2"] = version.scale["2"]
    client.post(reverse("evaluation:rubric_edit", args=[ev.workshop.slug, ev.balance.id]), {**form, "approve": "1"})
    version.refresh_from_db()
    assert version.drafted == [] and version.scale["3"].startswith("Drafted point 3")
    assert version.model_text["scale.3"] == {**version.model_text["scale.3"], "reviewed": "approved",
                                             "reviewed_by": ev.facilitator.pseudonym}
    assert [r for r in selectors.ratable_axes(ev.workshop) if r["axis"].id == ev.balance.id]
    exported = json.loads(client.get(reverse("evaluation:export_rubrics", args=[ev.workshop.slug])).content)
    [rubric] = [r for r in exported["rubrics"] if r["axis_id"] == ev.balance.id]
    assert rubric["versions"][-1]["model_text"]["scale.4"]["reviewed"] == "approved"


@pytest.mark.django_db(transaction=True)
def test_an_unreadable_draft_changes_nothing_and_says_why(evaluate, use_judge):
    ev = evaluate
    job = _draft(ev, use_judge, mode="garbage")
    assert job.status == "failed" and "could not be read" in job.error
    assert not RubricVersion.objects.filter(rubric__axis=ev.balance).exists()


def test_a_complete_rubric_is_not_drafted_and_a_used_version_is_not_changed(evaluate, use_judge):
    ev = evaluate
    services.rubric_save(axis=ev.balance, by=ev.facilitator, scale=SCALE)
    use_judge(judge="fault:drafter:ok")
    with pytest.raises(ValidationError, match="already has a description"):
        services.rubric_draft_request(workshop=ev.workshop, by=ev.facilitator, axis_ids=[ev.balance.id],
                                      endpoint_key="judge")
    # A version participants rated with is never edited in place by a draft: a new version is made.
    services.rubric_save(axis=ev.accuracy, by=ev.facilitator, scale=SCALE)
    p = ev.participants[0]
    services.assignments_ensure(membership=p)
    services.ratings_submit(membership=p, position=1, scores={ev.balance.id: 3, ev.accuracy.id: 3})
    services.rubric_save(axis=ev.accuracy, by=ev.facilitator, scale={**SCALE, "4": ""})  # v2: point 4 emptied
    from llm_gateway import registry

    v3 = services.rubric_draft_store(axis=ev.accuracy, by=ev.facilitator, scale={str(p): f"d{p}" for p in range(1, 6)},
                                     endpoint=registry.get("judge"))
    assert v3.number == 2 and v3.scale["4"] == "d4" and v3.drafted == ["scale.4"]  # v2 was unused: filled in place
    assert RubricVersion.objects.get(rubric__axis=ev.accuracy, number=1).scale == SCALE
    assert Job.objects.filter(kind="rubric_draft").count() == 0


def test_draft_needs_a_configured_model(evaluate):
    with pytest.raises(ValidationError, match="not a configured"):
        services.rubric_draft_request(workshop=evaluate.workshop, by=evaluate.facilitator,
                                      axis_ids=[evaluate.balance.id], endpoint_key="nope")
