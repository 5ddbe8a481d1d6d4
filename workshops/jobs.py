"""One mechanism for long work a person waits on: the group summary, the affinity map, and
whatever comes next (evaluation runs).

Life cycle of a `workshops.models.Job` row:

    job_request ──► queued ──claim──► running ──► done
                      ▲                  │  └───► failed (the work raised, or ran past its limit)
                      └──── sweep ───────┘        (heartbeat silent: re-queued while attempts
                                                   are left, failed when none are)

- **Kinds are registered** by their app (`register("summary", run=..., notify=...)` in
  `AppConfig.ready()`); `run(job, report)` does the work and returns the JSON result.
- **Reuse**: a request returns the kind's active job when its worker is alive, or (if the
  caller allows it) a finished job whose `fingerprint` matches the current inputs. An active
  job whose worker went silent is never reused: it is failed and a new one is queued, so a
  person can always start the work again.
- **Claim by conditional UPDATE** (healthchecks' `sendalerts.py`): only one worker moves a
  queued row to running; the claim counts the attempt. The attempt number is the fencing
  token: every later write of that run (progress, heartbeat, result) is filtered on it, so a
  run the sweeper gave up on cannot overwrite a newer attempt.
- **Heartbeat**: while `run` works, a thread writes `heartbeat_at` every
  `JOB_HEARTBEAT_SECONDS`, and every progress report writes it too.
- **Sweep** (`job_sweep`, on Celery beat / `manage.py run_periodic`): a running job silent for
  `JOB_STALE_SECONDS` is re-queued (attempts left) or failed; a running job past its time limit
  is failed; a queued job whose message may have been lost is published again, and failed after
  `JOB_QUEUE_TIMEOUT_SECONDS` without a worker. So every job ends done or failed within a
  bounded time.
- **Progress is pushed to the page** through the kind's `notify(job)` (after commit).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.db.models import F
from django.utils import timezone

from workshops import events
from workshops.models import JOB_ACTIVE, Job, JobStatus, Membership, Workshop

log = logging.getLogger(__name__)


class JobLost(Exception):
    """The row no longer carries this run's attempt (swept, failed or deleted): stop working."""


@dataclass(frozen=True)
class JobKind:
    name: str
    run: Callable[[Job, Reporter], dict | list | None]
    notify: Callable[[Job], None] | None = None
    time_limit: int | None = None  # seconds; default CELERY_TASK_TIME_LIMIT
    max_attempts: int | None = None  # default JOB_MAX_ATTEMPTS

    def limit(self) -> int:
        return int(self.time_limit or settings.CELERY_TASK_TIME_LIMIT)


_kinds: dict[str, JobKind] = {}


def register(name: str, *, run: Callable, notify: Callable | None = None, time_limit: int | None = None,
             max_attempts: int | None = None) -> JobKind:
    kind = JobKind(name, run, notify, time_limit, max_attempts)
    _kinds[name] = kind
    return kind


def get_kind(name: str) -> JobKind:
    try:
        return _kinds[name]
    except KeyError:
        raise LookupError(f"no job kind {name!r} is registered") from None


def kinds() -> list[JobKind]:
    return list(_kinds.values())


# --- Reading a job's health (no writes) ---------------------------------------------------------


def is_stale(job: Job, now=None) -> bool:
    """Active, but no sign of life for longer than JOB_STALE_SECONDS (a running job's worker
    died, or a queued job's message found no worker and the sweeper has not run either)."""
    if job.status not in JOB_ACTIVE:
        return False
    now = now or timezone.now()
    last = job.heartbeat_at or job.queued_at or job.created_at
    limit = settings.JOB_STALE_SECONDS
    if job.status == JobStatus.QUEUED:
        # Waiting behind other work is normal: while the sweeper runs it touches a queued job
        # (publishing it again) at least every JOB_STALE_SECONDS + JOB_SWEEP_SECONDS.
        limit += settings.JOB_SWEEP_SECONDS
    return last < now - timedelta(seconds=limit)


def state(job: Job | None) -> dict:
    """What a page shows about a job (JSON-safe)."""
    if job is None:
        return {}
    return {"id": job.pk, "kind": job.kind, "status": job.status, "progress": job.progress,
            "message": job.error if job.status == JobStatus.FAILED and job.error else job.message,
            "attempts": job.attempts, "max_attempts": job.max_attempts, "stale": is_stale(job)}


# --- Notifications --------------------------------------------------------------------------------


def _notify(job: Job) -> None:
    """Push the job's state to the page after commit (immediately outside a transaction)."""
    kind = _kinds.get(job.kind)
    if kind is not None and kind.notify is not None:
        try:
            kind.notify(job)
        except Exception:  # a live update is best effort; pages re-read state over HTTP
            log.warning("could not notify job %s", job.pk, exc_info=True)
    else:
        events.broadcast(job.workshop_id, "job", state(job))


