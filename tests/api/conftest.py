"""A world for the API: two workshops of a study with final axes, codes, annotations, ratings, a
withdrawn participant's data, and a token for each kind of caller."""

from __future__ import annotations

import pytest

from api import services as api_services
from coding.models import Annotation, Code
from tests.discussion.conftest import add_code
from tests.factories import make_conversation
from tests.studies.world import two_groups, withdrawn_participant


class World:
    pass


def build_world():
    w = World()
    w.study, w.a, w.b = two_groups(participants=2)
    gone = withdrawn_participant(w.a.workshop)
    conversation = make_conversation(gone, [("secret question", "WITHDRAWN-ANSWER text here")])
    add_code(gone, "withdrawn-code", conversation.messages.get(role="assistant"), excerpt="WITHDRAWN-ANSWER")
    w.gone = gone
    w.tokens = {}
    for role, membership in [("facilitator", w.a.facilitator), ("researcher", w.a.researcher),
                             ("other_researcher", w.b.researcher), ("participant", w.a.people[0])]:
        w.tokens[role] = api_services.token_create(user=membership.user, name=role)[1]
    revoked, raw = api_services.token_create(user=w.a.researcher.user, name="old")
    api_services.token_revoke(token=revoked, by=w.a.researcher.user)
    w.tokens["revoked"] = raw
    w.tokens["invalid"] = "calma_" + "x" * 43
    w.n_annotations = Annotation.objects.filter(membership__workshop=w.a.workshop,
                                                membership__withdrawn_at__isnull=True).count()
    w.n_codes = Code.objects.filter(workshop=w.a.workshop, membership__withdrawn_at__isnull=True).count()
    return w


@pytest.fixture
def world(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return build_world()
