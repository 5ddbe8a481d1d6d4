"""The one job mechanism (workshops/jobs.py): reuse, claim, fencing, heartbeat, sweep, and what
the pages show. The worker-kill scenario with real processes is in test_jobs_worker.py."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.factories import facilitator_of, make_conversation, make_participant, make_workshop
from workshops import jobs
from workshops.models import Job, JobStatus
from workshops.tasks import run_job, sweep_jobs

pytestmark = pytest.mark.django_db


@pytest.fixture
def kind():
    """A job kind for these tests: runs `behaviour` (set by the test) and records its calls."""
    calls = []
    state = {"behaviour": lambda job, report: {"ok": True}}

    def run(job, report):
        calls.append((job.pk, job.attempts))
        return state["behaviour"](job, report)

    jobs.register("test-kind", run=run, time_limit=60)
    yield state, calls
    jobs._kinds.pop("test-kind", None)


@pytest.fixture
def workshop():
    w = make_workshop(stage="reflect")
    make_conversation(make_participant(w), turns=[("What is Diwali?", "The festival of lights.")])
    return w


def age(job: Job, seconds: float, **fields) -> None:
    """Make a job look like its last sign of life was `seconds` ago."""
    when = timezone.now() - timedelta(seconds=seconds)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=when, **fields)
    job.refresh_from_db()


def test_request_queues_after_commit_and_reuses_a_live_job(workshop, kind, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = jobs.job_request(workshop=workshop, kind="test-kind")
        again = jobs.job_request(workshop=workshop, kind="test-kind")
    assert again.pk == job.pk and job.status == JobStatus.QUEUED and job.heartbeat_at
    assert callbacks  # the task is published only after commit
    assert Job.objects.count() == 1


def test_a_stale_active_job_is_never_reused(workshop, kind, settings):
    settings.JOB_STALE_SECONDS = 30
    job = jobs.job_request(workshop=workshop, kind="test-kind")
    assert jobs.job_claim(job_id=job.pk) is not None
    age(job, 31)
    assert job.is_stale
    fresh = jobs.job_request(workshop=workshop, kind="test-kind")
    assert fresh.pk != job.pk and fresh.status == JobStatus.QUEUED
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "stopped answering" in job.error


def test_a_queued_job_waiting_behind_other_work_is_not_stale_while_the_sweeper_runs(workshop, kind, settings):
    settings.JOB_STALE_SECONDS, settings.JOB_SWEEP_SECONDS = 30, 10
    job = jobs.job_request(workshop=workshop, kind="test-kind")
    age(job, 35)  # the sweeper republishes it (touching it) at the latest 30 + 10 s after the last touch
    assert not job.is_stale
    assert jobs.job_request(workshop=workshop, kind="test-kind").pk == job.pk
    age(job, 41)  # no sweeper either
    assert job.is_stale


def test_claim_is_a_conditional_update_that_counts_attempts(workshop, kind):
    job = jobs.job_request(workshop=workshop, kind="test-kind")
    first = jobs.job_claim(job_id=job.pk)
    assert first is not None and first.status == JobStatus.RUNNING and first.attempts == 1
    assert jobs.job_claim(job_id=job.pk) is None  # a second delivery of the message finds it taken
    run_job(job.pk)  # and the task does nothing with it
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.attempts == 1


def test_run_job_runs_the_kind_and_stores_the_result(workshop, kind, celery_eager, django_capture_on_commit_callbacks):
    state, calls = kind

    def work(job, report):
        report(40, "halfway")
        report.done_message = "3 things made"
        return {"made": 3}

    state["behaviour"] = work
    with django_capture_on_commit_callbacks(execute=True):
        job = jobs.job_request(workshop=workshop, kind="test-kind")
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.progress == 100 and job.result == {"made": 3}
    assert job.message == "3 things made" and job.attempts == 1 and job.finished_at
    assert calls == [(job.pk, 1)]
    run_job(job.pk)  # idempotent: a finished job is left alone
    assert len(calls) == 1


def test_an_exception_fails_the_job_with_the_reason(workshop, kind, celery_eager, django_capture_on_commit_callbacks):
    state, _calls = kind
    state["behaviour"] = lambda job, report: 1 / 0
    with django_capture_on_commit_callbacks(execute=True):
        job = jobs.job_request(workshop=workshop, kind="test-kind")
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.error.startswith("ZeroDivisionError")


def test_sweep_requeues_a_silent_job_and_the_new_attempt_finishes(workshop, kind, celery_eager, settings,
                                                                  django_capture_on_commit_callbacks):
    settings.JOB_STALE_SECONDS = 30
    job = jobs.job_request(workshop=workshop, kind="test-kind")
    jobs.job_claim(job_id=job.pk)  # a worker took it ... and died
    age(job, 31)
    with django_capture_on_commit_callbacks(execute=True):
        counts = sweep_jobs()
    assert counts["requeued"] == 1
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.attempts == 2
    assert sweep_jobs() == {"requeued": 0, "failed": 0, "republished": 0}


def test_sweep_fails_a_silent_job_without_attempts_left(workshop, kind, settings):
    settings.JOB_STALE_SECONDS = 30
    job = jobs.job_request(workshop=workshop, kind="test-kind")
    for _ in range(job.max_attempts):
        assert jobs.job_claim(job_id=job.pk) is not None
        age(job, 31)
        jobs.job_sweep()
        job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.attempts == job.max_attempts == settings.JOB_MAX_ATTEMPTS
    assert "stopped answering" in job.error and job.finished_at


def test_a_live_job_is_left_alone_and_one_past_its_time_limit_is_failed(workshop, kind, settings):
    settings.JOB_STALE_SECONDS = 30
    job = jobs.job_request(workshop=workshop, kind="test-kind")
    jobs.job_claim(job_id=job.pk)
    age(job, 5)
    assert jobs.job_sweep()["failed"] == 0
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    # A worker whose heartbeat thread still beats but whose work hangs (solo pools have no time
    # limit): the sweeper ends it once the kind's limit (60 s) and the stale margin have passed.
    age(job, 1, started_at=timezone.now() - timedelta(seconds=60 + 31))
    assert jobs.job_sweep()["failed"] == 1
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "60 s limit" in job.error


def test_a_superseded_attempt_cannot_overwrite_the_new_one(workshop, kind, settings):
    settings.JOB_STALE_SECONDS = 30
    job = jobs.job_request(workshop=workshop, kind="test-kind")
    old_run = jobs.job_claim(job_id=job.pk)
    age(job, 31)
    jobs.job_sweep()  # re-queued; the old worker was only slow, and comes back
    new_run = jobs.job_claim(job_id=job.pk)
    assert new_run.attempts == 2
    with pytest.raises(jobs.JobLost):
        jobs.job_progress(job=old_run, progress=80)
    assert jobs.job_finish(job=old_run, result={"from": "old"}) is False
    assert jobs.job_finish(job=new_run, result={"from": "new"}) is True
    job.refresh_from_db()
    assert job.result == {"from": "new"}


def test_queued_jobs_are_published_again_then_failed_when_no_worker_takes_them(workshop, kind, settings,
                                                                             django_capture_on_commit_callbacks):
    settings.JOB_STALE_SECONDS = 30
    settings.JOB_QUEUE_TIMEOUT_SECONDS = 600
    job = jobs.job_request(workshop=workshop, kind="test-kind")
    age(job, 31)  # the message may have been lost (a broker restart)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert jobs.job_sweep()["republished"] == 1
    assert callbacks
    age(job, 31, queued_at=timezone.now() - timedelta(seconds=601))
    assert jobs.job_sweep()["failed"] == 1
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "No worker" in job.error


@pytest.mark.django_db(transaction=True)
def test_the_running_task_writes_a_heartbeat_while_it_works(workshop, kind, settings, celery_eager):
    settings.JOB_HEARTBEAT_SECONDS = 0.2
    state, _calls = kind
    seen = []

    def slow(job, report):
        first = Job.objects.get(pk=job.pk).heartbeat_at
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # no progress reports: only the heartbeat thread writes
            now = Job.objects.get(pk=job.pk).heartbeat_at
            if now > first:
                seen.append(now)
                break
            time.sleep(0.05)
        return {}

    state["behaviour"] = slow
    job = jobs.job_request(workshop=workshop, kind="test-kind")  # runs inline after commit (eager)
    assert seen, "the heartbeat never moved"
    job.refresh_from_db()
    assert job.status == JobStatus.DONE
    assert not [t for t in threading.enumerate() if t.name.startswith(f"job-{job.pk}-")]


def test_summary_page_offers_generate_again_after_a_failure_and_when_stale(workshop, client_for, settings):
    from coding import services

    settings.JOB_STALE_SECONDS = 30
    facilitator = facilitator_of(workshop)
    url = f"/w/{workshop.slug}/reflect/summary/"
    job = services.summary_request(membership=facilitator)
    jobs.job_claim(job_id=job.pk)
    page = client_for(facilitator).get(url).content.decode()
    assert "Computing the summary" in page and "Generate again" not in page
    age(job, 31)  # the worker died; the sweeper has not come round yet
    page = client_for(facilitator).get(url).content.decode()
    assert "stopped answering" in page and "Generate again" in page
    jobs.job_sweep()
    jobs.job_claim(job_id=job.pk)
    jobs.job_fail(job=Job.objects.get(pk=job.pk), error="RuntimeError: boom")
    page = client_for(facilitator).get(url).content.decode()
    assert "The last attempt failed." in page and "Generate again" in page
    again = services.summary_request(membership=facilitator)
    assert again.pk != job.pk and again.status == JobStatus.QUEUED


def test_map_refresh_replaces_a_stale_job(workshop, settings):
    from discussion import services

    settings.JOB_STALE_SECONDS = 30
    facilitator = facilitator_of(workshop)
    job = services.map_request(workshop=workshop, by=facilitator)
    assert services.map_request(workshop=workshop, by=facilitator).pk == job.pk
    jobs.job_claim(job_id=job.pk)
    age(job, 31)
    fresh = services.map_request(workshop=workshop, by=facilitator, full_layout=True)
    assert fresh.pk != job.pk and fresh.params == {"full_layout": True}


def test_run_periodic_runs_the_beat_schedule_in_process(workshop, kind, settings, capsys):
    from llm_gateway.models import Message, MessageStatus

    settings.JOB_STALE_SECONDS = 30
    job = jobs.job_request(workshop=workshop, kind="test-kind")
    jobs.job_claim(job_id=job.pk)
    age(job, 31, attempts=job.max_attempts)
    answer = Message.objects.filter(role="assistant").first()
    Message.objects.filter(pk=answer.pk).update(status=MessageStatus.PENDING, content="",
                                                updated_at=timezone.now() - timedelta(hours=1))
    call_command("run_periodic", "--once")
    assert "sweep-jobs" in capsys.readouterr().out
    job.refresh_from_db()
    answer.refresh_from_db()
    assert job.status == JobStatus.FAILED and answer.status == MessageStatus.FAILED


def test_every_scheduled_task_exists_and_runs_on_an_interval(settings):
    from calma.celery import app
    from workshops.management.commands.run_periodic import interval_seconds

    app.loader.import_default_modules()
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"workshops.tasks.sweep_jobs", "llm_gateway.tasks.sweep_answers"} <= tasks
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks and interval_seconds(entry["schedule"]) > 0
