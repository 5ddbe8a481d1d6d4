"""The Celery tasks of the job mechanism (workshops/jobs.py) and of periodic work.

Tasks take ids, are idempotent and are queued after commit. The schedule that runs the
sweepers is `CELERY_BEAT_SCHEDULE` in calma/settings.py (Celery beat in production,
`manage.py run_periodic` in the embedded mode).
"""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_job(job_id: int) -> None:
    """Claim and run one job; a job that is not queued any more is left alone."""
    from workshops import jobs

    job = jobs.job_claim(job_id=job_id)
    if job is not None:
        jobs.execute(job)


@shared_task(ignore_result=True)
def sweep_jobs() -> dict:
    from workshops import jobs

    return jobs.job_sweep()
