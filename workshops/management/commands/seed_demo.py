"""Create (or refresh) the demo workshops and their people. Safe to run any number of times.

One demo workshop per stage, with the same people in each, so that every stage can be tried at
once without moving a stage: "History educational assistant" in Familiarize (the one to run
from the start), and copies already in Interact, Reflect (with stored conversations) and Discuss
(with conversations, highlights, attributes, top-three picks and board cards). A workshop's data
is seeded when it is created; later runs refresh logins, memberships and offered models and
leave what people did in the demo alone. What each app adds (models offered, conversations,
highlights, board cards) it registers itself in workshops/demo.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand
from django.db import transaction

from workshops import demo as demo_parts
from workshops import services
from workshops.models import STAGE_ORDER, Membership, Role, Stage, Workshop

DEMO_SLUG = "history-assistant"
SYSTEM_PROMPT = (
    "You are an education assistant for high school students studying history in India. "
    "Answer questions to help pique the student's curiosity of the topic. Limit your answers to 2 paragraphs."
)
DEPLOYMENT_CONTEXT = (
    "An educational assistant for high-school students studying history in India: "
    "students ask it about events, people and periods, for homework and out of curiosity."
)
AUDIENCE = "High-school students in India (ages 14-18), their teachers and parents"
PEOPLE = [
    ("demo-facilitator", "calma-demo-facilitator", Role.FACILITATOR, "Demo Facilitator"),
    ("demo-researcher", "calma-demo-researcher", Role.RESEARCHER, "Demo Researcher"),
    ("demo-p1", "calma-demo-participant", Role.PARTICIPANT, "Asha"),
    ("demo-p2", "calma-demo-participant", Role.PARTICIPANT, "Ravi"),
    ("demo-p3", "calma-demo-participant", Role.PARTICIPANT, "Meera"),
]


@dataclass(frozen=True)
class DemoWorkshop:
    slug: str
    title: str
    stage: str
    first_click: str  # what a demo participant does first there


DEMO_WORKSHOPS = [
    DemoWorkshop(DEMO_SLUG, "History educational assistant", Stage.FAMILIARIZE,
                 "read the orientation, do the practice and the readiness check; as demo-facilitator, move the "
                 "stage on the Dashboard to go on"),
    DemoWorkshop("history-interact", "History assistant · demo in Interact", Stage.INTERACT,
                 "open Interact, press New conversation and ask anything about Indian history"),
    DemoWorkshop("history-reflect", "History assistant · demo in Reflect", Stage.REFLECT,
                 "open Reflect, pick a conversation, select words of an answer, type a code, press Enter"),
    DemoWorkshop("history-discuss", "History assistant · demo in Discuss", Stage.DISCUSS,
                 "open Discuss: the group board (segment 4) already has cards; edit one or add your own"),
]


class Command(BaseCommand):
    help = "Create the demo workshops (one per stage) with demo logins (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--endpoint", action="append", default=[], help="Endpoint key(s) the demo workshops offer.")

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

        facilitator_user = users["demo-facilitator"][0]
        offered: set[str] = set()
        ready = []
        for demo in DEMO_WORKSHOPS:
            workshop = Workshop.objects.filter(slug=demo.slug).first()
            created = workshop is None
            if created:
                workshop = services.workshop_create(
                    title=demo.title, slug=demo.slug, deployment_context=DEPLOYMENT_CONTEXT, audience=AUDIENCE,
                    system_prompt=SYSTEM_PROMPT, created_by=facilitator_user, facilitator_name="Demo Facilitator",
                )
            for username, (user, role, name) in users.items():
                membership = Membership.objects.filter(workshop=workshop, user=user).first()
                if membership is None:
                    membership = services.membership_add(workshop=workshop, user=user, role=role, display_name=name)
                if role != Role.FACILITATOR and membership.consented_at is None:
                    services.membership_consent(membership=membership)
            for hook in demo_parts.every_workshop_hooks():
                offered.update(hook(workshop=workshop, endpoint_keys=options["endpoint"], stdout=self.stdout) or ())
            if created:
                _advance(workshop, demo.stage, facilitator_user, self.stdout)
            ready.append((workshop, demo))

        self.stdout.write(self.style.SUCCESS("Demo workshops (one per stage; the same logins in each):"))
        for workshop, demo in ready:
            self.stdout.write(f"  /w/{workshop.slug}/  {workshop.title}  [{workshop.get_stage_display()}]")
            if workshop.stage == demo.stage:
                self.stdout.write(f"      first: {demo.first_click}")
        self.stdout.write("Logins: " + ", ".join(f"{u} / {p}" for u, p, _r, _n in PEOPLE if not u.startswith("demo-p"))
                          + ", participants demo-p1, demo-p2, demo-p3 / calma-demo-participant")
        if offered:
            self.stdout.write(f"Models offered: {', '.join(sorted(offered))}")
        else:
            for notice in demo_parts.no_model_notices():
                self.stdout.write(notice)


def _advance(workshop: Workshop, target: str, by, stdout) -> None:
    """Walk a new demo workshop through the stages up to `target`, adding what each stage
    produces with the apps' own services (they check the stage, as for real people)."""
    facilitator = workshop.memberships.get(user=by)
    participants = list(workshop.memberships.filter(role=Role.PARTICIPANT))
    for stage in STAGE_ORDER[1:STAGE_ORDER.index(Stage(target)) + 1]:
        for membership in participants:  # they read the orientation in Familiarize
            services.orientation_complete(membership=membership)
        services.workshop_set_stage(workshop=workshop, stage=stage, by=by)
        workshop.refresh_from_db()
        for hook in demo_parts.stage_hooks(stage):  # each app's part (workshops/demo.py)
            hook(workshop=workshop, facilitator=facilitator, stdout=stdout)

