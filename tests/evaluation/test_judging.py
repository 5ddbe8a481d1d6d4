"""Model judges: strict reading of replies, scoring against a deterministic judge (exact scores),
misbehaving judges (garbage, refusals, 429, 5xx, cut streams), resuming without double scoring,
and agreement of the judge with the participants."""

from __future__ import annotations

import asyncio

import pytest

from evaluation import judging, selectors, services
from evaluation.models import JudgeOutcome, JudgeRun, JudgeScore, RatingAssignment
from tests.evaluation.conftest import SCALE


@pytest.mark.parametrize("reply,outcome,score", [
    ('{"score": 4, "reason": "fine"}', "scored", 4),
    ('```json\n{"score": 2, "reason": "x"}\n```', "scored", 2),
    ('Sure. {"score": "5", "reason": "x"} Hope this helps', "scored", 5),
    ('{"score": 5.0}', "scored", 5),
    ('{"score": null, "reason": "not about history"}', "not_applicable", None),
    ('{"score": "N/A"}', "not_applicable", None),
    ('{"score": 6}', "unparseable", None),
    ('{"score": 0}', "unparseable", None),
    ('{"score": true}', "unparseable", None),
    ('{"score": 3.5}', "unparseable", None),
    ('{"rating": 4}', "unparseable", None),
    ("I would give it a 4 out of 5.", "unparseable", None),  # never guessed from prose
    ('{"score": 4,', "unparseable", None),
    ("I'm sorry, I can't evaluate this.", "refused", None),
    ("", "unparseable", None),
])
def test_replies_are_read_strictly(reply, outcome, score):
    verdict = judging.parse_reply(reply)
    assert (verdict.outcome, verdict.score) == (outcome, score)


@pytest.fixture
def judged(evaluate, use_judge):
    """Rubrics for both axes; three participants rated the three baseline answers. The baseline
    answers carry the deterministic judge's hint ("quality:N")."""
    ev = evaluate
    hints = {0: "quality:5", 1: "quality:2", 2: "quality:na"}
    for i, message in enumerate(ev.baseline.messages.filter(role="assistant").order_by("position")):
        message.content = f"{message.content} {hints[i]}"
        message.save(update_fields=["content"])
    services.rubric_save(axis=ev.balance, by=ev.facilitator, scale=SCALE)
    services.rubric_save(axis=ev.accuracy, by=ev.facilitator, scale=SCALE)
    services.evaluation_settings_update(workshop=ev.workshop, answers_per_person=3, raters_per_answer=3,
                                        include_participant_conversations=False)
    people = {5: 5, 2: 2}
    for p in ev.participants[:3]:
        services.assignments_ensure(membership=p)
        for a in RatingAssignment.objects.filter(membership=p).select_related("item__message"):
            content = a.item.message.content
            hint = next((v for k, v in people.items() if f"quality:{k}" in content), None)
            services.ratings_submit(membership=p, position=a.position,
                                    scores={ev.balance.id: hint, ev.accuracy.id: 3})
    return ev


def _run(ev, key, concurrency=3):
    return JudgeRun.objects.create(workshop=ev.workshop, endpoint_key=key, concurrency=concurrency,
                                   created_by=ev.facilitator)


class Progress:
    def __init__(self):
        self.calls = []
        self.done_message = ""

    def __call__(self, progress, message=""):
        self.calls.append(progress)


def _score(run, limit=None):
    pairs = judging.pairs_to_score(run)[:limit]
    return asyncio.run(judging.score_run(run, pairs, Progress())), pairs


