"""Pairwise rating: compare-mode candidates handed out as pairs, blinded order, canonical storage."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from evaluation import selectors, services
from evaluation.models import PairAssignment, PairItem, PairRating
from llm_gateway.models import CompareMode, Conversation, Message, MessageRole, MessageStatus
from tests.evaluation.conftest import SCALE
from workshops import services as workshop_services

pytestmark = pytest.mark.django_db


def compare_conversation(owner, question: str, answers: list[str], *, is_baseline=False, sandbox=False):
    conversation = Conversation.objects.create(workshop=owner.workshop, owner=owner, endpoint_key="test-endpoint",
                                               compare_mode=CompareMode.MODELS, is_baseline=is_baseline,
                                               is_sandbox=sandbox, title=question[:60])
    asked = Message.objects.create(conversation=conversation, role=MessageRole.USER, content=question, position=0,
                                   status=MessageStatus.COMPLETE)
    for slot, text in enumerate(answers):
        Message.objects.create(conversation=conversation, role=MessageRole.ASSISTANT, content=text, position=1 + slot,
                               status=MessageStatus.COMPLETE, reply_to=asked, is_candidate=True, slot=slot)
    return conversation, asked


@pytest.fixture
def pairs(evaluate):
    ev = evaluate
    services.rubric_save(axis=ev.balance, by=ev.facilitator, scale=SCALE)
    services.rubric_save(axis=ev.accuracy, by=ev.facilitator, scale=SCALE)
    ev.shared, ev.question = compare_conversation(ev.facilitator, "Why did the Mughal empire decline?",
                                                  ["Weak successors.", "Many reasons: revenue, wars, the British."],
                                                  is_baseline=True, sandbox=True)
    ev.private, _q = compare_conversation(ev.participants[0], "private compare question", ["mine A", "mine B"])
    ev.sandboxed, _q = compare_conversation(ev.facilitator, "sandbox compare", ["sand A", "sand B"], sandbox=True)
    return ev


def test_pairs_come_from_compare_mode_candidates_of_the_pool_only(pairs):
    ev = pairs
    found = selectors.compare_pairs(ev.workshop)
    first, second = ev.shared.messages.filter(is_candidate=True).order_by("slot")
    assert found == [(ev.question.id, first.id, second.id)]  # never a private or sandbox conversation
    cfg = selectors.settings_for(ev.workshop)
    cfg.include_participant_conversations = True
    cfg.save()
    assert len(selectors.compare_pairs(ev.workshop)) == 2
    workshop_services.membership_withdraw(membership=ev.participants[0])
    assert len(selectors.compare_pairs(ev.workshop)) == 1  # a withdrawn member's answers leave the pool


def test_three_candidates_make_three_pairs(pairs):
    ev = pairs
    compare_conversation(ev.facilitator, "three answers", ["a", "b", "c"], is_baseline=True, sandbox=True)
    assert len(selectors.compare_pairs(ev.workshop)) == 1 + 3


def test_choice_is_stored_in_canonical_order_whatever_side_was_shown(pairs):
    ev = pairs
    stored = []
    for p in ev.participants:
        [assignment] = services.pair_assignments_ensure(membership=p)
        services.pair_ratings_submit(membership=p, position=1,
                                     choices={ev.balance.id: "left", ev.accuracy.id: "tie", None: "right"})
        view = selectors.pair_view(p, 1)
        # What the rater saw on the left is the answer their "left" choice names.
        left_is_first = view["left"].id == assignment.item.first_id
        row = PairRating.objects.get(membership=p, axis=ev.balance)
        assert row.choice == ("first" if left_is_first else "second")
        assert row.shown_swapped == assignment.swapped
        assert PairRating.objects.get(membership=p, axis=None).choice == ("second" if left_is_first else "first")
        assert view["mine"][ev.balance.id] == "left"  # shown back as the rater saw it
        stored.append(assignment.swapped)
        assert PairAssignment.objects.get(pk=assignment.pk).done_at is not None
    assert PairItem.objects.count() == 1
    assert sorted(stored) == [False, False, True, True]  # four raters: each order shown to two of them


def test_a_second_choice_replaces_the_first_and_bad_input_is_refused(pairs):
    ev = pairs
    p = ev.participants[1]
    services.pair_assignments_ensure(membership=p)
    services.pair_ratings_submit(membership=p, position=1, choices={ev.balance.id: "left"})
    assert PairAssignment.objects.get(membership=p).done_at is None  # accuracy not chosen yet
    services.pair_ratings_submit(membership=p, position=1, choices={ev.balance.id: "right", ev.accuracy.id: "not_applicable"})
    assert PairRating.objects.filter(membership=p, axis=ev.balance).count() == 1
    with pytest.raises(ValidationError):
        services.pair_ratings_submit(membership=p, position=1, choices={ev.balance.id: "first"})
    with pytest.raises(ValidationError):
        services.pair_ratings_submit(membership=p, position=2, choices={ev.balance.id: "left"})
    with pytest.raises(ValidationError):
        services.pair_ratings_submit(membership=ev.participants[2], position=1, choices={ev.balance.id: "left"})
    # The database refuses a per-axis choice without the rubric version it was made under.
    item = PairItem.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        PairRating.objects.create(item=item, membership=ev.participants[3], axis=ev.accuracy, choice="tie")


def test_rate_start_goes_on_to_pairs_and_the_page_shows_both_answers(pairs, client_for):
    ev = pairs
    p = ev.participants[2]
    services.assignments_ensure(membership=p)
    for a in selectors.assignments_of(p):
        services.ratings_submit(membership=p, position=a.position, scores={ev.balance.id: 3, ev.accuracy.id: 4})
    client = client_for(p)
    response = client.get(reverse("evaluation:rate_start", args=[ev.workshop.slug]))
    assert response.status_code == 302 and response["Location"].endswith("/rate/pairs/1/")
    page = client.get(response["Location"]).content.decode()
    assert "Weak successors." in page and "Many reasons: revenue, wars, the British." in page
    assert "Why did the Mughal empire decline?" in page
    assert " pairs compared" in page and 'aria-label="Pairs to compare"' in page and "/rate/pairs/1/" in page
    view = selectors.pair_view(p, 1)
    response = client.post(response["Location"], {f"axis_{ev.balance.id}": "left", f"axis_{ev.accuracy.id}": "right"})
    assert response.status_code == 302
    assert PairRating.objects.get(membership=p, axis=ev.balance).choice == (
        "first" if view["left"].id == view["item"].first_id else "second")
    done = client.get(reverse("evaluation:rate_start", args=[ev.workshop.slug]))
    assert done.status_code == 200 and "Pairs you compared" in done.content.decode()
    bad = client.post(reverse("evaluation:rate_pair", args=[ev.workshop.slug, 1]), {f"axis_{ev.balance.id}": "up"})
    assert bad.status_code == 400


def test_pair_ratings_export_and_results(pairs, client_for):
    ev = pairs
    for p in ev.participants[:2]:
        services.pair_assignments_ensure(membership=p)
        services.pair_ratings_submit(membership=p, position=1, choices={ev.balance.id: "left", ev.accuracy.id: "tie"})
    services.pair_assignments_ensure(membership=ev.participants[3])
    services.pair_ratings_submit(membership=ev.participants[3], position=1, choices={ev.balance.id: "tie", ev.accuracy.id: "tie"})
    workshop_services.membership_withdraw(membership=ev.participants[1])
    client = client_for(ev.facilitator)
    body = b"".join(client.get(reverse("evaluation:export_pair_ratings", args=[ev.workshop.slug])).streaming_content)
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert len(rows) == 4  # the withdrawn member's choices are left out
    assert {r["participant"] for r in rows} == {m.pseudonym for m in (ev.participants[0], ev.participants[3])}
    assert {r["choice"] for r in rows} <= {"first", "second", "tie"}
    assert all(r["first_answer"] == "Weak successors." for r in rows)
    summary = {(r["axis"].id if r["axis"] else None): r["counts"] for r in selectors.pair_summary(ev.workshop)}
    assert summary[ev.accuracy.id]["tie"] == 2
    page = client.get(reverse("evaluation:results", args=[ev.workshop.slug])).content.decode()
    assert 'id="pair-table"' in page
