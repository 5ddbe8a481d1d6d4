"""The group summary shows others' conversations only as the Reflect rule allows, and never a
withdrawn member's data (issue 10, items 2 and 3)."""

import pytest
from django.urls import reverse

from coding import selectors, services
from workshops.models import Job
from tests.factories import make_conversation, make_participant
from workshops import services as workshop_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def generated(reflect, client_for, celery_eager, django_capture_on_commit_callbacks):
    # Two more participants talk about festivals: a topic of several people, not of one.
    reflect.p3, reflect.p4 = make_participant(reflect.workshop), make_participant(reflect.workshop)
    for member in (reflect.p3, reflect.p4):
        make_conversation(member, turns=[("Which festival comes next?", "The next festival is Holi, in spring.")])
    services.annotation_create(membership=reflect.p2, message_id=reflect.other_answer.id, start=0, end=6,
                               codes=["p2-only-label"], memo="P2's private memo")
    services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=5, codes=["warm"])
    with django_capture_on_commit_callbacks(execute=True):
        services.summary_request(membership=reflect.facilitator)
    assert Job.objects.get().status == "done"

    def page_for(membership):
        client = client_for(membership)
        return client.get(reverse("coding:summary", args=[reflect.workshop.slug])).content.decode()

    reflect.page_for = page_for
    return reflect


def test_participant_sees_only_own_and_baseline_conversations(generated):
    r = generated
    page = r.page_for(r.p1)
    # Their own conversation and the shared baseline are listed...
    assert "Tell me about Indian history" in page and "What is Thanksgiving?" in page
    # ...another participant's conversation is not: no title (their first message), no pseudonym.
    assert "What is Diwali?" not in page
    assert r.p2.pseudonym not in page
    # The group's label frequencies stay shared (the paper's session artifact), memos do not.
    assert "p2-only-label" in page and "P2&#x27;s private memo" not in page
    # Topics: the reader's own words and words several others used; never one other person's.
    topics = {t["term"] for t in selectors.summary_for(selectors.shown_summary(r.workshop).result, r.workshop,
                                                         r.p1)["topics"]}
    assert {"mughal", "festival"} <= topics
    assert not topics & {"diwali", "lights"}
    assert "diwali" not in page.casefold()
    staff_topics = {t["term"] for t in selectors.shown_summary(r.workshop).result["topics"]}
    assert "diwali" in staff_topics
    # Staff read every active participant's conversations (the same rule as Reflect).
    staff = r.page_for(r.facilitator)
    assert "What is Diwali?" in staff and r.p2.pseudonym in staff


def test_transcript_links_in_the_summary_open_for_their_reader(generated, client_for):
    r = generated
    result = selectors.summary_for(selectors.shown_summary(r.workshop).result, r.workshop, r.p1)
    for row in result["conversations"]:
        url = reverse("coding:transcript", args=[r.workshop.slug, row["id"]])
        assert client_for(r.p1).get(url).status_code == 200


def test_withdrawal_hides_the_old_summary_and_queues_one_without_them(generated, django_capture_on_commit_callbacks):
    r = generated
    before = r.page_for(r.facilitator)
    assert "p2-only-label" in before and "P2&#x27;s private memo" in before and "What is Diwali?" in before
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        workshop_services.membership_withdraw(membership=r.p2)
    # Computed before the withdrawal: not shown any more, even before the new one is ready.
    page = r.page_for(r.facilitator)
    for secret in ("p2-only-label", "P2&#x27;s private memo", "What is Diwali?", "diwali", r.p2.pseudonym):
        assert secret not in page, secret
    assert Job.objects.filter(status="queued", requested_by__isnull=True).count() == 1
    for callback in callbacks:  # the worker computes the new one (eager here)
        callback()
    job = selectors.shown_summary(r.workshop)
    assert job is not None and job.status == "done" and r.p2.id not in job.result["contributors"]
    page = r.page_for(r.facilitator)
    assert "Up to date" in page and r.p1.pseudonym in page
    for secret in ("p2-only-label", "P2&#x27;s private memo", "What is Diwali?", "diwali", r.p2.pseudonym):
        assert secret not in page, secret


def test_withdrawal_is_part_of_the_fingerprint(reflect):
    before = selectors.summary_fingerprint(reflect.workshop)
    workshop_services.membership_withdraw(membership=reflect.p2)
    assert selectors.summary_fingerprint(reflect.workshop) != before


def test_summary_computed_before_an_upgrade_is_hidden_after_a_withdrawal(generated):
    """Results stored without "contributors" are judged by their rows."""
    r = generated
    job = Job.objects.get()
    job.result = {k: v for k, v in job.result.items() if k != "contributors"}
    job.save(update_fields=["result"])
    assert selectors.shown_summary(r.workshop) == job
    workshop_services.membership_withdraw(membership=r.p2)
    assert selectors.shown_summary(r.workshop) is None


def test_topics_of_an_older_result_are_not_shown_to_participants(generated):
    """A result computed before topics recorded whose conversations they come from."""
    r = generated
    job = Job.objects.get()
    job.result = {**job.result, "topics": [{k: v for k, v in t.items() if k not in ("owners", "conversation_ids")}
                                           for t in job.result["topics"]]}
    job.save(update_fields=["result"])
    assert selectors.summary_for(job.result, r.workshop, r.p1)["topics"] == []
    assert selectors.summary_for(job.result, r.workshop, r.facilitator)["topics"]


def test_withdrawal_while_a_summary_is_computing_queues_another(reflect):
    services.annotation_create(membership=reflect.p2, message_id=reflect.other_answer.id, start=0, end=6,
                               codes=["p2-only-label"])
    running = services.summary_request(membership=reflect.facilitator)  # queued, not run (no commit here)
    workshop_services.membership_withdraw(membership=reflect.p2)
    newer = selectors.latest_summary_job(reflect.workshop)
    assert newer.pk != running.pk and newer.fingerprint == selectors.summary_fingerprint(reflect.workshop)
