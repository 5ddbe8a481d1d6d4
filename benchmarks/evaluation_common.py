"""Shared set-up of the Evaluate benchmarks (evaluation_judge.py, evaluation_compare.py): a fresh
workshop with the deployment context of a history assistant, and axes with complete rubrics."""

from __future__ import annotations

import uuid

SCALE = {str(p): f"what a {p} looks like" for p in range(1, 6)}


def bench_workshop(title: str, prefix: str):
    """A new workshop (slug `prefix-<tag>`) created by a new user who may create workshops:
    (workshop, its facilitator's membership, tag)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from workshops import services

    tag = uuid.uuid4().hex[:8]
    user = get_user_model().objects.create(username=f"{prefix}-{tag}")
    user.user_permissions.add(Permission.objects.get(codename="add_workshop"))
    workshop = services.workshop_create(title=title, slug=f"{prefix}-{tag}", created_by=user,
                                        deployment_context="History assistant for students in India.")
    return workshop, workshop.memberships.get(), tag


def rubric_axis(workshop, name: str, definition: str, rubric_definition: str | None = None):
    """An axis of the workshop with a complete rubric (one version, every point of the scale
    described): its RubricVersion."""
    from discussion.models import Axis
    from evaluation.models import Rubric, RubricVersion

    axis = Axis.objects.create(workshop=workshop, name=name, definition=definition)
    rubric = Rubric.objects.create(workshop=workshop, axis=axis)
    return RubricVersion.objects.create(rubric=rubric, number=1, name=name,
                                        definition=definition if rubric_definition is None else rubric_definition,
                                        scale=SCALE)
