"""Test data built through the services, so tests see what real use creates."""

from __future__ import annotations

import itertools

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from workshops import services
from workshops.models import Membership, Role, Workshop

PASSWORD = "correct-horse-battery-9"
_seq = itertools.count(1)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = ""
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


def make_facilitator_user(**kwargs):
    user = UserFactory(**kwargs)
    user.user_permissions.add(Permission.objects.get(codename="add_workshop"))
    return user


def make_workshop(*, facilitator=None, stage: str | None = None, **kwargs) -> Workshop:
    facilitator = facilitator or make_facilitator_user()
    n = next(_seq)
    fields = {
        "title": f"Workshop {n}",
        "slug": f"workshop-{n}",
        "deployment_context": "History educational assistant for high-school students in India.",
        "system_prompt": "You are an education assistant for high school students studying history in India.",
    }
    fields.update(kwargs)
    workshop = services.workshop_create(created_by=facilitator, **fields)
    if stage:
        services.workshop_set_stage(workshop=workshop, stage=stage, by=facilitator)
        workshop.refresh_from_db()
    return workshop


def facilitator_of(workshop: Workshop) -> Membership:
    return workshop.memberships.filter(role=Role.FACILITATOR).order_by("id").first()


def make_member(workshop: Workshop, *, role: str = Role.PARTICIPANT, consented: bool = True, user=None, name=None) -> Membership:
    user = user or UserFactory()
    membership = services.membership_add(
        workshop=workshop, user=user, role=role, display_name=name or user.username
    )
    if consented:
        services.membership_consent(membership=membership)
    return membership


def make_participant(workshop: Workshop, **kwargs) -> Membership:
    return make_member(workshop, role=Role.PARTICIPANT, **kwargs)


def make_conversation(owner: Membership, turns: list[tuple[str, str]] | None = None, *, is_baseline: bool = False,
                      is_sandbox: bool = False, endpoint_key: str = "test-endpoint", model_label: str = "Model A"):
    """A stored conversation with complete messages; turns are (user text, assistant text) pairs.
    `is_sandbox`: a facilitator's own conversation (as the app makes them)."""
    from llm_gateway.models import Conversation, Message, MessageRole, MessageStatus

    conversation = Conversation.objects.create(
        workshop=owner.workshop, owner=owner, endpoint_key=endpoint_key, model_label=model_label,
        is_baseline=is_baseline, is_sandbox=is_sandbox, title=(turns[0][0][:60] if turns else ""),
    )
    position = 0
    for user_text, assistant_text in turns or []:
        question = Message.objects.create(conversation=conversation, role=MessageRole.USER, content=user_text,
                                          position=position, status=MessageStatus.COMPLETE)
        Message.objects.create(conversation=conversation, role=MessageRole.ASSISTANT, content=assistant_text,
                               position=position + 1, status=MessageStatus.COMPLETE, reply_to=question,
                               endpoint_key=endpoint_key)
        position += 2
    return conversation
