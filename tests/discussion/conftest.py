"""A workshop in the Discuss stage with three participants, their codes, annotations and attributes."""

from __future__ import annotations

import pytest

from coding.models import Annotation, AnnotationCode, Attribute, Code
from discussion import services
from tests.conftest import delete_cache_keys
from tests.factories import facilitator_of, make_conversation, make_member, make_participant, make_workshop

# Real-looking labels (the CALMA paper's Table 1 and section 4.2).
LABELS = {
    0: ["colonial bias", "western bias", "balanced", "accurate dates"],
    1: ["religious bias", "one-sided", "nuanced", "age appropriate"],
    2: ["bias to british government", "diplomatic", "factual accuracy", "simple language"],
}
ATTRIBUTES = {
    0: [("Bias", "Favouring one side's account, e.g. colonial or Western views", ["colonial bias", "western bias"]),
        ("Balance", "Presenting several perspectives", ["balanced"])],
    1: [("Religious bias", "Favouring or disparaging a religion", ["religious bias", "one-sided"]),
        ("Nuance", "Showing complexity", ["nuanced"])],
    2: [("Bias", "Taking the side of the colonial government", ["bias to british government"]),
        ("Accuracy", "Facts and dates are right", ["factual accuracy"])],
}


def add_code(membership, text, message=None, excerpt=None, memo=""):
    code = Code.objects.create(workshop=membership.workshop, membership=membership, text=text,
                               normalized=text.casefold().strip(), memo=memo)
    if message is not None:
        excerpt = excerpt or message.content[:40]
        start = message.content.index(excerpt)
        annotation, _created = Annotation.objects.get_or_create(
            membership=membership, message=message, start=start, end=start + len(excerpt), defaults={"excerpt": excerpt})
        AnnotationCode.objects.create(annotation=annotation, code=code)
    return code


class Discuss:
    pass


def build(stage="discuss", participants=3):
    workshop = make_workshop(stage=stage)
    d = Discuss()
    d.workshop = workshop
    d.facilitator = facilitator_of(workshop)
    d.facilitator.user  # load it here: async tests cannot query lazily
    d.researcher = make_member(workshop, role="researcher")
    d.researcher.user
    d.people = [make_participant(workshop) for _ in range(participants)]
    d.codes, d.attributes, d.answers = {}, {}, {}
    for i, member in enumerate(d.people):
        conv = make_conversation(member, turns=[
            (f"Question {i}", f"The British East India Company arrived in {1600 + i}. Many historians differ on this. "
                              f"Some accounts centre Britain; others centre Indian rulers and people."),
        ])
        answer = conv.messages.get(role="assistant")
        d.answers[member.pk] = answer
        for text in LABELS.get(i, ["bias", "balanced"]):
            d.codes[(member.pk, text)] = add_code(member, text, answer, excerpt="Many historians differ on this")
        for position, (name, definition, code_texts) in enumerate(ATTRIBUTES.get(i, [])):
            attribute = Attribute.objects.create(workshop=workshop, membership=member, name=name,
                                                 definition=definition, position=position)
            attribute.codes.set([d.codes[(member.pk, t)] for t in code_texts])
            d.attributes[(member.pk, name)] = attribute
    return d


def goto(d, segment):
    services.session_set_segment(workshop=d.workshop, by=d.facilitator, segment=segment)


@pytest.fixture
def discuss(db):
    return build()


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """channels_redis binds its locks and pools to an event loop; each test has its own loop."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clean_board_rate_counters():
    """Member rate counters live in Redis (by membership id, which a fresh test database reuses)."""
    delete_cache_keys("*board:rate:*")
    yield
