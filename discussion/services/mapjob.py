"""Queueing the affinity map's computation (a workshops.jobs job) and pushing its state to the board."""

from __future__ import annotations

from django.db import transaction

from discussion import events, selectors
from discussion.services._common import _require_facilitator
from workshops import jobs
from workshops.models import Job, JobStatus, Membership, Workshop

# --- the map job -------------------------------------------------------------------------------------


@transaction.atomic
def map_request(*, workshop: Workshop, by: Membership | None, full_layout: bool = False) -> Job:
    """Queue a map computation (a `map` job, workshops/jobs.py). A queued or running job whose
    worker is alive is reused, not doubled; one whose worker went silent is replaced."""
    if by is not None:
        _require_facilitator(by, workshop)
    job = jobs.job_request(workshop=workshop, kind="map", by=by, params={"full_layout": bool(full_layout)})
    if full_layout and not job.params.get("full_layout") and job.status == JobStatus.QUEUED:
        Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(params={**job.params, "full_layout": True})
        job.params = {**job.params, "full_layout": True}
    return job


def map_notify(job: Job) -> None:
    """Push a map job's state to the board (the map shows its progress and reloads when done)."""
    events.board(job.workshop_id, "job", selectors.job_data(job))
