"""Create (or refresh) the demo workshop and its people. Safe to run any number of times."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand
from django.db import transaction

from workshops import services
from workshops.models import Membership, Role, Workshop

DEMO_SLUG = "history-assistant"
SYSTEM_PROMPT = (
    "You are an education assistant for high school students studying history in India. "
    "Answer questions to help pique the student's curiosity of the topic. Limit your answers to 2 paragraphs."
)
PEOPLE = [
    ("demo-facilitator", "calma-demo-facilitator", Role.FACILITATOR, "Demo Facilitator"),
    ("demo-researcher", "calma-demo-researcher", Role.RESEARCHER, "Demo Researcher"),
    ("demo-p1", "calma-demo-participant", Role.PARTICIPANT, "Asha"),
    ("demo-p2", "calma-demo-participant", Role.PARTICIPANT, "Ravi"),
    ("demo-p3", "calma-demo-participant", Role.PARTICIPANT, "Meera"),
]


class Command(BaseCommand):
    help = "Create the demo workshop 'History educational assistant' with demo logins (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--endpoint", action="append", default=[], help="Endpoint key(s) the demo workshop offers.")

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        users = {}
        for username, password, role, name in PEOPLE:
            user, created = User.objects.get_or_create(username=username, defaults={"first_name": name})
            if created or not user.check_password(password):
                user.set_password(password)
            if role == Role.FACILITATOR:
                user.is_staff = True
                user.save()
                user.user_permissions.add(Permission.objects.get(codename="add_workshop"))
            user.save()
            users[username] = (user, role, name)

        workshop = Workshop.objects.filter(slug=DEMO_SLUG).first()
        if workshop is None:
            workshop = services.workshop_create(
                title="History educational assistant",
                slug=DEMO_SLUG,
                deployment_context=(
                    "An educational assistant for high-school students studying history in India: "
                    "students ask it about events, people and periods, for homework and out of curiosity."
                ),
                audience="High-school students in India (ages 14-18), their teachers and parents",
                system_prompt=SYSTEM_PROMPT,
                created_by=users["demo-facilitator"][0],
                facilitator_name="Demo Facilitator",
            )
        for username, (user, role, name) in users.items():
            membership = Membership.objects.filter(workshop=workshop, user=user).first()
            if membership is None:
                membership = services.membership_add(workshop=workshop, user=user, role=role, display_name=name)
            if role != Role.FACILITATOR:
                services.membership_consent(membership=membership)

        for hook in _hooks():
            hook(workshop=workshop, endpoint_keys=options["endpoint"], stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS(f"Demo workshop ready: /w/{workshop.slug}/"))


def _hooks():
    """Other apps add their demo data (models offered, baseline conversations ...)."""
    hooks = []
    try:
        from llm_gateway.demo import seed as gateway_seed

        hooks.append(gateway_seed)
    except ImportError:
        pass
    return hooks