@pytest.mark.django_db(transaction=True)
def test_deterministic_judge_gives_exact_scores_and_agrees(judged, use_judge):
    ev = judged
    use_judge(judge="fault:judge:ok:exact")
    run = _run(ev, "judge")
    counts, pairs = _score(run)
    assert len(pairs) == 3 * 2
    assert counts["scored"] == 4 and counts["not_applicable"] == 2
    balance = {s.item.message.content.split()[-1]: s.score
               for s in JudgeScore.objects.filter(run=run, axis=ev.balance).select_related("item__message")}
    assert balance == {"quality:5": 5, "quality:2": 2, "quality:na": None}
    assert JudgeScore.objects.filter(run=run).exclude(prompt_tokens=None).exists()  # usage recorded
    # Nothing left: a second pass scores nothing twice.
    assert judging.pairs_to_score(run) == []
    report = selectors.judge_agreement(ev.workshop, resamples=50)
    row = next(a for a in report["axes"] if a["axis"].id == ev.balance.id)
    judge = row["judges"][0]
    assert judge["outcomes"]["scored"] == 2 and judge["rho_n"] == 2
    assert not judge["flagged"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("model,outcome,requests_per_pair", [
    ("fault:judge:garbage", "unparseable", 2),   # asked once more, then recorded as unreadable
    ("fault:judge:refuse", "refused", 2),
    ("fault:judge:garbageonce", "scored", 2),
    ("fault:judge:fenced", "scored", 1),
])
def test_misbehaving_judges_are_recorded_never_turned_into_numbers(judged, use_judge, fault_upstream, model,
                                                                 outcome, requests_per_pair):
    ev = judged
    tag = f"{model}:{outcome}-{requests_per_pair}"
    use_judge(judge=tag)
    before = len(fault_upstream.requests)
    run = _run(ev, "judge")
    counts, pairs = _score(run)
    assert counts[outcome] + (counts["not_applicable"] if outcome == "scored" else 0) == len(pairs)
    assert len(fault_upstream.requests) - before == requests_per_pair * len(pairs)
    if outcome != "scored":
        assert not JudgeScore.objects.filter(run=run, score__isnull=False).exists()


@pytest.mark.django_db(transaction=True)
def test_failing_endpoint_is_visible_and_resumes_without_double_scoring(judged, use_judge, fault_upstream):
    ev = judged
    use_judge(judge="fault:status:503:resume", EVALUATION_JUDGE_BUDGET_SECONDS=0.5)
    run = _run(ev, "judge")
    counts, pairs = _score(run)
    assert counts["failed"] == len(pairs)
    assert set(JudgeScore.objects.filter(run=run).values_list("error", flat=True)) == {"server (HTTP 503)"}
    # The endpoint recovers (same key); resuming scores the failed pairs, each exactly once.
    use_judge(judge="fault:judge:ok:resume")
    before = len(fault_upstream.requests)
    counts, pairs2 = _score(run)
    assert len(pairs2) == len(pairs) and counts["scored"] + counts["not_applicable"] == len(pairs)
    assert len(fault_upstream.requests) - before == len(pairs)
    assert JudgeScore.objects.filter(run=run).count() == len(pairs)
    assert judging.pairs_to_score(run) == []


@pytest.mark.django_db(transaction=True)
def test_rate_limited_and_cut_streams_go_through_the_gateway_retries(judged, use_judge):
    ev = judged
    use_judge(judge="fault:ratelimit:2:0:rl", EVALUATION_JUDGE_BUDGET_SECONDS=10)
    run = _run(ev, "judge", concurrency=1)
    counts, pairs = _score(run)
    # 429s are retried by the gateway client (Retry-After honoured); the plain "ok" stream that
    # follows is prose, so each pair is asked twice and recorded as unreadable — never a number.
    assert counts["unparseable"] == len(pairs)
    use_judge(judge="fault:drop:3:cut", EVALUATION_JUDGE_BUDGET_SECONDS=1)
    run = _run(ev, "judge", concurrency=2)
    counts, _pairs = _score(run)
    assert counts["failed"] == len(pairs)
    assert not JudgeScore.objects.filter(run=run, score__isnull=False).exists()


@pytest.mark.django_db(transaction=True)
def test_a_refused_key_stops_the_run_and_keeps_what_was_scored(judged, use_judge):
    ev = judged
    use_judge(judge="fault:status:401:auth")
    run = _run(ev, "judge")
    with pytest.raises(judging.RunAborted, match="refused the run"):
        _score(run)
    assert not JudgeScore.objects.filter(run=run, outcome=JudgeOutcome.SCORED).exists()


@pytest.mark.timeout(600)
@pytest.mark.django_db(transaction=True)
def test_small_local_model_replies_survive_parsing(judged, use_judge, llama_server):
    """SmolLM2-135M rarely follows the JSON instruction: whatever it says is recorded as an outcome,
    and any number stored came from a well-formed reply."""
    ev = judged
    use_judge(judge="smollm2-135m-instruct", base_url=llama_server)
    run = _run(ev, "judge", concurrency=1)
    counts, pairs = _score(run, limit=1)  # one pair: each reply of a CPU model takes seconds
    assert sum(counts.values()) == len(pairs) == 1 and counts["failed"] == 0
    for score in JudgeScore.objects.filter(run=run, outcome="scored"):
        assert 1 <= score.score <= 5
