"""`manage.py seed_demo`: a newcomer can try every stage at once with the demo logins."""

import io

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from coding.models import Annotation, Attribute
from discussion.models import Axis, Pick
from llm_gateway.models import Conversation, WorkshopModel
from workshops.models import Membership, Workshop

pytestmark = pytest.mark.django_db

ENDPOINTS = ('[{"key": "local-smollm2", "name": "SmolLM2 135M (local llama.cpp)", '
             '"base_url": "http://127.0.0.1:8088/v1", "model": "smollm2-135m-instruct"}]')
STAGES = {"history-assistant": "familiarize", "history-interact": "interact", "history-reflect": "reflect",
          "history-discuss": "discuss"}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _counts():
    return {
        "workshops": Workshop.objects.count(), "memberships": Membership.objects.count(),
        "conversations": Conversation.objects.count(), "annotations": Annotation.objects.count(),
        "attributes": Attribute.objects.count(), "picks": Pick.objects.count(), "axes": Axis.objects.count(),
        "models": WorkshopModel.objects.count(),
    }


def _participant():
    client = Client()
    assert client.login(username="demo-p1", password="calma-demo-participant")
    return client


def test_seed_demo_makes_a_workshop_per_stage_and_is_idempotent(settings):
    settings.LLM_ENDPOINTS = ENDPOINTS
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert dict(Workshop.objects.values_list("slug", "stage")) == STAGES
    first = _counts()
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", endpoint=["local-smollm2"], stdout=io.StringIO())
    assert _counts() == first
    # The printed guide: every workshop, what to click first, the logins, the model.
    text = out.getvalue()
    for slug in STAGES:
        assert f"/w/{slug}/" in text
    assert "first:" in text and "demo-p1" in text and "calma-demo-participant" in text
    assert "Models offered: local-smollm2" in text and "No model" not in text
    # Every demo workshop offers the configured model (without --endpoint: all of LLM_ENDPOINTS).
    assert WorkshopModel.objects.filter(endpoint_key="local-smollm2").count() == len(STAGES)


def test_seed_demo_data_for_reflect_and_discuss():
    call_command("seed_demo", stdout=io.StringIO())
    reflect = Workshop.objects.get(slug="history-reflect")
    discuss = Workshop.objects.get(slug="history-discuss")
    for workshop in (reflect, discuss):
        participants = workshop.memberships.filter(role="participant")
        assert participants.count() == 3
        assert Conversation.objects.filter(workshop=workshop, owner__in=participants).count() == 3
        assert Conversation.objects.filter(workshop=workshop, is_baseline=True).count() == 2
        for m in participants:
            assert Annotation.objects.filter(membership=m).count() == 3
            assert m.attributes.exists()
            assert all(a.excerpt == a.message.content[a.start:a.end] for a in Annotation.objects.filter(membership=m))
    assert Pick.objects.filter(membership__workshop=discuss).count() >= 3
    axes = Axis.objects.filter(workshop=discuss)
    assert axes.count() == 3 and any(a.examples.exists() for a in axes)
    assert discuss.discussion.segment == 4  # the board
    # The Familiarize and Interact demos start clean.
    for slug in ("history-assistant", "history-interact"):
        assert not Conversation.objects.filter(workshop__slug=slug, is_baseline=False).exists()


def test_the_demo_participant_reaches_every_stage(settings):
    settings.LLM_ENDPOINTS = ENDPOINTS
    call_command("seed_demo", stdout=io.StringIO())
    client = _participant()
    home = client.get(reverse("home")).content.decode()
    for slug in STAGES:
        assert f"/w/{slug}/" in home

    page = client.get(reverse("workshops:orientation", args=["history-assistant"]))
    assert page.status_code == 200

    chat = client.get(reverse("llm_gateway:index", args=["history-interact"]))
    assert chat.status_code == 200
    assert "Model A" in chat.content.decode()  # a model to chat with, no stage to move first

    reflect = client.get(reverse("coding:index", args=["history-reflect"]))
    assert reflect.status_code == 200
    assert "Who was Ashoka?" in reflect.content.decode()
    own = Conversation.objects.get(workshop__slug="history-reflect", title="Who was Ashoka?")
    transcript = client.get(reverse("coding:transcript", args=["history-reflect", own.id]))
    assert transcript.status_code == 200 and "acknowledges debate" in transcript.content.decode()

    board = client.get(reverse("discussion:session", args=["history-discuss"]))
    assert board.status_code == 200
    state = client.get(reverse("discussion:state", args=["history-discuss"]))  # what the board page loads
    assert state.status_code == 200 and "Acknowledges historical debate" in state.content.decode()
