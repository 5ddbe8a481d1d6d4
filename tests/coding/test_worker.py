"""The group summary on a real Celery worker: queued on commit, JSON arguments, progress in the
Job row, result cached. The worker is a subprocess on the test database and the Redis broker."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from coding import selectors, services
from tests.conftest import CELERY, ROOT, celery_env
from tests.fixtures_llm import stop_process_group
from workshops.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker(transactional_db, settings):
    from calma.celery import app

    app.control.purge()  # nothing left over from an earlier run
    env = celery_env(settings)
    log_path = ROOT / f".test-coding-worker-{os.getpid()}.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [CELERY, "-A", "calma", "worker", "-l", "info", "--pool", "solo",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    yield proc
    stop_process_group(proc)
    log.close()
    text = log_path.read_text()
    log_path.unlink()
    if "Traceback" in text:
        print(text[-5000:])


def wait_for(job_id: int, proc, limit: float = 120.0) -> Job:
    """Poll the job row until the worker finishes it (a bound on waiting, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.status in ("done", "failed"):
            return job
        assert proc.poll() is None, "the worker exited"
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} still {Job.objects.get(pk=job_id).status} after {limit}s")


def test_summary_runs_on_a_real_worker(reflect, worker):
    services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=5,
                               codes=["greeting", "Hindi first"])
    services.annotation_create(membership=reflect.p2, message_id=reflect.baseline_answer.id, start=0, end=12,
                               codes=["factual"])
    job = services.summary_request(membership=reflect.facilitator)
    assert job.status == "queued"
    job = wait_for(job.id, worker)
    assert job.status == "done", job.error
    assert job.progress == 100 and job.started_at and job.finished_at
    assert {row["label"] for row in job.result["labels"]} == {"greeting", "Hindi first", "factual"}
    assert job.fingerprint == selectors.summary_fingerprint(reflect.workshop)
    # Same data: the finished job is returned again, nothing new is queued.
    assert services.summary_request(membership=reflect.facilitator).id == job.id
    assert Job.objects.count() == 1
