"""The `study_match` job (workshops/jobs.py): suggested correspondences by meaning are computed by
a worker, where the embedding model lives, never in a web request."""

from __future__ import annotations


def run_match_job(job, report) -> dict:
    from django.contrib.auth import get_user_model

    from studies import services
    from studies.models import Study
    from workshops.models import Workshop

    study = Study.objects.get(pk=job.params["study"])
    by = get_user_model().objects.get(pk=job.params["user"])
    found = {w.pk: w for w in Workshop.objects.filter(pk__in=job.params["workshops"])}
    workshops = [found[pk] for pk in job.params["workshops"] if pk in found]
    report(10, "Reading the axes' meaning")
    created = services.matches_suggest(study=study, by=by, workshops=workshops)  # checks access again
    return {"created": len(created)}