def _publish(job_id: int, kind: JobKind) -> None:
    """Queue the task (after commit). A broker that is down leaves the row queued: the sweeper
    publishes it again."""
    from workshops.tasks import run_job

    limit = kind.limit()

    def send():
        try:
            run_job.apply_async((job_id,), time_limit=limit, soft_time_limit=max(1, limit - 5))
        except Exception:
            log.exception("could not queue job %s; the sweeper will retry", job_id)

    transaction.on_commit(send)


# --- Services -------------------------------------------------------------------------------------


@transaction.atomic
def job_request(*, workshop: Workshop, kind: str, by: Membership | None = None, fingerprint: str = "",
                params: dict | None = None, reuse_done: bool = False, replace_active: str = "") -> Job:
    """Queue `kind` for the workshop, or return the job that already does it.

    Returned instead of a new job: the kind's active job while its worker is alive; with
    `reuse_done`, the latest finished job with the same `fingerprint`. An active job whose
    heartbeat went silent is failed here and a new one queued. `replace_active` (a reason)
    ends an active job even while its worker is alive — its inputs changed so that its result
    must not be used (a participant withdrew) — and queues a new one; the old run's next
    write finds its row gone from under it (JobLost) and it stops.
    """
    spec = get_kind(kind)
    Workshop.objects.select_for_update().filter(pk=workshop.pk).first()  # one request at a time per workshop
    now = timezone.now()
    for active in Job.objects.filter(workshop=workshop, kind=kind, status__in=JOB_ACTIVE).order_by("-created_at"):
        if not is_stale(active, now) and not replace_active:
            return active
        ended = Job.objects.filter(pk=active.pk, status=active.status, attempts=active.attempts).update(
            status=JobStatus.FAILED, finished_at=now,
            error=replace_active or "The worker stopped answering; a new run was started instead.",
        )
        if ended:
            active.refresh_from_db()
            transaction.on_commit(lambda j=active: _notify(j))
    if reuse_done and fingerprint:
        done = (Job.objects.filter(workshop=workshop, kind=kind, status=JobStatus.DONE, fingerprint=fingerprint)
                .order_by("-created_at", "-id").first())
        if done is not None:
            return done
    job = Job.objects.create(
        workshop=workshop, kind=kind, fingerprint=fingerprint, params=params or {}, requested_by=by,
        max_attempts=spec.max_attempts or settings.JOB_MAX_ATTEMPTS, queued_at=now, heartbeat_at=now,
    )
    _publish(job.pk, spec)
    transaction.on_commit(lambda: _notify(job))
    return job


def job_claim(*, job_id: int) -> Job | None:
    """Move a queued job to running for this process (one conditional UPDATE); None when it is
    not queued any more (done, running elsewhere, swept) or was deleted."""
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED, attempts__lt=F("max_attempts")).update(
        status=JobStatus.RUNNING, attempts=F("attempts") + 1, started_at=now, heartbeat_at=now, progress=0,
        message="", error="", worker=f"{socket.gethostname()}:{os.getpid()}"[:200], worker_pid=os.getpid(),
    )
    if not claimed:
        return None
    job = Job.objects.select_related("workshop").get(pk=job_id)
    _notify(job)
    return job


def _fenced(job: Job):
    return Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, attempts=job.attempts)


def job_progress(*, job: Job, progress: int, message: str = "") -> None:
    """Record progress of a running attempt (also a heartbeat) and push it; JobLost if the row
    is no longer this attempt's."""
    job.progress = max(0, min(100, int(progress)))
    job.message = (message or "")[:300]
    job.heartbeat_at = timezone.now()
    if not _fenced(job).update(progress=job.progress, message=job.message, heartbeat_at=job.heartbeat_at):
        raise JobLost(job.pk)
    _notify(job)


def job_finish(*, job: Job, result=None, message: str = "") -> bool:
    now = timezone.now()
    done = _fenced(job).update(status=JobStatus.DONE, progress=100, result=result, message=message[:300],
                               finished_at=now, heartbeat_at=now)
    if done:
        job.status, job.progress, job.result, job.message, job.finished_at = JobStatus.DONE, 100, result, message, now
        _notify(job)
    return bool(done)


def job_fail(*, job: Job, error: str) -> bool:
    now = timezone.now()
    failed = _fenced(job).update(status=JobStatus.FAILED, error=error[:500], finished_at=now, heartbeat_at=now)
    if failed:
        job.status, job.error, job.finished_at = JobStatus.FAILED, error[:500], now
        _notify(job)
    return bool(failed)


