import pytest

from tests.factories import facilitator_of, make_conversation, make_participant, make_workshop

MIXED = "नमस्ते! भारत का इतिहास 🎉 很长：中国历史。 التاريخ مهم جدا. Thanksgiving is an American holiday 👩🏽‍🏫 end."


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Factories hash a password per user; the slow default hasher dominates these tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def reflect():
    """A workshop in the Reflect stage: two participants, a conversation each, one baseline."""
    workshop = make_workshop(stage="reflect")
    facilitator = facilitator_of(workshop)
    p1 = make_participant(workshop)
    p2 = make_participant(workshop)
    own = make_conversation(p1, turns=[("Tell me about Indian history", MIXED),
                                       ("And the Mughals?", "The Mughal Empire ruled much of India from 1526.")])
    other = make_conversation(p2, turns=[("What is Diwali?", "Diwali is the festival of lights.")])
    baseline = make_conversation(
        facilitator,
        turns=[("What is Thanksgiving?", "Thanksgiving is a national holiday in the United States, celebrated "
                                         "on the fourth Thursday of November.")],
        is_baseline=True,
        is_sandbox=True,  # as in the app: the facilitator's conversations are sandbox ones
    )
    make_conversation(facilitator, turns=[("Sandbox only", "Not shared with anyone.")])  # not baseline

    class R:
        pass

    r = R()
    r.workshop, r.facilitator, r.p1, r.p2 = workshop, facilitator, p1, p2
    r.own, r.other, r.baseline = own, other, baseline
    r.own_answer = own.messages.filter(role="assistant").order_by("position").first()
    r.own_answer2 = own.messages.filter(role="assistant").order_by("position").last()
    r.other_answer = other.messages.get(role="assistant")
    r.baseline_answer = baseline.messages.get(role="assistant")
    return r
