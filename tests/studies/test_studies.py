"""Studies, templates, the comparison of final axes, matches and the label view."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from coding.models import Code
from evaluation import services as evaluation_services
from llm_gateway.models import Conversation, GatewaySettings, WorkshopModel
from studies import selectors, services
from studies.models import AxisMatch, ConversationOrigin, MatchStatus, WorkshopOrigin
from tests.factories import UserFactory, facilitator_of, make_conversation, make_member, make_participant, make_workshop
from tests.studies.world import two_groups
from workshops.models import Membership, Role
from workshops.tasks import run_job

pytestmark = pytest.mark.django_db


def _template():
    template = make_workshop(audience="Students aged 14-17")
    template.orientation_md, template.consent_text = "# Our orientation", "Consent <b>text</b>"
    template.practice_text, template.practice_example_codes = "Unrelated sample about bread.", "crust\nflour"
    template.readiness_pass_mark = 80
    template.save()
    template.readiness_questions.all().delete()
    template.readiness_questions.create(position=0, prompt="What is a code?", choices=["a label", "a number"],
                                        correct_choice=0, explanation="Words of your own")
    WorkshopModel.objects.create(workshop=template, endpoint_key="llama", position=0, blind_label="Model A")
    WorkshopModel.objects.create(workshop=template, endpoint_key="mistral", position=1, blind_label="Model B")
    GatewaySettings.objects.create(workshop=template, compare_mode="models", compare_count=2, max_answer_tokens=300)
    facilitator = facilitator_of(template)
    baseline = make_conversation(facilitator, [("Who ruled Delhi?", "Several dynasties."), ("And later?", "The Mughals.")],
                                 is_baseline=True)
    participant = make_participant(template)
    own = make_conversation(participant, [("Private question", "Private answer")])
    Code.objects.create(workshop=template, membership=participant, text="mine", normalized="mine")
    return template, facilitator, baseline, participant, own


def test_new_workshop_from_template_copies_the_setup_and_no_participant_data():
    template, facilitator, baseline, participant, own = _template()
    new = services.workshop_from_template(template=template, title="Second group", slug="second-group",
                                          by=facilitator.user)
    for field in services.TEMPLATE_FIELDS:
        assert getattr(new, field) == getattr(template, field), field
    assert new.stage == "familiarize"
    assert [(q.prompt, q.choices, q.correct_choice) for q in new.readiness_questions.all()] == [
        ("What is a code?", ["a label", "a number"], 0)]
    assert list(WorkshopModel.objects.filter(workshop=new).values_list("endpoint_key", "blind_label")) == [
        ("llama", "Model A"), ("mistral", "Model B")]
    settings = GatewaySettings.objects.get(workshop=new)
    assert (settings.compare_mode, settings.compare_count, settings.max_answer_tokens) == ("models", 2, 300)
    # Only the facilitator is a member; no participant, code or private conversation came along.
    assert list(Membership.objects.filter(workshop=new).values_list("role", flat=True)) == [Role.FACILITATOR]
    assert not Code.objects.filter(workshop=new).exists()
    copies = list(Conversation.objects.filter(workshop=new))
    assert len(copies) == 1 and copies[0].is_baseline
    origin = ConversationOrigin.objects.get(conversation=copies[0])
    assert origin.source == baseline and origin.source_workshop == template
    assert [(m.role, m.content) for m in copies[0].messages.order_by("position")] == [
        (m.role, m.content) for m in baseline.messages.order_by("position")]
    assert copies[0].messages.filter(role="assistant").exclude(reply_to=None).first().reply_to.conversation == copies[0]
    record = WorkshopOrigin.objects.get(workshop=new)
    assert record.template == template and record.copied["baseline_conversations"] == 1
    assert record.copied["readiness_questions"] == 1 and record.copied["models"] == 2


def test_template_copies_rubric_texts_without_copying_axes():
    study, a, _b = two_groups(participants=1)
    axis = a.axes[0]
    evaluation_services.rubric_save(axis=axis, by=a.facilitator, scale={str(p): f"point {p}" for p in range(1, 6)})
    new = services.workshop_from_template(template=a.workshop, title="Third", slug="third-group", by=a.facilitator.user)
    record = WorkshopOrigin.objects.get(workshop=new)
    assert [r["name"] for r in record.rubrics] == [axis.name] and record.rubrics[0]["scale"]["5"] == "point 5"
    assert not new.axes.exists()
    # The template was in a study: the copy joins it, and the study's researcher can read it.
    assert selectors.study_of(new) == study
    assert Membership.objects.filter(workshop=new, user=a.researcher.user, role=Role.RESEARCHER).exists()


def test_only_the_templates_facilitator_may_copy_it():
    template, _f, _b, participant, _own = _template()
    researcher = make_member(template, role=Role.RESEARCHER)
    for user in (participant.user, researcher.user, UserFactory()):
        with pytest.raises(PermissionDenied):
            services.workshop_from_template(template=template, title="x", slug="x-copy", by=user)
    with pytest.raises(ValidationError):
        services.workshop_from_template(template=template, title="x", slug=template.slug, by=facilitator_of(template).user)


def test_study_access_reaches_workshops_added_later_and_keeps_roles():
    study, a, b = two_groups(participants=1)
    later = make_workshop(facilitator=a.facilitator.user)
    services.study_add_workshop(study=study, workshop=later, by=a.facilitator.user)
    assert Membership.objects.get(workshop=later, user=a.researcher.user).role == Role.RESEARCHER
    # Someone else's workshop cannot be put into the study.
    with pytest.raises(PermissionDenied):
        services.study_add_workshop(study=study, workshop=make_workshop(), by=a.facilitator.user)
    assert set(selectors.study_workshops(study, a.researcher.user)) == {a.workshop, b.workshop, later}
    # b's own researcher reads b only.
    assert list(selectors.study_workshops(study, b.researcher.user)) == [b.workshop]


def test_suggestions_pair_axes_by_meaning_and_people_decide():
    study, a, b = two_groups(participants=1)
    created = services.matches_suggest(study=study, by=a.researcher.user, workshops=[a.workshop, b.workshop])
    pairs = {(m.axis_a.name, m.axis_b.name): m for m in created}
    assert ("Bias", "Religious and political bias") in pairs
    assert ("Accuracy", "Factual correctness") in pairs
    assert all(m.status == MatchStatus.SUGGESTED and 0 < m.similarity <= 1 for m in created)
    assert pairs[("Accuracy", "Factual correctness")].similarity > 0.5
    # Nothing merged: both groups keep their axes as written.
    assert a.workshop.axes.count() == 3 and b.workshop.axes.count() == 3
    services.match_decide(match=pairs[("Bias", "Religious and political bias")], by=a.researcher.user,
                          status=MatchStatus.CONFIRMED, note="same concern, different lens")
    for (x, y), match in pairs.items():
        if (x, y) != ("Bias", "Religious and political bias") and (x, y) != ("Accuracy", "Factual correctness"):
            services.match_decide(match=match, by=a.researcher.user, status=MatchStatus.REJECTED)
    # Suggesting again keeps the decisions.
    assert services.matches_suggest(study=study, by=a.researcher.user, workshops=[a.workshop, b.workshop]) == []
    data = selectors.comparison(study, [a.workshop, b.workshop])
    unmatched = {c["workshop"].slug: [x["name"] for x in c["unmatched"]] for c in data["columns"]}
    assert "Empathy" in unmatched[b.workshop.slug]
    assert "Bias" not in unmatched[a.workshop.slug]
    column_a = data["columns"][0]["axes"]
    assert [x["group_rank"] for x in column_a] == [1, 2, 3]
    assert all(x["likert"]["n"] == 1 for x in column_a)


def test_editing_a_match_picks_another_counterpart_and_records_the_first():
    study, a, b = two_groups(participants=1)
    created = services.matches_suggest(study=study, by=a.researcher.user, workshops=[a.workshop, b.workshop])
    match = next(m for m in created if m.axis_a.name == "Accuracy")
    empathy = next(x for x in b.axes if x.name == "Empathy")
    edited = services.match_decide(match=match, by=a.researcher.user, status=MatchStatus.CONFIRMED, axis_b=empathy)
    assert edited.axis_b == empathy and edited.suggested_axis_b.name == "Factual correctness"
    assert edited.similarity is None and edited.decided_by == a.researcher.user
    with pytest.raises(ValidationError):  # the counterpart must come from the same other group
        services.match_decide(match=match, by=a.researcher.user, status=MatchStatus.CONFIRMED, axis_b=a.axes[1])
    with pytest.raises(PermissionDenied):  # b's researcher cannot read a
        services.match_decide(match=match, by=b.researcher.user, status=MatchStatus.REJECTED)


def test_comparison_pages_exports_and_refusals(client):
    study, a, b = two_groups(participants=1)
    client.force_login(a.researcher.user)
    q = f"?w={a.workshop.slug}&w={b.workshop.slug}"
    response = client.post(f"/studies/{study.slug}/compare/suggest/", {"w": [a.workshop.slug, b.workshop.slug]})
    assert response.status_code == 302
    job = selectors.match_job([a.workshop, b.workshop])  # queued for a worker (the embedding model lives there)
    assert job.kind == "study_match" and job.status == "queued"
    assert 'data-job="active"' in client.get(f"/studies/{study.slug}/compare/{q}").content.decode()
    run_job(job.id)
    job.refresh_from_db()
    assert job.status == "done" and job.result["created"] >= 2
    match = AxisMatch.objects.get(study=study, axis_a__name="Bias", axis_b__name="Religious and political bias")
    response = client.post(f"/studies/{study.slug}/compare/matches/{match.pk}/",
                           {"status": "confirmed", "note": "=HYPERLINK(\"x\")", "axis_b": match.axis_b_id,
                            "w": [a.workshop.slug, b.workshop.slug]})
    assert response.status_code == 302
    page = client.get(f"/studies/{study.slug}/compare/{q}").content.decode()
    assert "Religious and political bias" in page and "Empathy" in page and "Confirmed" in page
    body = b"".join(client.get(f"/studies/{study.slug}/compare/export.csv{q}").streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    confirmed = [r for r in rows if r["status"] == "confirmed"]
    assert len(confirmed) == 1 and confirmed[0]["axis_a_name"] == "Bias"
    assert confirmed[0]["decided_by"] == a.researcher.user.username
    assert confirmed[0]["note"].startswith("'=")  # neutralised for spreadsheets
    assert any(r["kind"] == "unmatched" and r["axis_a_name"] == "Empathy" for r in rows)
    data = json.loads(b"".join(client.get(f"/studies/{study.slug}/compare/export.json{q}").streaming_content))
    assert data["workshops"] == [a.workshop.slug, b.workshop.slug]
    assert any(r["status"] == "confirmed" and r["similarity"] for r in data["rows"])
    # b's researcher may not compare a workshop they cannot read; an outsider does not see the study.
    client.force_login(b.researcher.user)
    assert client.get(f"/studies/{study.slug}/compare/{q}").status_code == 404
    assert client.get(f"/studies/{study.slug}/compare/export.csv{q}").status_code == 404
    assert client.post(f"/studies/{study.slug}/compare/matches/{match.pk}/", {"status": "rejected"}).status_code == 404
    client.force_login(UserFactory())
    assert client.get(f"/studies/{study.slug}/").status_code == 404
    client.force_login(a.people[0].user)  # a participant
    assert client.get(f"/studies/{study.slug}/compare/").status_code == 404


def test_label_view_finds_labels_containing_the_term_or_near_it_per_group(client):
    study, a, b = two_groups(participants=3)
    groups = selectors.label_view([a.workshop, b.workshop], "bias")
    codes_a = {r["label"]: r for r in groups[0]["codes"]}
    assert {"colonial bias", "western bias", "religious bias", "bias to british government"} <= set(codes_a)
    assert codes_a["colonial bias"]["participants"] == 1 and codes_a["colonial bias"]["contains"]
    assert codes_a["colonial bias"]["excerpts"][0]["excerpt"] == "Many historians differ on this"
    assert {r["label"] for r in groups[0]["attributes"]} >= {"Bias", "Religious bias"}
    near = [r for g in groups for r in g["codes"] + g["attributes"] if not r["contains"]]
    assert all(r["similarity"] >= selectors.LABEL_NEAR for r in near)
    assert not any(r["label"] == "simple language" for r in groups[0]["codes"])
    client.force_login(a.researcher.user)
    page = client.get(f"/studies/{study.slug}/labels/?q=bias&w={a.workshop.slug}&w={b.workshop.slug}").content.decode()
    assert "colonial bias" in page and "Many historians differ on this" in page


def test_withdrawn_participants_labels_are_left_out_of_the_label_view():
    from workshops import services as workshop_services

    study, a, b = two_groups(participants=3)
    workshop_services.membership_withdraw(membership=a.people[0], reason="")
    groups = selectors.label_view([a.workshop], "colonial")
    assert not any(r["label"] == "colonial bias" for r in groups[0]["codes"])


def test_template_page_creates_the_workshop(client):
    template, facilitator, *_rest = _template()
    client.force_login(facilitator.user)
    assert client.get(f"/w/{template.slug}/template/").status_code == 200
    response = client.post(f"/w/{template.slug}/template/", {"title": "Group two", "slug": "group-two"})
    assert response.status_code == 302 and response["Location"] == "/w/group-two/"
    assert WorkshopOrigin.objects.get(workshop__slug="group-two").template == template
    assert client.post(f"/w/{template.slug}/template/", {"title": "Again", "slug": "group-two"}).status_code == 400


def test_a_suggestion_job_needs_two_readable_workshops():
    study, a, b = two_groups(participants=1)
    with pytest.raises(ValidationError):
        services.matches_request(study=study, by=a.researcher.user, workshops=[a.workshop])
    with pytest.raises(PermissionDenied):
        services.matches_request(study=study, by=b.researcher.user, workshops=[a.workshop, b.workshop])
    job = services.matches_request(study=study, by=a.researcher.user, workshops=[a.workshop, b.workshop])
    assert job.params == {"study": study.pk, "workshops": [a.workshop.pk, b.workshop.pk], "user": a.researcher.user.pk}
    # Asked again while it waits: the same job, not a second one.
    assert services.matches_request(study=study, by=a.researcher.user, workshops=[a.workshop, b.workshop]) == job
