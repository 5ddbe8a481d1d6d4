"""Background work of the Reflect stage. Tasks take ids, are idempotent and report progress."""

from __future__ import annotations

import logging

from celery import shared_task

from coding.models import Job, JobStatus

log = logging.getLogger(__name__)


@shared_task(acks_late=True, time_limit=300, soft_time_limit=290)
def build_summary(job_id: int) -> None:
    """Compute the group summary for a Job row; a finished or vanished job is left alone."""
    from coding import selectors, services, summary

    claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(status=JobStatus.RUNNING)
    if not claimed:  # already done, running elsewhere, or deleted
        return
    services.job_progress(job_id=job_id, progress=5, status=JobStatus.RUNNING)
    job = Job.objects.select_related("workshop").get(pk=job_id)
    try:
        inputs = selectors.summary_inputs(job.workshop)
        result = summary.build(inputs, progress=lambda p: services.job_progress(job_id=job_id, progress=p))
    except Exception as exc:
        log.exception("group summary %s failed", job_id)
        services.job_progress(job_id=job_id, progress=100, status=JobStatus.FAILED,
                              error=f"{exc.__class__.__name__}: {exc}"[:500])
        return
    services.job_progress(job_id=job_id, progress=100, status=JobStatus.DONE, result=result)
