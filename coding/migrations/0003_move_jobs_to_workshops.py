"""coding.Job rows become workshops.Job rows of kind `summary` (one job mechanism for every
kind of long work, workshops/jobs.py); the summary page reads the result from there."""

from django.db import migrations

ACTIVE = ("queued", "running")


def copy_jobs(apps, schema_editor):
    Old = apps.get_model("coding", "Job")
    New = apps.get_model("workshops", "Job")
    rows = []
    for job in Old.objects.all().iterator():
        active = job.status in ACTIVE  # whatever ran them is gone: start again from the page
        rows.append(New(
            workshop_id=job.workshop_id, kind="summary", status="failed" if active else job.status,
            progress=job.progress, fingerprint=job.fingerprint, result=job.result,
            error="Stopped by an upgrade; generate it again." if active else job.error,
            attempts=1 if job.started_at or job.status != "queued" else 0, max_attempts=3,
            requested_by_id=job.requested_by_id, created_at=job.created_at, queued_at=job.created_at,
            started_at=job.started_at, heartbeat_at=job.finished_at or job.started_at,
            finished_at=job.finished_at or (job.created_at if active else None),
        ))
    New.objects.bulk_create(rows, batch_size=500)


def copy_back(apps, schema_editor):
    Old = apps.get_model("coding", "Job")
    New = apps.get_model("workshops", "Job")
    Old.objects.bulk_create([
        Old(workshop_id=j.workshop_id, kind="summary", status=j.status, progress=j.progress,
            fingerprint=j.fingerprint, result=j.result, error=j.error, requested_by_id=j.requested_by_id,
            created_at=j.created_at, started_at=j.started_at, finished_at=j.finished_at)
        for j in New.objects.filter(kind="summary").iterator()
    ], batch_size=500)
    New.objects.filter(kind="summary").delete()


class Migration(migrations.Migration):

    dependencies = [
        ('coding', '0002_job_code_updated_at_and_more'),
        ('workshops', '0002_job'),
    ]

    operations = [
        migrations.RunPython(copy_jobs, copy_back),
        migrations.DeleteModel(
            name='Job',
        ),
    ]
