"""A model comparison survives its worker: the whole Celery worker is killed (SIGKILL on its
process group) while answers are being collected; Celery beat's sweeper re-queues the job, a new
worker resumes, no answer is asked twice once stored, none is lost, and the means come out exact."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from evaluation import comparison as svc
from evaluation import services
from evaluation.models import ComparisonAnswer, JudgeScore
from tests.evaluation.conftest import SCALE
from tests.workshops.test_jobs_worker import kill_and_finish, spawn, wait_half_way  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]


def test_worker_killed_mid_comparison_resumes_without_asking_twice(evaluate, spawn, fault_upstream, settings):  # noqa: F811
    ev = evaluate
    services.rubric_save(axis=ev.balance, by=ev.facilitator, scale=SCALE)
    services.rubric_save(axis=ev.accuracy, by=ev.facilitator, scale=SCALE)
    endpoints = json.dumps([{"key": k, "name": k, "model": m, "base_url": fault_upstream.base_url} for k, m in
                            [("a", "fault:fixed:quality:4"), ("b", "fault:fixed:quality:2"), ("judge", "fault:judge:ok:cmp")]])
    settings.LLM_ENDPOINTS = endpoints
    settings.LLM_ENDPOINTS_FILE = ""
    env = {"LLM_ENDPOINTS": endpoints, "LLM_ENDPOINTS_FILE": ""}
    fault_upstream.requests.clear()  # the upstream serves the whole session
    # The first worker pauses once the job is half way (its first attempt only): the window to kill it.
    first = spawn("worker", "--pool", "prefork", "--concurrency", "1", CALMA_FAULT_JOB_SLEEP="300", **env)
    comparison, job = svc.comparison_create(workshop=ev.workshop, by=ev.facilitator, endpoint_keys=["a", "b"],
                                            judge_keys=["judge"], prompt_set="all",
                                            extra="\n".join(f"extra prompt {i}" for i in range(20)), concurrency=1)
    child = wait_half_way(job.pk, "the comparison job").worker_pid
    before = {a.message_id: a.message.updated_at for a in
              ComparisonAnswer.objects.filter(prompt__comparison=comparison).select_related("message")}
    assert 0 < len(before) < 54  # 27 prompts x 2 models

    kill_and_finish(spawn, first, child, job.pk, "the comparison job", **env)
    answers = list(ComparisonAnswer.objects.filter(prompt__comparison=comparison).select_related("message", "model", "prompt"))
    assert len(answers) == 54 and {a.message.status for a in answers} == {"complete"}
    # What the first worker stored was kept as it was and not asked again.
    for a in answers:
        if a.message_id in before:
            assert a.message.updated_at == before[a.message_id]
    asked = Counter((r["model"], r["messages"][-1]["content"]) for r in fault_upstream.requests
                    if r["model"].startswith("fault:fixed"))
    for a in answers:
        key = ("fault:fixed:quality:4" if a.model.endpoint_key == "a" else "fault:fixed:quality:2", a.prompt.text)
        if a.message_id in before:
            assert asked[key] == 1, key
    assert JudgeScore.objects.filter(item__message_id__in=[a.message_id for a in answers]).count() == 108
    for row in svc.results(comparison)["table"]:
        assert [(c["mean"], c["n"]) for c in row["cells"]] == [(4.0, 27), (2.0, 27)]
