"""The project's own views (no app's domain): the health check."""

from __future__ import annotations

import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_safe


@require_safe
def healthz(request):
    """Database, channel layer and broker state, as JSON (200 when all answer, else 503)."""
    result = {}
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        result["database"] = {"ok": True, "vendor": connection.vendor}
    except Exception as exc:  # noqa: BLE001
        result["database"] = {"ok": False, "error": exc.__class__.__name__}
    try:
        layer = get_channel_layer()
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.send)(channel, {"type": "health.ping"})
        message = async_to_sync(layer.receive)(channel)
        result["channel_layer"] = {"ok": message.get("type") == "health.ping", "backend": layer.__class__.__name__}
    except Exception as exc:  # noqa: BLE001
        result["channel_layer"] = {"ok": False, "error": exc.__class__.__name__}
    try:
        from calma.celery import app

        if settings.CELERY_TASK_ALWAYS_EAGER:
            result["broker"] = {"ok": True, "mode": "inline"}
        else:
            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            result["broker"] = {"ok": True, "mode": "celery"}
    except Exception as exc:  # noqa: BLE001
        result["broker"] = {"ok": False, "error": exc.__class__.__name__}
    ok = all(part["ok"] for part in result.values())
    result["status"] = "ok" if ok else "degraded"
    result["ms"] = round((time.monotonic() - started) * 1000, 1)
    return JsonResponse(result, status=200 if ok else 503)
