"""Background work never hangs, with real processes: a Celery worker killed with SIGKILL on its
whole process group mid-job, then a new worker and Celery beat (the sweeper on its schedule)
finish the job; an answer left pending by a dead server is ended by the scheduled sweep with
nobody opening the page. Workers and beat are subprocesses on the test database and broker."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from coding import services as coding_services
from llm_gateway.models import Message, MessageStatus
from tests.conftest import CELERY, ROOT, celery_env
from tests.factories import facilitator_of, make_conversation, make_participant, make_workshop
from tests.fixtures_llm import stop_process_group
from workshops.models import Job, JobStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]

# Short intervals for the subprocesses (the defaults are 10 s / 60 s / 30 s).
# No map job runs here, so the workers skip loading the embedding model.
FAST = {"JOB_HEARTBEAT_SECONDS": "0.5", "JOB_STALE_SECONDS": "4", "JOB_SWEEP_SECONDS": "1",
        "LLM_SWEEP_SECONDS": "1", "LLM_STALE_SECONDS": "5", "MAP_WARM_UP": "0"}


@pytest.fixture
def spawn(transactional_db, settings, tmp_path):
    """spawn("worker", *args, **env) / spawn("beat", **env): a celery process in its own session."""
    from calma.celery import app

    app.control.purge()  # nothing left over from an earlier run
    started = []

    def start(what: str, *args: str, **env_extra: str) -> subprocess.Popen:
        env = celery_env(settings, **FAST, **env_extra)
        cmd = [CELERY, "-A", "calma", what, "-l", "info"]
        if what == "worker":
            cmd += ["--without-gossip", "--without-mingle", "--without-heartbeat",
                    "--hostname", f"jobs-{len(started)}-{os.getpid()}@%h"]
        else:
            cmd += ["--schedule", str(tmp_path / "beat-schedule")]
        log = open(tmp_path / f"{what}-{len(started)}.log", "w")
        proc = subprocess.Popen([*cmd, *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        started.append((proc, log))
        return proc

    yield start
    for proc, log in started:
        stop_process_group(proc)
        log.close()
        text = Path(log.name).read_text()
        if "Traceback" in text:
            print(f"--- {log.name}\n{text[-4000:]}")


def wait_for(predicate, what: str, timeout: float = 180.0):
    """Poll until `predicate()` is truthy (a bound on waiting, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"{what}: not reached within {timeout:.0f} s")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def job_now(pk: int) -> Job:
    return Job.objects.get(pk=pk)


def wait_half_way(job_pk: int, what: str) -> Job:
    """The job's first worker, paused half way (CALMA_FAULT_JOB_SLEEP): the window to kill it."""
    return wait_for(lambda: (j := job_now(job_pk)).status == JobStatus.RUNNING and j.progress >= 50 and j,
                    f"{what}: the first worker is half way")


def kill_and_finish(spawn, first, child: int, job_pk: int, what: str, **env) -> Job:
    """SIGKILL the first worker's whole process group mid-job, start a fresh worker and beat (the
    sweeper re-queues the job), and wait until the job ends: done, on its second attempt."""
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    wait_for(lambda: not alive(child), "the pool child is gone", timeout=30)
    spawn("worker", "--pool", "solo", **env)
    spawn("beat", **env)
    done = wait_for(lambda: (j := job_now(job_pk)).status in (JobStatus.DONE, JobStatus.FAILED) and j,
                    f"{what} ends")
    assert done.status == JobStatus.DONE, done.error
    assert done.attempts == 2
    return done


def test_worker_killed_with_its_whole_process_group_mid_job_ends_done_after_the_sweep(spawn):
    workshop = make_workshop(stage="reflect")
    make_conversation(make_participant(workshop), turns=[("What is Diwali?", "Diwali is the festival of lights.")])
    facilitator = facilitator_of(workshop)
    # A prefork worker whose job pauses at 50 % on its first attempt: the window to kill it.
    first = spawn("worker", "--pool", "prefork", "--concurrency", "1", CALMA_FAULT_JOB_SLEEP="300")
    job = coding_services.summary_request(membership=facilitator)
    running = wait_for(lambda: (j := job_now(job.pk)).status == JobStatus.RUNNING and j.progress >= 50 and j,
                       "the first worker runs the job")
    child = running.worker_pid
    assert child and child != first.pid and running.attempts == 1

    os.killpg(first.pid, signal.SIGKILL)  # the whole worker: main process and pool child
    first.wait(timeout=30)
    wait_for(lambda: not alive(child), "the pool child is gone", timeout=30)
    assert job_now(job.pk).status == JobStatus.RUNNING  # nobody is left to say otherwise

    # A new worker alone would never touch it (the broker keeps the unacked message for its
    # visibility timeout, an hour): beat's sweeper notices the silent heartbeat and re-queues.
    spawn("worker", "--pool", "solo")
    spawn("beat")
    done = wait_for(lambda: (j := job_now(job.pk)).status in (JobStatus.DONE, JobStatus.FAILED) and j,
                    "the job ends")
    assert done.status == JobStatus.DONE, done.error
    assert done.attempts == 2 and done.worker_pid not in (child, first.pid)
    assert {row["label"] for row in done.result["labels"]} == set()  # nobody has coded yet
    assert done.result["participants"] and done.progress == 100

    # And a person can start a new one at once.
    again = coding_services.summary_request(membership=facilitator, force=True)
    assert again.pk != job.pk
    finished = wait_for(lambda: (j := job_now(again.pk)).status in (JobStatus.DONE, JobStatus.FAILED) and j,
                        "the new job ends")
    assert finished.status == JobStatus.DONE and finished.attempts == 1


def test_a_job_whose_worker_keeps_dying_ends_failed_and_a_new_one_can_start(spawn):
    workshop = make_workshop(stage="reflect")
    facilitator = facilitator_of(workshop)
    job = coding_services.summary_request(membership=facilitator)
    # Every attempt was taken by a worker that died (no worker is running yet).
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, attempts=3, max_attempts=3,
                                         started_at=timezone.now(), heartbeat_at=timezone.now() - timedelta(hours=1))
    spawn("worker", "--pool", "solo")
    spawn("beat")
    failed = wait_for(lambda: (j := job_now(job.pk)).status == JobStatus.FAILED and j, "the job is failed")
    assert "stopped answering" in failed.error
    again = coding_services.summary_request(membership=facilitator)
    assert again.pk != job.pk
    done = wait_for(lambda: (j := job_now(again.pk)).status == JobStatus.DONE and j, "the new job is done")
    assert done.attempts == 1


def test_an_answer_left_pending_by_a_dead_server_is_ended_on_schedule_without_a_page_view(spawn):
    workshop = make_workshop(stage="interact")
    participant = make_participant(workshop)
    conversation = make_conversation(participant, turns=[("Tell me about the Mughals", "")])
    answer = conversation.messages.get(role="assistant")
    # The server streaming it died: part of the text was saved, then the heartbeat stopped.
    Message.objects.filter(pk=answer.pk).update(status=MessageStatus.STREAMING, content="The Mughal",
                                                completed_at=None, updated_at=timezone.now() - timedelta(minutes=10))
    spawn("worker", "--pool", "solo")
    spawn("beat")
    ended = wait_for(lambda: (m := Message.objects.get(pk=answer.pk)).status != MessageStatus.STREAMING and m,
                     "the answer is ended")
    assert ended.status == MessageStatus.INTERRUPTED and ended.error_kind == "lost"
    assert ended.content == "The Mughal" and ended.completed_at
