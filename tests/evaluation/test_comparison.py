"""Model comparison: the job end to end against deterministic endpoints (exact means), a model
that fails on some prompts (missing cells with the reason, retried on resume, never asked twice
when complete), refusals, what the models are sent, and the blind A/B among participants."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError

from evaluation import comparison as svc
from evaluation import selectors, services
from evaluation.models import ComparisonAnswer, JudgeScore, PairItem, PairRating, RatingItem
from llm_gateway.models import Message
from tests.evaluation.conftest import SCALE
from workshops import jobs
from workshops.models import JobStatus

# The job's database work runs in its own thread (its own connection): the data must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


def endpoints(fault_upstream, **models) -> str:
    return json.dumps([{"key": key, "name": key.upper(), "model": model, "base_url": fault_upstream.base_url}
                       for key, model in models.items()])


@pytest.fixture
def compared(evaluate, settings, fault_upstream):
    """Rubrics on both axes; models "a" (answers quality:4), "b" (quality:2, cut on prompts with
    "[drop 2]") and the deterministic judge."""
    ev = evaluate
    services.rubric_save(axis=ev.balance, by=ev.facilitator, scale=SCALE)
    services.rubric_save(axis=ev.accuracy, by=ev.facilitator, scale=SCALE)
    settings.LLM_ENDPOINTS = endpoints(fault_upstream, a="fault:fixed:quality:4", b="fault:fixed:quality:2",
                                       judge="fault:judge:ok", echo="fault:echo")
    settings.LLM_ENDPOINTS_FILE = ""
    settings.LLM_RETRY_BUDGET_SECONDS = 0
    ev.workshop.system_prompt = "You answer questions about Indian history."
    ev.workshop.save(update_fields=["system_prompt"])
    return ev


def run(job):
    claimed = jobs.job_claim(job_id=job.pk)
    assert claimed is not None
    jobs.execute(claimed)
    claimed.refresh_from_db()
    return claimed


def test_compare_two_models_end_to_end_exact_means(compared):
    ev = compared
    comparison, job = svc.comparison_create(workshop=ev.workshop, by=ev.facilitator, endpoint_keys=["a", "b"],
                                            judge_keys=["judge"], prompt_set="all", extra="An extra prompt\n\n",
                                            concurrency=3)
    # Every question participants asked (3 baseline + 4 own) and the extra prompt; never the
    # facilitator's sandbox conversation that is not baseline.
    texts = [p.text for p in comparison.prompts.order_by("position")]
    assert len(texts) == 8 and "facilitator test" not in texts and texts[-1] == "An extra prompt"
    done = run(job)
    assert done.status == JobStatus.DONE, done.error
    answers = ComparisonAnswer.objects.filter(prompt__comparison=comparison).select_related("message", "model")
    assert len(answers) == 16 and {a.message.status for a in answers} == {"complete"}
    assert {a.message.content for a in answers if a.model.endpoint_key == "a"} == {"quality:4"}
    # Sandbox conversations of the facilitator: out of the rating pool.
    assert all(a.message.conversation.is_sandbox and a.message.conversation.owner_id == ev.facilitator.id
               for a in answers)
    assert not selectors.pool_messages(ev.workshop).filter(id__in=[a.message_id for a in answers]).exists()
    assert JudgeScore.objects.filter(item__message_id__in=[a.message_id for a in answers]).count() == 32
    # Evaluate I's figures are about the participants' answers only.
    assert selectors.pool_stats(ev.workshop)["items"] == 0
    assert selectors.judge_agreement(ev.workshop)["axes"][0]["judges"][0]["outcomes"]["scored"] == 0
    data = svc.results(comparison)
    assert [m.endpoint_key for m in data["models"]] == ["a", "b"]
    for row in data["table"]:
        a, b = row["cells"]
        assert (a["mean"], a["n"], b["mean"], b["n"]) == (4.0, 8, 2.0, 8)
        assert a["low"] == a["high"] == 4.0  # every answer scored the same: a point interval
    assert data["chart"]["means"] == [[4.0, 2.0], [4.0, 2.0]]
    first = data["prompts"][0]["answers"][0]["judged"][0]["scores"][0]
    assert first.score == 4 and "<b>4</b>" in first.reason
    # Running the job again asks nothing and judges nothing twice.
    requests = len(Message.objects.filter(id__in=[a.message_id for a in answers]))
    again = run(jobs.job_request(workshop=ev.workshop, kind="compare", by=ev.facilitator))
    assert again.status == JobStatus.DONE
    assert ComparisonAnswer.objects.filter(prompt__comparison=comparison).count() == requests == 16
    assert JudgeScore.objects.filter(item__message_id__in=[a.message_id for a in answers]).count() == 32


def test_models_get_the_system_prompt_and_the_conversation_up_to_the_question(compared, fault_upstream):
    ev = compared
    first = ev.baseline.messages.filter(role="user").order_by("position")[1]  # the second question
    comparison, job = svc.comparison_create(workshop=ev.workshop, by=ev.facilitator, endpoint_keys=["echo", "a"],
                                            judge_keys=["judge"], prompt_set="chosen", question_ids=[first.id],
                                            extra="Plain extra")
    fault_upstream.requests.clear()
    run(job)
    echoed = {a.prompt.text: a.message.content for a in ComparisonAnswer.objects.filter(
        prompt__comparison=comparison, model__endpoint_key="echo").select_related("prompt", "message")}
    # system + question 1 + answer 1 + question 2; the extra prompt: system + itself.
    assert echoed == {first.content: f"4 messages; system=yes; last={first.content}",
                      "Plain extra": "2 messages; system=yes; last=Plain extra"}


def test_a_model_failing_on_some_prompts_leaves_visible_gaps_retried_on_resume(compared, fault_upstream):
    ev = compared
    comparison, job = svc.comparison_create(workshop=ev.workshop, by=ev.facilitator, endpoint_keys=["a", "b"],
                                            judge_keys=["judge"], prompt_set="none",
                                            extra="one\ntwo [drop 2]\nthree\nfour\nfive\nsix [drop 2]")
    assert run(job).status == JobStatus.DONE
    status = svc.status(comparison)
    assert (status["complete"], status["failed"], status["missing"]) == (10, 2, 2)
    data = svc.results(comparison)
    for row in data["table"]:
        a, b = row["cells"]
        assert (a["mean"], a["n"], b["mean"], b["n"], b["outcomes"]["missing"]) == (4.0, 6, 2.0, 4, 2)
    gap = data["prompts"][1]["answers"][1]
    assert gap["message"].status == "failed" and gap["message"].error_kind == "dropped"
    assert not RatingItem.objects.filter(message=gap["message"]).exists()  # never judged, never a zero
    # Resume: only the two failed cells are asked again (the endpoint still cuts them).
    fault_upstream.requests.clear()
    svc.comparison_resume(comparison=comparison, by=ev.facilitator)
    assert run(jobs.job_request(workshop=ev.workshop, kind="compare")).status == JobStatus.DONE
    asked = [r for r in fault_upstream.requests if not str(r.get("model", "")).startswith("fault:judge")]
    assert sorted(r["messages"][-1]["content"] for r in asked) == ["six [drop 2]", "two [drop 2]"]
    assert ComparisonAnswer.objects.filter(prompt__comparison=comparison).count() == 12


@pytest.mark.parametrize("kwargs,message", [
    ({"endpoint_keys": ["a"]}, "at least two models"),
    ({"endpoint_keys": ["a", "a"]}, "at least two models"),
    ({"endpoint_keys": ["a", "nowhere"]}, "not a configured"),
    ({"judge_keys": []}, "at least one judge"),
    ({"prompt_set": "none", "extra": "  \n"}, "no prompt"),
])
def test_refusals(compared, kwargs, message):
    args = {"endpoint_keys": ["a", "b"], "judge_keys": ["judge"], "prompt_set": "all", **kwargs}
    with pytest.raises(ValidationError) as info:
        svc.comparison_create(workshop=compared.workshop, by=compared.facilitator, **args)
    assert message in " ".join(info.value.messages)


def test_refused_without_a_complete_rubric(evaluate, settings, fault_upstream):
    settings.LLM_ENDPOINTS = endpoints(fault_upstream, a="fault:ok", b="fault:ok", judge="fault:judge")
    settings.LLM_ENDPOINTS_FILE = ""
    with pytest.raises(ValidationError, match="complete rubric"):
        svc.comparison_create(workshop=evaluate.workshop, by=evaluate.facilitator, endpoint_keys=["a", "b"],
                              judge_keys=["judge"])


def test_withdrawn_participants_questions_are_left_out(compared):
    ev = compared
    from django.utils import timezone

    ev.participants[1].withdrawn_at = timezone.now()
    ev.participants[1].save(update_fields=["withdrawn_at"])
    comparison, _job = svc.comparison_create(workshop=ev.workshop, by=ev.facilitator, endpoint_keys=["a", "b"],
                                             judge_keys=["judge"])
    texts = {p.text for p in comparison.prompts.all()}
    assert "my question 1" not in texts and "my question 2" in texts


def test_blind_ab_reuses_the_pairwise_rating(compared):
    ev = compared
    comparison, job = svc.comparison_create(workshop=ev.workshop, by=ev.facilitator, endpoint_keys=["a", "b"],
                                            judge_keys=["judge"], prompt_set="all")
    run(job)
    n = svc.ab_open(comparison=comparison, by=ev.facilitator)
    assert n == 3  # the baseline questions only: participants' own conversations are not shown to others
    items = list(PairItem.objects.filter(source="comparison"))
    assert {i.question.content for i in items} == set(
        ev.baseline.messages.filter(role="user").values_list("content", flat=True))
    # Participants are handed the pairs through the Evaluate I machinery, blinded, and choose.
    services.evaluation_settings_update(workshop=ev.workshop, answers_per_person=1, raters_per_answer=1,
                                        include_participant_conversations=False, pairs_per_person=3)
    for p in ev.participants[:2]:
        for assignment in services.pair_assignments_ensure(membership=p):
            view = selectors.pair_view(p, assignment.position)
            # Whichever side shows model "a" (quality:4) wins on Balance and overall; a tie on Accuracy.
            a_side = "left" if view["left"].content == "quality:4" else "right"
            services.pair_ratings_submit(membership=p, position=assignment.position,
                                         choices={ev.balance.id: a_side, ev.accuracy.id: "tie", None: a_side})
    assert PairRating.objects.filter(item__source="comparison").count() == 18
    rows = {r["axis"].name if r["axis"] else None: r["counts"] for r in svc.ab_results(comparison)}
    assert rows["Balance"] == [{"wins": 6, "losses": 0, "ties": 0}, {"wins": 0, "losses": 6, "ties": 0}]
    assert rows["Accuracy"][0] == {"wins": 0, "losses": 0, "ties": 6}
    assert rows[None][0]["wins"] == 6
