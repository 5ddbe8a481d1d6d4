"""Shared set-up for the Discuss benchmarks: their own database, seeded workshops, sessions.

They read DATABASE_URL / REDIS_URL like the app but work in "<configured name>_dbench",
created and migrated on first use, so they never touch test or development data. Run with the
environment of the test command, e.g.

  CALMA_TESTING=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/calma_discussion \
  REDIS_URL=redis://127.0.0.1:6379/4 CHANNEL_PREFIX=calma_discussion HF_HUB_OFFLINE=1 \
  .venv/bin/python -m benchmarks.discussion_map
"""

from __future__ import annotations

import os
import statistics
import uuid

from benchmarks import coding_common

SUFFIX = "_dbench"


def setup_django() -> str:
    return coding_common.setup_django(SUFFIX)


def make_workshop(prefix: str, participants: int):
    """A workshop in the Discuss stage with a facilitator and `participants` participants."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from workshops import services

    User = get_user_model()
    fac = User.objects.create(username=f"{prefix}-fac-{uuid.uuid4().hex[:8]}")
    fac.user_permissions.add(Permission.objects.get(codename="add_workshop"))
    workshop = services.workshop_create(
        title="Benchmark", slug=f"{prefix}-{uuid.uuid4().hex[:10]}", created_by=fac,
        deployment_context="History educational assistant for high-school students in India.",
    )
    for stage in ("interact", "reflect", "discuss"):
        services.workshop_set_stage(workshop=workshop, stage=stage, by=fac)
    workshop.refresh_from_db()
    members = []
    for n in range(participants):
        user = User.objects.create(username=f"{workshop.slug}-p{n}")
        m = services.membership_add(workshop=workshop, user=user, role="participant", display_name=f"p{n}")
        services.membership_consent(membership=m)
        members.append(m)
    facilitator = workshop.memberships.get(role="facilitator")
    return workshop, facilitator, members


def session_cookie(user) -> str:
    """A logged-in session for `user` (what the login view would create)."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return f"{settings.SESSION_COOKIE_NAME}={store.session_key}"


def percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    if not values:
        return {"n": 0}
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {"n": len(values), "median": round(statistics.median(values), 1), "p95": round(q[94], 1),
            "p99": round(q[98], 1), "max": round(values[-1], 1)}
