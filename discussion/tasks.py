"""Celery tasks of the Discuss stage. Tasks take ids, are idempotent, and are queued on commit.

The worker loads the embedding model and compiles UMAP when its process starts
(`worker_process_init` for prefork children, `worker_ready` for the solo/threads pools), not
per task. `acks_late` + `reject_on_worker_lost` (settings) mean a worker killed mid-map leaves
the previous map version in place (the new one is written in one transaction at the end) and
the job is delivered again.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init, worker_ready
from django.db.models import F
from django.utils import timezone

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


@worker_process_init.connect
def _warm_child(**kwargs):
    # A pool child must report "up" within seconds, so it warms in the background; a task
    # that arrives meanwhile waits on the model lock instead of loading a second copy.
    threading.Thread(target=_warm, name="map-warm-up", daemon=True).start()


@worker_ready.connect
def _warm_ready(sender=None, **kwargs):
    # Prefork children warm themselves above; solo/threads pools run tasks in this process.
    pool = getattr(getattr(sender, "controller", None), "pool_cls", None) or getattr(sender, "pool_cls", None)
    name = getattr(pool, "__module__", "") + "." + getattr(pool, "__name__", str(pool))
    if "prefork" not in name:
        _warm()


def _warm():
    try:
        from discussion import mapping

        mapping.warm_up()
    except Exception:  # noqa: BLE001  a worker without the model still serves other tasks
        log.exception("could not warm the map engine")


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def compute_map(job_id: int) -> None:
    from discussion import mapping, services
    from discussion.models import Job

    claimed = Job.objects.filter(
        pk=job_id, status__in=[Job.Status.QUEUED, Job.Status.RUNNING], attempts__lt=MAX_ATTEMPTS
    ).update(status=Job.Status.RUNNING, attempts=F("attempts") + 1, started_at=timezone.now(), worker_pid=os.getpid())
    if not claimed:
        job = Job.objects.filter(pk=job_id).first()
        if job is not None and job.status in (Job.Status.QUEUED, Job.Status.RUNNING):
            services.job_progress(job_id=job_id, progress=job.progress, message="gave up after repeated failures",
                                  status=Job.Status.FAILED)
        return
    job = Job.objects.select_related("workshop").get(pk=job_id)
    log.info("map job %s for workshop %s (attempt %s)", job_id, job.workshop_id, job.attempts)

    fault_sleep = float(os.environ.get("CALMA_FAULT_MAP_SLEEP", "0") or 0)  # tests: a window to kill the worker

    def progress(pct, message):
        services.job_progress(job_id=job_id, progress=pct, message=message)
        if fault_sleep and pct >= 60 and job.attempts == 1:
            time.sleep(fault_sleep)

    try:
        result = mapping.compute(job.workshop, full_layout=job.full_layout, progress=progress)
    except SoftTimeLimitExceeded:
        services.job_progress(job_id=job_id, progress=job.progress, message="time limit", status=Job.Status.FAILED)
        return
    except Exception as exc:  # noqa: BLE001  the previous map stays; the facilitator may retry
        log.exception("map job %s failed", job_id)
        services.job_progress(job_id=job_id, progress=0, message=f"failed: {exc.__class__.__name__}",
                              status=Job.Status.FAILED)
        return
    Job.objects.filter(pk=job_id).update(result=result.version)
    services.job_progress(
        job_id=job_id, progress=100, status=Job.Status.DONE,
        message=f"{result.labels} labels, {result.embed.new} embedded, {result.placed_new} placed",
    )
