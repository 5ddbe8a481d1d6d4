"""Shared set-up for the Reflect benchmarks: a dedicated database and seeded data.

The benchmarks read DATABASE_URL / REDIS_URL like the app, but work in their own database
(the configured name + "_bench"), created and migrated on first use, so they never touch the
test or development data. Run with the environment of the test command, e.g.:

  CALMA_TESTING=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/calma_coding \
  REDIS_URL=redis://127.0.0.1:6379/3 CHANNEL_PREFIX=calma_coding HF_HUB_OFFLINE=1 \
  .venv/bin/python -m benchmarks.coding_render
"""

from __future__ import annotations

import os
import random
import statistics
import sys
from urllib.parse import urlparse

BENCH_SUFFIX = "_bench"


def bench_database_url(suffix: str = BENCH_SUFFIX) -> str:
    """The configured Postgres URL with the database name + suffix (shared by all benchmarks)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("Set DATABASE_URL=postgres://... (the benchmarks measure against Postgres).")
    parsed = urlparse(url)
    name = parsed.path.lstrip("/") or "calma"
    if not name.endswith(suffix):
        name += suffix
    return parsed._replace(path="/" + name).geturl()


def ensure_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(suffix: str = BENCH_SUFFIX, **environ: str) -> str:
    """Point Django at the benchmark database (the configured name + `suffix`), migrate it,
    return its URL. `environ`: more variables set for the run (shared by all benchmarks)."""
    url = bench_database_url(suffix)
    ensure_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.update(environ)
    os.environ.setdefault("CALMA_TESTING", "1")
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calma.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return url


def make_workshop(slug_prefix: str):
    """A fresh workshop in the Reflect stage with a facilitator (fast password hashing)."""
    import uuid

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from workshops import services

    user = get_user_model().objects.create(username=f"{slug_prefix}-fac-{uuid.uuid4().hex[:8]}")
    user.user_permissions.add(Permission.objects.get(codename="add_workshop"))
    workshop = services.workshop_create(
        title="Benchmark", slug=f"{slug_prefix}-{uuid.uuid4().hex[:10]}", created_by=user,
        deployment_context="History educational assistant for high-school students in India.",
    )
    services.workshop_set_stage(workshop=workshop, stage="interact", by=user)
    services.workshop_set_stage(workshop=workshop, stage="reflect", by=user)
    workshop.refresh_from_db()
    return workshop


def make_participant(workshop, n: int):
    from django.contrib.auth import get_user_model

    from workshops import services

    user = get_user_model().objects.create(username=f"{workshop.slug}-p{n}")
    membership = services.membership_add(workshop=workshop, user=user, role="participant", display_name=f"p{n}")
    services.membership_consent(membership=membership)
    return membership


ANSWER = (
    "The Mughal Empire was founded in 1526 when Babur defeated Ibrahim Lodi at Panipat. "
    "Akbar expanded it across northern India and is remembered for religious tolerance, "
    "although historians debate how far that tolerance went in practice. नमस्ते, इतिहास महत्वपूर्ण है। "
    "The empire's architecture — the Taj Mahal, the Red Fort — is still visited by millions. 🎉 "
    "Its decline in the eighteenth century opened the way for the East India Company. "
)


def make_conversation(owner, turns: int):
    from llm_gateway.models import Conversation, Message

    conv = Conversation.objects.create(workshop=owner.workshop, owner=owner, endpoint_key="bench",
                                       model_label="Model A", title="Mughal history")
    msgs = []
    for i in range(turns):
        msgs.append(Message(conversation=conv, role="user", content=f"Question {i + 1} about the Mughals?",
                            position=2 * i, status="complete"))
        msgs.append(Message(conversation=conv, role="assistant", content=ANSWER * 2, position=2 * i + 1,
                            status="complete"))
    Message.objects.bulk_create(msgs)
    return conv


def random_span(rng: random.Random, length: int, max_len: int = 60) -> tuple[int, int]:
    start = rng.randrange(0, length - 2)
    end = min(length, start + rng.randint(2, max_len))
    return start, end


def percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {"n": len(values), "median": statistics.median(values), "p95": q[94], "p99": q[98],
            "max": values[-1]}


def cleanup(workshop) -> None:
    """Delete a benchmark workshop, its users and their sessions."""
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.models import Session

    user_ids = list(workshop.memberships.values_list("user_id", flat=True)) + [workshop.created_by_id]
    keys = [s.session_key for s in Session.objects.all().iterator()
            if str(s.get_decoded().get("_auth_user_id")) in {str(i) for i in user_ids}]
    workshop.delete()
    Session.objects.filter(session_key__in=keys).delete()
    get_user_model().objects.filter(pk__in=user_ids).delete()
