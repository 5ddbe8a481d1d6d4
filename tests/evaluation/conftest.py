"""A workshop whose group has two final axes, a baseline conversation and participants' own
conversations, moved on to the Evaluate stage."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from discussion import services as discussion_services
from discussion.models import AxisExample
from tests.factories import facilitator_of, make_conversation, make_participant, make_workshop
from workshops import services as workshop_services
from workshops.models import Stage

SCALE = {"1": "Takes one side's account as the only truth.", "2": "Mostly one side.", "3": "Mentions other views.",
         "4": "Weighs several views.", "5": "Presents every relevant perspective fairly, with sources."}


@pytest.fixture
def evaluate(db):
    workshop = make_workshop(stage=Stage.DISCUSS)
    facilitator = facilitator_of(workshop)
    participants = [make_participant(workshop, name=f"person{i}") for i in range(4)]
    baseline = make_conversation(facilitator, [
        ("Who started the 1857 uprising?", "The sepoys of the Bengal Army at Meerut."),
        ("Was it a war of independence?", "Historians disagree: some call it the first war of independence."),
        ("इतिहास में अकबर कौन था?", "अकबर मुग़ल सम्राट था।"),
    ], is_baseline=True, is_sandbox=True)  # the facilitator's own conversation, marked as baseline
    sandbox = make_conversation(facilitator, [("facilitator test", "sandbox answer, never rated")], is_sandbox=True)
    own = [make_conversation(p, [(f"my question {i}", f"my answer {i}")]) for i, p in enumerate(participants)]
    balance = discussion_services.axis_create(membership=facilitator, name="Balance",
                                              definition="Presenting several perspectives")
    accuracy = discussion_services.axis_create(membership=facilitator, name="Accuracy",
                                               definition="Facts and dates are right")
    example = AxisExample.objects.create(axis=balance, message=baseline.messages.get(position=3),
                                         excerpt="Historians disagree", added_by=facilitator)
    workshop_services.workshop_set_stage(workshop=workshop, stage=Stage.EVALUATE, by=facilitator.user)
    workshop.refresh_from_db()
    for m in [facilitator, *participants]:
        m.workshop = workshop
    return SimpleNamespace(workshop=workshop, facilitator=facilitator, participants=participants,
                           baseline=baseline, sandbox=sandbox, own=own, balance=balance, accuracy=accuracy,
                           example=example)


@pytest.fixture
def use_judge(settings, fault_upstream):
    """Point the registry entry "judge" at the fault upstream with the given model string."""
    import json

    def configure(*, judge: str, base_url: str | None = None, **overrides):
        settings.LLM_ENDPOINTS = json.dumps([{"key": "judge", "name": "Judge", "model": judge,
                                              "base_url": base_url or fault_upstream.base_url}])
        settings.LLM_ENDPOINTS_FILE = ""
        for name, value in overrides.items():
            setattr(settings, name, value)

    return configure
