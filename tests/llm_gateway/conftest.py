"""Helpers for the Interact tests: endpoints pointing at the test upstreams, a workshop
with models, and a clean rate-limit state in the shared cache."""

from __future__ import annotations

import json

import pytest

from llm_gateway import services
from llm_gateway.models import Conversation, WorkshopModel
from tests.conftest import delete_cache_keys
from tests.factories import make_participant, make_workshop


@pytest.fixture(autouse=True)
def _clean_rate_counters():
    delete_cache_keys("*llm:rate:*")
    yield


@pytest.fixture
def use_endpoints(settings):
    """Set the registry for this test: use_endpoints({"key": ..., "model": ..., ...}, ...)."""

    def configure(*entries: dict, **overrides):
        full = []
        for e in entries:
            item = {"name": e["key"], **e}
            full.append(item)
        settings.LLM_ENDPOINTS = json.dumps(full)
        settings.LLM_ENDPOINTS_FILE = ""
        for name, value in overrides.items():
            setattr(settings, name, value)
        return full

    return configure


@pytest.fixture
def chat_setup(use_endpoints, fault_upstream):
    """(workshop, participant, conversation) chatting with the fault upstream in `model`."""

    def make(model: str = "fault:ok", *, key: str = "fault", stage: str = "interact", extra: dict | None = None,
             endpoints: list[dict] | None = None, **overrides):
        entries = endpoints or [{"key": key, "base_url": fault_upstream.base_url, "model": model, **(extra or {})}]
        use_endpoints(*entries, **overrides)
        workshop = make_workshop(stage=stage)
        participant = make_participant(workshop)
        services.workshop_models_set(workshop=workshop, endpoint_keys=[entries[0]["key"]])
        model_row = WorkshopModel.objects.get(workshop=workshop, endpoint_key=entries[0]["key"])
        conversation = services.conversation_create(membership=participant, workshop_model=model_row)
        return workshop, participant, conversation

    return make


def answers(conversation: Conversation):
    return list(conversation.messages.filter(role="assistant").order_by("position"))
