"""A judge run survives its worker: the whole Celery worker is killed (SIGKILL on its process
group) in the middle of scoring; Celery beat's sweeper re-queues the job, a new worker resumes
where the first stopped, and no (answer, axis) pair is scored twice."""

from __future__ import annotations

import json

import pytest

from evaluation import services
from evaluation.models import JudgeScore
from tests.evaluation.conftest import SCALE
from tests.workshops.test_jobs_worker import kill_and_finish, spawn, wait_half_way  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]


def test_worker_killed_mid_judge_run_resumes_without_double_scoring(evaluate, spawn, fault_upstream, settings):  # noqa: F811
    ev = evaluate
    services.rubric_save(axis=ev.balance, by=ev.facilitator, scale=SCALE)
    services.rubric_save(axis=ev.accuracy, by=ev.facilitator, scale=SCALE)
    services.evaluation_settings_update(workshop=ev.workshop, answers_per_person=3, raters_per_answer=3,
                                        include_participant_conversations=False)
    for p in ev.participants[:3]:
        for a in services.assignments_ensure(membership=p):
            services.ratings_submit(membership=p, position=a.position, scores={ev.balance.id: 4, ev.accuracy.id: 3})
    endpoints = json.dumps([{"key": "judge", "name": "Judge", "model": "fault:judge:ok:worker",
                             "base_url": fault_upstream.base_url}])
    settings.LLM_ENDPOINTS = endpoints
    settings.LLM_ENDPOINTS_FILE = ""
    env = {"LLM_ENDPOINTS": endpoints, "LLM_ENDPOINTS_FILE": ""}
    # The first worker pauses once the run is half way (its first attempt only): the window to kill it.
    first = spawn("worker", "--pool", "prefork", "--concurrency", "1", CALMA_FAULT_JOB_SLEEP="300", **env)
    (run,), job = services.judge_runs_start(workshop=ev.workshop, by=ev.facilitator, endpoint_keys=["judge"],
                                           concurrency=1)
    child = wait_half_way(job.pk, "the judge job").worker_pid
    before = {s.pk: s.updated_at for s in JudgeScore.objects.filter(run=run)}
    assert 0 < len(before) < 6

    kill_and_finish(spawn, first, child, job.pk, "the judge job", **env)
    scores = list(JudgeScore.objects.filter(run=run))
    assert len(scores) == 6 and {s.outcome for s in scores} == {"scored"}
    assert len({(s.item_id, s.axis_id) for s in scores}) == 6
    # What the first worker scored was kept as it was, not scored again.
    for score in scores:
        if score.pk in before:
            assert score.updated_at == before[score.pk]