def job_sweep(*, now=None) -> dict[str, int]:
    """End or restart every job whose worker went silent. Run periodically (beat schedule)."""
    now = now or timezone.now()
    stale_cut = now - timedelta(seconds=settings.JOB_STALE_SECONDS)
    counts = {"requeued": 0, "failed": 0, "republished": 0}
    for job in Job.objects.filter(status=JobStatus.RUNNING).order_by("id"):
        spec = _kinds.get(job.kind)
        limit = spec.limit() if spec else settings.CELERY_TASK_TIME_LIMIT
        guard = _fenced(job).filter(heartbeat_at=job.heartbeat_at)
        with transaction.atomic():
            if job.started_at and job.started_at < now - timedelta(seconds=limit + settings.JOB_STALE_SECONDS):
                if guard.update(status=JobStatus.FAILED, finished_at=now,
                                error=f"The work took longer than its {limit} s limit and was stopped."):
                    counts["failed"] += 1
                    _after_sweep(job)
            elif job.heartbeat_at is None or job.heartbeat_at < stale_cut:
                if job.attempts < job.max_attempts and spec is not None:
                    if guard.update(status=JobStatus.QUEUED, queued_at=now, heartbeat_at=now, progress=0,
                                    message=f"The worker stopped; trying again (attempt {job.attempts + 1} "
                                            f"of {job.max_attempts}).", worker="", worker_pid=None):
                        counts["requeued"] += 1
                        _publish(job.pk, spec)
                        _after_sweep(job)
                elif guard.update(status=JobStatus.FAILED, finished_at=now,
                                  error=f"The worker stopped answering ({job.attempts} of {job.max_attempts} "
                                        f"attempts used). Start it again."):
                    counts["failed"] += 1
                    _after_sweep(job)
    queue_cut = now - timedelta(seconds=settings.JOB_QUEUE_TIMEOUT_SECONDS)
    for job in Job.objects.filter(status=JobStatus.QUEUED, heartbeat_at__lt=stale_cut).order_by("id"):
        spec = _kinds.get(job.kind)
        guard = Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED, heartbeat_at=job.heartbeat_at)
        with transaction.atomic():
            if job.queued_at < queue_cut or spec is None:
                if guard.update(status=JobStatus.FAILED, finished_at=now,
                                error="No worker picked the job up in time. Start it again."):
                    counts["failed"] += 1
                    _after_sweep(job)
            elif guard.update(heartbeat_at=now):  # the message may have been lost (a broker restart)
                counts["republished"] += 1
                _publish(job.pk, spec)
    if any(counts.values()):
        log.info("job sweep: %s", counts)
    return counts


def _after_sweep(job: Job) -> None:
    transaction.on_commit(lambda: _notify(Job.objects.get(pk=job.pk)))


# --- Running a job (inside the worker) --------------------------------------------------------------


class Reporter:
    """Handed to a kind's `run`: `report(percent, message)` records progress and a heartbeat;
    `report.done_message` is the line shown when the job is done."""

    def __init__(self, job: Job):
        self.job = job
        self.done_message = ""

    def __call__(self, progress: int, message: str = "") -> None:
        job_progress(job=self.job, progress=progress, message=message)
        pause = settings.CALMA_FAULT_JOB_SLEEP
        if pause and progress >= 50 and self.job.attempts == 1:  # tests: a window to kill the worker
            time.sleep(pause)


class _Heartbeat(threading.Thread):
    def __init__(self, job: Job):
        super().__init__(name=f"job-{job.pk}-heartbeat", daemon=True)
        self.job = job
        self.halt = threading.Event()

    def run(self) -> None:
        try:
            while not self.halt.wait(settings.JOB_HEARTBEAT_SECONDS):
                try:
                    close_old_connections()
                    if not _fenced(self.job).update(heartbeat_at=timezone.now()):
                        return  # swept or finished: the main thread finds out on its next write
                except Exception:  # the database may be briefly away; try again next beat
                    log.warning("job %s heartbeat failed", self.job.pk, exc_info=True)
        finally:
            connections.close_all()  # this thread's own connections


def execute(job: Job) -> None:
    """Run a claimed job to its end: done with the kind's result, or failed with the reason."""
    from celery.exceptions import SoftTimeLimitExceeded

    spec = get_kind(job.kind)
    reporter = Reporter(job)
    beat = _Heartbeat(job)
    beat.start()
    try:
        result = spec.run(job, reporter)
    except JobLost:
        log.warning("job %s attempt %s was taken over; its result is dropped", job.pk, job.attempts)
        return
    except SoftTimeLimitExceeded:
        job_fail(job=job, error=f"The work took longer than its {spec.limit()} s limit and was stopped.")
        return
    except Exception as exc:
        log.exception("job %s (%s) failed", job.pk, job.kind)
        job_fail(job=job, error=f"{exc.__class__.__name__}: {exc}")
        return
    finally:
        beat.halt.set()
        beat.join(timeout=5)
    job_finish(job=job, result=result, message=reporter.done_message)
