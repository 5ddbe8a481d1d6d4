"""Periodic work of the Interact stage (scheduled in calma/settings.py CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def sweep_answers() -> int:
    """End answers left pending/streaming by a server process that died (no page view needed)."""
    from llm_gateway import services

    return services.stale_sweep()
