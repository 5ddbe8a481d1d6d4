import io

import pytest
from django.core.management import call_command

from llm_gateway.models import Conversation, WorkshopModel
from workshops.models import Workshop

pytestmark = pytest.mark.django_db

RUN_LOCAL = ('[{"key": "local-smollm2", "name": "SmolLM2 135M (local llama.cpp)", '
             '"base_url": "http://127.0.0.1:8088/v1", "model": "smollm2-135m-instruct"}]')


def test_seed_demo_without_endpoints_leaves_no_models_but_a_baseline_set(settings):
    settings.LLM_ENDPOINTS = ""
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    workshop = Workshop.objects.get(slug="history-assistant")
    assert not WorkshopModel.objects.filter(workshop=workshop).exists()
    assert "No model offered in the demo workshops yet" in out.getvalue()
    baseline = Conversation.objects.filter(workshop=workshop, is_baseline=True)
    assert baseline.count() == 2
    thanksgiving = baseline.get(title="Thanksgiving")
    answer = thanksgiving.messages.get(role="assistant")
    assert answer.status == "complete" and "Wampanoag" in answer.content


def test_seed_demo_offers_the_endpoint_and_is_idempotent(settings):
    settings.LLM_ENDPOINTS = RUN_LOCAL
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", endpoint=["local-smollm2"], stdout=io.StringIO())
    call_command("seed_demo", endpoint=["local-smollm2"], stdout=io.StringIO())
    workshop = Workshop.objects.get(slug="history-assistant")
    assert list(WorkshopModel.objects.filter(workshop=workshop).values_list("endpoint_key", "blind_label")) == [
        ("local-smollm2", "Model A")]
    assert Conversation.objects.filter(workshop=workshop, is_baseline=True).count() == 2
