"""Rubric versioning, the rating pool and its hand-out, rating constraints."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from evaluation import selectors, services
from evaluation.models import Rating, RatingAssignment, RubricVersion
from tests.evaluation.conftest import SCALE
from tests.factories import make_conversation, make_participant
from workshops import services as workshop_services

pytestmark = pytest.mark.django_db


def _rubrics(ev):
    services.rubric_save(axis=ev.balance, by=ev.facilitator, scale=SCALE, should=["name who disagrees"],
                         examples=[(ev.example.id, "high")])
    services.rubric_save(axis=ev.accuracy, by=ev.facilitator, scale=SCALE)


def test_rubric_is_versioned_once_ratings_exist(evaluate):
    ev = evaluate
    v1 = services.rubric_save(axis=ev.balance, by=ev.facilitator, scale=SCALE)
    again = services.rubric_save(axis=ev.balance, by=ev.facilitator, scale={**SCALE, "3": "Names one other view."})
    assert again.pk == v1.pk and again.number == 1  # nobody rated yet: edited in place
    services.rubric_save(axis=ev.accuracy, by=ev.facilitator, scale=SCALE)
    p = ev.participants[0]
    services.assignments_ensure(membership=p)
    services.ratings_submit(membership=p, position=1, scores={ev.balance.id: 4, ev.accuracy.id: 5})
    v2 = services.rubric_save(axis=ev.balance, by=ev.facilitator, scale={**SCALE, "5": "Every view, fairly."})
    assert v2.number == 2 and v2.pk != v1.pk
    old = Rating.objects.get(membership=p, axis=ev.balance)
    assert old.rubric_version_id == v1.pk  # the earlier rating keeps the version it was made with
    assert RubricVersion.objects.get(pk=v1.pk).scale["3"] == "Names one other view."
    # Rating again after the edit names the new version.
    services.ratings_submit(membership=p, position=1, scores={ev.balance.id: 3, ev.accuracy.id: 5})
    assert Rating.objects.get(membership=p, axis=ev.balance).rubric_version_id == v2.pk
    assert Rating.objects.filter(membership=p, axis=ev.balance).count() == 1


def test_rubric_snapshots_examples_and_refuses_foreign_excerpts(evaluate):
    ev = evaluate
    v = services.rubric_save(axis=ev.balance, by=ev.facilitator, scale=SCALE, examples=[(ev.example.id, "high")])
    assert v.examples == [{"example_id": ev.example.id, "polarity": "high", "excerpt": "Historians disagree"}]
    with pytest.raises(ValidationError):
        services.rubric_save(axis=ev.accuracy, by=ev.facilitator, scale=SCALE, examples=[(ev.example.id, "low")])


def test_incomplete_rubric_cannot_be_rated(evaluate):
    ev = evaluate
    services.rubric_save(axis=ev.balance, by=ev.facilitator, scale={**SCALE, "4": "  "})
    assert selectors.ratable_axes(ev.workshop) == []
    p = ev.participants[0]
    services.assignments_ensure(membership=p)
    with pytest.raises(ValidationError, match="complete rubric"):
        services.ratings_submit(membership=p, position=1, scores={ev.balance.id: 3})


def test_scores_outside_one_to_five_are_refused_by_service_and_database(evaluate):
    ev = evaluate
    _rubrics(ev)
    p = ev.participants[0]
    services.assignments_ensure(membership=p)
    for bad in (0, 6, -1):
        with pytest.raises(ValidationError):
            services.ratings_submit(membership=p, position=1, scores={ev.balance.id: bad})
    services.ratings_submit(membership=p, position=1, scores={ev.balance.id: None, ev.accuracy.id: 2})
    rating = Rating.objects.get(membership=p, axis=ev.balance)
    assert rating.score is None  # "does not apply"
    with transaction.atomic(), pytest.raises(IntegrityError):
        Rating.objects.filter(pk=rating.pk).update(score=7)


def test_only_handed_out_answers_can_be_rated(evaluate):
    ev = evaluate
    _rubrics(ev)
    services.assignments_ensure(membership=ev.participants[0])
    with pytest.raises(ValidationError, match="not handed to you"):
        services.ratings_submit(membership=ev.participants[1], position=1, scores={ev.balance.id: 3})


def test_every_answer_reaches_the_overlap_before_any_gets_more(evaluate):
    ev = evaluate
    services.evaluation_settings_update(workshop=ev.workshop, answers_per_person=3, raters_per_answer=3,
                                        include_participant_conversations=False)
    for p in ev.participants:
        services.assignments_ensure(membership=p)
    counts = sorted(RatingAssignment.objects.filter(item__workshop=ev.workshop)
                    .values_list("item__message_id", flat=True))
    per_item = {m: counts.count(m) for m in set(counts)}
    # 3 baseline answers, 4 people × 3 answers: every answer rated by at least 3, at most 4 people.
    assert len(per_item) == 3 and min(per_item.values()) >= 3 and max(per_item.values()) <= 4
    # Idempotent: asking again hands out nothing new.
    services.assignments_ensure(membership=ev.participants[0])
    assert RatingAssignment.objects.filter(membership=ev.participants[0]).count() == 3


def test_pool_never_holds_sandbox_withdrawn_or_private_answers_unless_allowed(evaluate):
    ev = evaluate
    pool = set(selectors.pool_messages(ev.workshop).values_list("conversation_id", flat=True))
    assert pool == {ev.baseline.id}  # default: the shared baseline only
    services.evaluation_settings_update(workshop=ev.workshop, answers_per_person=8, raters_per_answer=3,
                                        include_participant_conversations=True)
    withdrawn = ev.participants[3]
    workshop_services.membership_withdraw(membership=withdrawn)
    pool = set(selectors.pool_messages(ev.workshop).values_list("conversation_id", flat=True))
    assert ev.sandbox.id not in pool
    assert ev.own[3].id not in pool  # the withdrawn participant's conversation
    assert pool == {ev.baseline.id, ev.own[0].id, ev.own[1].id, ev.own[2].id}


def test_withdrawn_members_ratings_leave_agreement_and_export(evaluate):
    ev = evaluate
    _rubrics(ev)
    for p in ev.participants:
        services.assignments_ensure(membership=p)
        for a in RatingAssignment.objects.filter(membership=p):
            services.ratings_submit(membership=p, position=a.position, scores={ev.balance.id: 4, ev.accuracy.id: 2})
    before = {r["axis"].id: r["ratings_total"] for r in selectors.agreement(ev.workshop, resamples=20)}
    workshop_services.membership_withdraw(membership=ev.participants[0])
    after = {r["axis"].id: r["ratings_total"] for r in selectors.agreement(ev.workshop, resamples=20)}
    assert after[ev.balance.id] == before[ev.balance.id] - 3
    assert not selectors.ratings_for_export(ev.workshop).filter(membership=ev.participants[0]).exists()


def test_late_joiner_gets_answers_too(evaluate):
    ev = evaluate
    late = make_participant(ev.workshop)
    make_conversation(late, [("q", "a")])
    assert len(services.assignments_ensure(membership=late)) == 3


def test_a_rating_refreshes_the_facilitators_dashboard(evaluate, monkeypatch, django_capture_on_commit_callbacks):
    from workshops import events

    ev = evaluate
    _rubrics(ev)
    p = ev.participants[0]
    services.assignments_ensure(membership=p)
    sent = []
    monkeypatch.setattr(events, "send_now", lambda workshop_id, kind, payload=None: sent.append((kind, payload)))
    with django_capture_on_commit_callbacks(execute=True):
        services.ratings_submit(membership=p, position=1, scores={ev.balance.id: 4, ev.accuracy.id: 2})
    assert ("evaluate", {"membership": p.id}) in sent
    assert all("score" not in str(payload) for _kind, payload in sent)  # no rating travels on the socket
    from evaluation import selectors as evaluation_selectors

    assert evaluation_selectors.progress_by_member(ev.workshop)[p.id] == {"rated": "1/3"}  # the pool holds the three baseline answers


def test_dashboard_says_who_is_done_rating(evaluate, client_for):
    ev = evaluate
    _rubrics(ev)
    first, second = ev.participants[:2]
    for a in services.assignments_ensure(membership=first):
        services.ratings_submit(membership=first, position=a.position, scores={ev.balance.id: 3, ev.accuracy.id: 3})
    services.assignments_ensure(membership=second)
    html = client_for(ev.facilitator).get(f"/w/{ev.workshop.slug}/dashboard/").content.decode()
    assert "Rating · 3/3 answers" in html and "Rating · 0/3 answers" in html and "Has not started rating" in html
