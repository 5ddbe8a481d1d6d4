"""Background work of the Discuss stage.

The map is a job of kind `map` (workshops/jobs.py: claim, heartbeat, progress, sweep); this
module holds its work function. The worker loads the embedding model and compiles UMAP when
its process starts (`worker_process_init` for prefork children, `worker_ready` for the
solo/threads pools), not per task. UMAP's compiled code comes from numba's on-disk cache
(NUMBA_CACHE_DIR, see discussion.mapping.umap_module) after the first worker has filled it,
and the English model loads without torch, so warm-up takes seconds, not most of a minute.
"""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_process_init, worker_ready

log = logging.getLogger(__name__)


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
    from django.conf import settings

    if not settings.MAP_WARM_UP:  # a worker that serves no map jobs (or a test of other work)
        return
    try:
        from discussion import mapping

        mapping.warm_up()
    except Exception:  # noqa: BLE001  a worker without the model still serves other tasks
        log.exception("could not warm the map engine")


def run_map(job, report) -> dict:
    """The `map` job kind (registered in DiscussionConfig.ready; run by workshops/jobs.py).

    The new map version is written in one transaction at the end, so a worker killed mid-map
    leaves the previous version shown; the sweeper re-queues the job."""
    from discussion import mapping

    log.info("map job %s for workshop %s (attempt %s)", job.pk, job.workshop_id, job.attempts)
    result = mapping.compute(job.workshop, full_layout=bool(job.params.get("full_layout")), progress=report)
    report.done_message = f"{result.labels} labels, {result.embed.new} embedded, {result.placed_new} placed"
    version = result.version
    return {"version": version.pk if version else None, "number": version.number if version else None,
            "labels": result.labels}
