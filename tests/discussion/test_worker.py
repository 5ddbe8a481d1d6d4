"""The map task on a real Celery worker (a subprocess on the test database and Redis broker)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from discussion import services
from discussion.models import MapVersion
from tests.conftest import CELERY, ROOT, celery_env
from tests.discussion.conftest import add_code, build
from tests.fixtures_llm import stop_process_group
from workshops import jobs
from workshops.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker(transactional_db, settings):
    """Start `celery worker` on the test database; yields a function that starts it with options."""
    procs = []

    def start(*args, **env_extra):
        env = celery_env(settings, **env_extra)
        log = open(ROOT / f".test-worker-{len(procs)}-{os.getpid()}.log", "w")
        proc = subprocess.Popen(
            [CELERY, "-A", "calma", "worker", "-l", "info", "--without-gossip",
             "--without-mingle", "--without-heartbeat", *args],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        procs.append((proc, log))
        return proc

    # Nothing queued by an earlier run may be picked up.
    from calma.celery import app

    app.control.purge()
    yield start
    for proc, log in procs:
        stop_process_group(proc)
        log.close()
        path = Path(log.name)
        if path.exists():
            text = path.read_text()
            if os.environ.get("KEEP_WORKER_LOG"):
                Path("/tmp", path.name).write_text(text)
            path.unlink()
            if "Traceback" in text:
                print(text[-4000:])


def wait_for(predicate, timeout=240.0, interval=0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


def job_state(job_id):
    job = Job.objects.get(pk=job_id)
    return job


@pytest.mark.timeout(600)  # a cold worker compiles UMAP first; slow on a busy CI machine
def test_worker_computes_the_map_and_pushes_progress(worker):
    d = build()
    worker("--pool", "solo")
    job = services.map_request(workshop=d.workshop, by=d.facilitator)
    done = wait_for(lambda: (j := job_state(job.pk)).status in ("done", "failed") and j)
    assert done.status == "done", done.message
    assert done.progress == 100 and done.attempts == 1 and done.result["version"]
    version = MapVersion.objects.get(pk=done.result["version"])
    assert version.label_count == 17 and version.points.count() == 17


@pytest.mark.timeout(600)  # two cold pool children in a row
def test_worker_killed_mid_map_keeps_previous_map_and_job_is_retried(worker, settings):
    settings.JOB_STALE_SECONDS = 4  # the sweeper below runs in this process
    d = build()
    # A map shown before the refresh (its layout does not matter here; it must survive the crash).
    previous = MapVersion.objects.create(workshop=d.workshop, number=1, method=MapVersion.Method.PCA, label_count=17)
    for text in ("colonial perspective", "even-handed", "dates wrong"):
        add_code(d.people[0], text)
    proc = worker("--pool", "prefork", "--concurrency", "1", CALMA_FAULT_JOB_SLEEP="60", JOB_HEARTBEAT_SECONDS="0.5")
    job = services.map_request(workshop=d.workshop, by=d.facilitator)
    running = wait_for(lambda: (j := job_state(job.pk)).progress >= 50 and j.status == "running" and j)
    child = running.worker_pid
    assert child and child != proc.pid
    os.kill(child, signal.SIGKILL)  # the pool child dies mid-map
    time.sleep(1)
    latest = MapVersion.objects.filter(workshop=d.workshop).order_by("-number").first()
    assert latest.pk == previous.pk  # the previous map is still the one shown
    # The pool's master re-delivers the message at once, but the job is still "running" for it;
    # the sweeper (Celery beat in production) re-queues it once its heartbeat is silent.
    done = wait_for(lambda: jobs.job_sweep() is not None and (j := job_state(job.pk)).status in ("done", "failed") and j)
    assert done.status == "done", done.error
    assert done.attempts == 2 and done.worker_pid != child
    new = MapVersion.objects.get(pk=done.result["version"])
    assert new.number == previous.number + 1 and new.label_count == 20 and new.points.count() == 20
