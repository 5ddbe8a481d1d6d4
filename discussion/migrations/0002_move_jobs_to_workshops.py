"""discussion.Job rows become workshops.Job rows of kind `map` (one job mechanism for every
kind of long work, workshops/jobs.py). The map versions they made stay (MapVersion); the job's
result keeps the version's id."""

from django.db import migrations

ACTIVE = ("queued", "running")


def copy_jobs(apps, schema_editor):
    Old = apps.get_model("discussion", "Job")
    New = apps.get_model("workshops", "Job")
    rows = []
    for job in Old.objects.all().iterator():
        active = job.status in ACTIVE  # whatever ran them is gone: refresh the map again
        rows.append(New(
            workshop_id=job.workshop_id, kind="map", status="failed" if active else job.status,
            progress=job.progress, message=job.message, params={"full_layout": job.full_layout},
            result={"version": job.result_id} if job.result_id else None,
            error="Stopped by an upgrade; refresh the map again." if active else "",
            attempts=min(job.attempts, 3), max_attempts=max(3, job.attempts, 1),
            requested_by_id=job.requested_by_id, created_at=job.created_at, queued_at=job.created_at,
            started_at=job.started_at, heartbeat_at=job.finished_at or job.started_at,
            finished_at=job.finished_at or (job.created_at if active else None), worker_pid=job.worker_pid,
        ))
    New.objects.bulk_create(rows, batch_size=500)


def copy_back(apps, schema_editor):
    Old = apps.get_model("discussion", "Job")
    New = apps.get_model("workshops", "Job")
    Old.objects.bulk_create([
        Old(workshop_id=j.workshop_id, kind="map", full_layout=bool((j.params or {}).get("full_layout")),
            status=j.status, progress=j.progress, message=(j.message or j.error)[:300], attempts=j.attempts,
            result_id=(j.result or {}).get("version") if isinstance(j.result, dict) else None,
            requested_by_id=j.requested_by_id, created_at=j.created_at, started_at=j.started_at,
            finished_at=j.finished_at, worker_pid=j.worker_pid)
        for j in New.objects.filter(kind="map").iterator()
    ], batch_size=500)
    New.objects.filter(kind="map").delete()


class Migration(migrations.Migration):

    dependencies = [
        ('discussion', '0001_initial'),
        ('workshops', '0002_job'),
    ]

    operations = [
        migrations.RunPython(copy_jobs, copy_back),
        migrations.DeleteModel(
            name='Job',
        ),
    ]
