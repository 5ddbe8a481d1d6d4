"""Every HTTP and websocket route of the project, enumerated from the URLconf and the socket
routing, and a "world" to aim them at: one workshop per stage, each with a member of every
role. Used by the role x route matrix (tests/workshops/test_permissions.py) and the fuzz tests
(tests/test_fuzz.py), so a new route is covered by both without being listed by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.factories import make_participant
from workshops import services as workshop_services
from workshops.models import Role

# The roles of the matrix, in the order of its expectation strings.
F, P, U, W, R, O, A = "facilitator", "participant", "unconsented", "withdrawn", "researcher", "outsider", "anonymous"
ROLES = (F, P, U, W, R, O, A)

# The stage a route family is tried in (its namespace decides; routes without a workshop use none).
STAGE_OF_NAMESPACE = {"workshops": "familiarize", "llm_gateway": "interact", "coding": "reflect",
                      "discussion": "discuss", "evaluation": "evaluate", "studies": "evaluate", "api": "evaluate",
                      "api_v1": "evaluate"}


@dataclass
class Route:
    name: str  # "namespace:name" (or the pattern, for an unnamed one)
    pattern: str  # the full route text, for messages
    kwargs: tuple[str, ...]  # the URL's keyword arguments, outermost first
    named: bool = True

    @property
    def namespace(self) -> str:
        return self.name.split(":", 1)[0] if ":" in self.name else ""


def _pattern_kwargs(pattern) -> list[str]:
    converters = getattr(pattern.pattern, "converters", None)
    if converters:
        return list(converters)
    regex = getattr(pattern.pattern, "regex", None)
    return list(regex.groupindex) if regex is not None else []


def _walk(patterns, prefix: str, namespaces: list[str], kwargs: list[str], out: list[Route]) -> None:
    for p in patterns:
        here = prefix + str(p.pattern)
        names = kwargs + _pattern_kwargs(p)
        if isinstance(p, URLResolver):
            _walk(p.url_patterns, here, namespaces + ([p.namespace] if p.namespace else []), names, out)
        elif isinstance(p, URLPattern):
            if p.name:
                out.append(Route(":".join(namespaces + [p.name]), here, tuple(names)))
            else:
                out.append(Route(here, here, tuple(names), named=False))


def http_routes() -> list[Route]:
    out: list[Route] = []
    _walk(get_resolver().url_patterns, "", [], [], out)
    return out


def socket_routes() -> list[Route]:
    from calma.routing import websocket_urlpatterns

    out: list[Route] = []
    for p in websocket_urlpatterns:
        out.append(Route(str(p.pattern), str(p.pattern), tuple(_pattern_kwargs(p))))
    return out


def socket_path(route: Route, values: dict) -> str:
    path = "/" + route.pattern
    for name in route.kwargs:
        converter = "int" if name.endswith("_id") or name == "pk" else "slug"
        path = path.replace(f"<{converter}:{name}>", str(values[name])).replace(f"<{name}>", str(values[name]))
    return path


@dataclass
class Stage:
    """One workshop in one stage with a member of each role and the objects its URLs name."""

    workshop: object
    users: dict = field(default_factory=dict)  # role -> user (None for anonymous)
    members: dict = field(default_factory=dict)  # role -> membership
    objects: dict = field(default_factory=dict)  # URL kwarg name -> value


def build_stage(stage: str) -> Stage:
    """A workshop in `stage` with data the participant owns (conversation, codes, annotation,
    attribute, practice code) and an invite, reusing the Discuss test world."""
    from coding.models import Annotation, Attribute, Code
    from tests.discussion.conftest import build, goto
    from workshops.models import PracticeCode

    d = build(stage=stage, participants=2)
    if stage == "discuss":
        goto(d, 4)
    workshop = d.workshop
    participant = d.people[0]
    unconsented = make_participant(workshop, consented=False)
    withdrawn = make_participant(workshop)
    workshop_services.membership_withdraw(membership=withdrawn, reason="")
    other = build(stage=stage, participants=1).people[0]  # a participant of another workshop
    s = Stage(workshop=workshop)
    s.members = {F: d.facilitator, P: participant, U: unconsented, W: withdrawn, R: d.researcher, O: other}
    s.users = {role: m.user for role, m in s.members.items()}
    s.users[A] = None
    conversation = participant.conversations.order_by("id").first()
    question = conversation.messages.filter(role="user").order_by("position").first()
    answer = conversation.messages.filter(role="assistant").order_by("position").first()
    code = Code.objects.filter(membership=participant).order_by("id").first()
    annotation = Annotation.objects.filter(membership=participant).order_by("id").first()
    attribute = Attribute.objects.filter(membership=participant).order_by("id").first()
    practice = PracticeCode.objects.create(membership=participant, code="practice code")
    invite = workshop_services.invite_create(workshop=workshop, role=Role.PARTICIPANT, by=d.facilitator.user)
    s.objects = {
        "slug": workshop.slug, "conversation_id": conversation.pk, "question_id": question.pk,
        "message_id": answer.pk, "invite_id": invite.pk, "token": invite.token, "code_id": code.pk,
        "practice_code_id": practice.pk, "annotation_pk": annotation.pk, "attribute_pk": attribute.pk,
        "code_pk": code.pk,
        "code": "ABCD-EFGH-JKLM",  # a return code that matches nobody's
    }
    if stage == "evaluate":  # a final axis with a complete rubric, and answers handed to P to rate
        from discussion.models import Axis
        from evaluation import services as evaluation_services

        axis = Axis.objects.create(workshop=workshop, name="Balance", definition="Several perspectives",
                                   created_by=d.facilitator)
        evaluation_services.evaluation_settings_update(workshop=workshop, answers_per_person=2, raters_per_answer=2,
                                                       include_participant_conversations=True)
        evaluation_services.rubric_save(axis=axis, by=d.facilitator, scale={str(p): f"point {p}" for p in range(1, 6)})
        participant.workshop = workshop
        evaluation_services.assignments_ensure(membership=participant)
        # Two compare-mode answers to one question: a pair handed to P to compare.
        from llm_gateway.models import CompareMode, Conversation, Message

        pair = Conversation.objects.create(workshop=workshop, owner=participant, endpoint_key="test-endpoint",
                                           compare_mode=CompareMode.MODELS, title="compare")
        asked = Message.objects.create(conversation=pair, role="user", content="Which?", position=0)
        for slot in (0, 1):
            Message.objects.create(conversation=pair, role="assistant", content=f"answer {slot}", position=1 + slot,
                                   reply_to=asked, is_candidate=True, slot=slot)
        evaluation_services.pair_assignments_ensure(membership=participant)
        from evaluation.models import Comparison  # a model comparison (its results page)

        comparison = Comparison.objects.create(workshop=workshop, created_by=d.facilitator, title="compared")
        s.objects.update(axis_id=axis.pk, position=1, comparison_id=comparison.pk)
        s.objects.update(_study_objects(s, axis))
    return s


def _study_objects(s: Stage, axis) -> dict:
    """A study holding the workshop, a suggested match between two of its axes, and an API token
    of the researcher (studies and api routes)."""
    from api import services as api_services
    from discussion.models import Axis
    from studies import services as study_services
    from studies.models import AxisMatch

    study = study_services.study_create(title="Study", slug=f"study-{s.workshop.pk}", by=s.users[F],
                                        workshops=[s.workshop])
    other = Axis.objects.create(workshop=s.workshop, name="Accuracy", definition="Facts are right",
                                created_by=s.members[F])
    match = AxisMatch.objects.create(study=study, axis_a=axis, axis_b=other, similarity=0.5)
    token, _raw = api_services.token_create(user=s.users[R], name="matrix")
    return {"study_slug": study.slug, "match_id": match.pk, "token_id": token.pk, "rest": "nothing/here"}


# URL kwargs whose meaning depends on the route: (route name prefix, kwarg) -> key in Stage.objects.
KWARG_BY_ROUTE = {
    ("coding:annotation_", "pk"): "annotation_pk",
    ("coding:attribute_", "pk"): "attribute_pk",
    ("coding:code_", "pk"): "code_pk",
    ("workshops:practice_delete", "code_id"): "practice_code_id",
}
# Admin URLs: any well-formed value (non-staff users never get past the login redirect).
ADMIN_KWARGS = {"app_label": "workshops", "model_name": "workshop", "object_id": "1", "id": "1", "content_type_id": "1",
                "url": "nothing-here/"}


def url_for(route: Route, stage: Stage | None) -> str:
    values = {}
    for name in route.kwargs:
        key = next((k for (prefix, kw), k in KWARG_BY_ROUTE.items() if kw == name and route.name.startswith(prefix)),
                   name)
        if route.namespace == "admin" or not route.named:
            values[name] = ADMIN_KWARGS[name]
        else:
            values[name] = stage.objects[key]
    if not route.named:
        path = "/" + route.pattern
        for name, value in values.items():
            path = path.replace(f"(?P<{name}>.*)$", value).replace("^", "")
        return path
    return reverse(route.name, kwargs=values)
