"""Each role, an outsider and an anonymous visitor against each workshop page."""

import pytest

from tests.factories import UserFactory, facilitator_of, make_member, make_participant, make_workshop
from workshops.models import Role, Stage

pytestmark = pytest.mark.django_db

F, P, R, O = "facilitator", "participant", "researcher", "outsider"

# page name -> expected status per role (GET)
MATRIX = {
    "home": {F: 200, P: 200, R: 200, O: 404},
    "dashboard": {F: 200, P: 403, R: 403, O: 404},
    "settings": {F: 200, P: 403, R: 403, O: 404},
    "invites": {F: 200, P: 403, R: 403, O: 404},
    "familiarize_edit": {F: 200, P: 403, R: 403, O: 404},
    "research": {F: 200, P: 403, R: 200, O: 404},
    "orientation": {F: 200, P: 200, R: 200, O: 404},
    "practice": {F: 200, P: 200, R: 200, O: 404},
    "readiness": {F: 200, P: 200, R: 200, O: 404},
    "withdraw": {F: 403, P: 200, R: 403, O: 404},
}


@pytest.fixture
def people():
    workshop = make_workshop()
    return workshop, {
        F: facilitator_of(workshop).user,
        P: make_participant(workshop).user,
        R: make_member(workshop, role=Role.RESEARCHER).user,
        O: UserFactory(),
    }


@pytest.mark.parametrize("page", sorted(MATRIX))
@pytest.mark.parametrize("who", [F, P, R, O])
def test_role_matrix(client, people, page, who):
    workshop, users = people
    client.force_login(users[who])
    response = client.get(f"/w/{workshop.slug}/" + ("" if page == "home" else _path(page)))
    assert response.status_code == MATRIX[page][who], (page, who)


def _path(page):
    return {
        "dashboard": "dashboard/", "settings": "settings/", "invites": "invites/",
        "familiarize_edit": "familiarize/edit/", "research": "research/", "orientation": "familiarize/",
        "practice": "familiarize/practice/", "readiness": "familiarize/readiness/", "withdraw": "withdraw/",
    }[page]


@pytest.mark.parametrize("page", sorted(MATRIX))
def test_anonymous_is_sent_to_login(client, people, page):
    workshop, _ = people
    response = client.get(f"/w/{workshop.slug}/" + ("" if page == "home" else _path(page)))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_participant_cannot_open_another_workshops_pages(client):
    mine = make_workshop()
    other = make_workshop()
    participant = make_participant(mine)
    client.force_login(participant.user)
    for path in ["", "familiarize/", "dashboard/", "invites/"]:
        assert client.get(f"/w/{other.slug}/{path}").status_code == 404


@pytest.mark.parametrize("who,expected", [(F, 302), (P, 403), (R, 403), (O, 404)])
def test_only_facilitator_moves_the_stage(client, people, who, expected):
    workshop, users = people
    client.force_login(users[who])
    response = client.post(f"/w/{workshop.slug}/stage/",
                           {"stage": Stage.INTERACT, "from_stage": Stage.FAMILIARIZE, "confirm": "1"})
    assert response.status_code == expected
    workshop.refresh_from_db()
    assert workshop.stage == (Stage.INTERACT if who == F else Stage.FAMILIARIZE)


def test_participant_pages_check_the_stage(client):
    workshop = make_workshop(stage=Stage.INTERACT)
    participant = make_participant(workshop)
    client.force_login(participant.user)
    response = client.get(f"/w/{workshop.slug}/familiarize/practice/")
    assert response.status_code == 403
    assert "Not open right now" in response.content.decode()
    response = client.post(f"/w/{workshop.slug}/familiarize/practice/", {"code": "late code"})
    assert response.status_code == 403
    assert not participant.practice_codes.exists()
    # The orientation stays readable as reference material.
    assert client.get(f"/w/{workshop.slug}/familiarize/").status_code == 200


def test_participant_without_consent_is_sent_to_consent(client):
    workshop = make_workshop()
    participant = make_participant(workshop, consented=False)
    client.force_login(participant.user)
    response = client.get(f"/w/{workshop.slug}/familiarize/")
    assert response.status_code == 302
    assert response["Location"] == f"/w/{workshop.slug}/consent/"


def test_admin_is_for_staff_only(client):
    workshop = make_workshop()
    participant = make_participant(workshop)
    client.force_login(participant.user)
    assert client.get("/admin/workshops/workshop/").status_code == 302
    facilitator = facilitator_of(workshop).user
    facilitator.is_staff = True
    facilitator.is_superuser = True
    facilitator.save()
    client.force_login(facilitator)
    for model in ["workshop", "membership", "invite", "stagechange", "readinessquestion", "practicecode"]:
        assert client.get(f"/admin/workshops/{model}/").status_code == 200, model


# --- The role x route matrix over every route ---------------------------------------------------
#
# Every HTTP route of the URLconf and every websocket route (tests/routes.py enumerates them) is
# requested by each role, with GET and with an empty POST, and the answer's class must be the
# one written here. A route without a line fails the test, with the line to add (check it first).
#
# Roles, in this order: F facilitator, P participant (consented), U participant who has not
# consented, W withdrawn participant, R researcher, O outsider (logged in, member of another
# workshop), A anonymous. Each route is tried in the stage of its app (workshops: Familiarize,
# llm_gateway: Interact, coding: Reflect, discussion: Discuss, segment 4 open, evaluation:
# Evaluate, with a complete rubric and answers handed to P); URL arguments
# name the participant P's own objects. Codes: 2 = 2xx, 3 = other 3xx, L = 3xx to a login page,
# C = 3xx to the consent page, 0 = 400, 4 = 403, N = 404, M = 405, 9 = 409, G = 410.
#                          GET: F P U W R O A  |  POST: F P U W R O A
ROUTES = {
    "healthz": "2 2 2 2 2 2 2 | M M M M M M M",
    "set_language": "3 3 3 3 3 3 3 | 3 3 3 3 3 3 3",
    "home": "2 2 2 2 2 2 L | M M M M M M M",
    "login": "3 3 3 3 3 3 2 | 3 3 3 3 3 3 2",
    "logout": "M M M M M M M | 3 3 3 3 3 3 3",
    "workshop_create": "2 4 4 4 4 4 L | 2 4 4 4 4 4 L",
    "join": "9 9 9 9 9 2 2 | 9 9 9 9 9 2 2",
    "workshops:home": "2 2 C 4 2 N L | M M M M M M M",
    "workshops:settings": "2 4 4 4 4 N L | 2 4 4 4 4 N L",
    "workshops:dashboard": "2 4 4 4 4 N L | M M M M M M M",
    "workshops:stage": "3 4 4 4 4 N L | 3 4 4 4 4 N L",
    "workshops:invites": "2 4 4 4 4 N L | 2 4 4 4 4 N L",
    "workshops:invite_revoke": "M M M M M M M | 3 4 4 4 4 N L",
    "workshops:consent": "3 3 2 4 3 N L | 3 3 2 4 3 N L",
    "workshops:withdraw": "4 2 2 4 4 N L | 4 2 2 4 4 N L",
    "workshops:orientation": "2 2 C 4 2 N L | 2 3 C 4 2 N L",
    "workshops:practice": "2 2 C 4 2 N L | 2 2 C 4 2 N L",
    "workshops:practice_delete": "M M M M M M M | 4 3 C 4 4 N L",
    "workshops:readiness": "2 2 C 4 2 N L | 2 2 C 4 2 N L",
    "workshops:familiarize_edit": "2 4 4 4 4 N L | 2 4 4 4 4 N L",
    "workshops:texts": "2 4 4 4 4 N L | 0 4 4 4 4 N L",
    "workshops:research": "2 4 4 4 2 N L | M M M M M M M",
    "llm_gateway:index": "2 2 C 4 2 N L | 2 2 C 4 2 N L",
    "llm_gateway:conversation": "2 2 C 4 2 N L | M M M M M M M",
    "llm_gateway:send": "M M M M M M M | N 3 C 4 N N L",
    "llm_gateway:baseline": "M M M M M M M | 3 4 4 4 4 N L",
    "llm_gateway:choose": "M M M M M M M | N 3 C 4 N N L",
    "llm_gateway:message": "2 2 C 4 2 N L | M M M M M M M",
    "llm_gateway:regenerate": "M M M M M M M | N 3 C 4 N N L",
    "llm_gateway:models": "2 4 4 4 4 N L | 2 4 4 4 4 N L",
    "llm_gateway:conversations": "2 4 4 4 2 N L | M M M M M M M",
    "llm_gateway:usage": "2 4 4 4 2 N L | M M M M M M M",
    "llm_gateway:export_messages": "2 4 4 4 2 N L | M M M M M M M",
    "llm_gateway:export_preferences": "2 4 4 4 2 N L | M M M M M M M",
    "coding:index": "2 2 C 4 2 N L | M M M M M M M",
    "coding:transcript": "2 2 C 4 2 N L | M M M M M M M",
    "coding:annotation_create": "M M M M M M M | 3 3 C 4 3 N L",
    "coding:annotation_add_code": "M M M M M M M | 3 3 C 4 3 N L",
    "coding:annotation_remove_code": "M M M M M M M | 3 2 C 4 3 N L",
    "coding:annotation_memo": "M M M M M M M | 3 2 C 4 3 N L",
    "coding:annotation_delete": "M M M M M M M | 3 2 C 4 3 N L",
    "coding:focus": "2 2 C 4 2 N L | M M M M M M M",
    "coding:attribute_create": "M M M M M M M | 3 3 C 4 3 N L",
    "coding:attribute_update": "M M M M M M M | 3 3 C 4 3 N L",
    "coding:attribute_delete": "M M M M M M M | 3 3 C 4 3 N L",
    "coding:attribute_add_code": "M M M M M M M | 3 3 C 4 3 N L",
    "coding:attribute_remove_code": "M M M M M M M | 3 3 C 4 3 N L",
    "coding:attribute_excerpts": "2 2 C 4 2 N L | M M M M M M M",
    "coding:code_update": "M M M M M M M | 3 3 C 4 3 N L",
    "coding:code_delete": "M M M M M M M | 3 3 C 4 3 N L",
    "coding:compare": "2 4 4 4 2 N L | M M M M M M M",
    "coding:summary": "2 2 C 4 2 N L | M M M M M M M",
    "coding:summary_generate": "M M M M M M M | 3 4 4 4 4 N L",
    "coding:export_annotations": "2 4 4 4 2 N L | M M M M M M M",
    "coding:export_codebook": "2 4 4 4 2 N L | M M M M M M M",
    "coding:export_focused": "2 4 4 4 2 N L | M M M M M M M",
    "coding:export_qdc": "2 4 4 4 2 N L | M M M M M M M",
    "discussion:session": "2 2 C 4 2 N L | M M M M M M M",
    "discussion:control": "M M M M M M M | 3 4 4 4 4 N L",
    "discussion:picks": "M M M M M M M | 3 3 C 4 3 N L",
    "discussion:ratings": "M M M M M M M | 3 3 C 4 3 N L",
    "discussion:state": "2 2 C 4 2 N L | M M M M M M M",
    "discussion:map": "2 2 C 4 2 N L | M M M M M M M",
    "discussion:excerpts": "2 2 C 4 2 N L | M M M M M M M",
    "discussion:results": "2 4 4 4 2 N L | M M M M M M M",
    "discussion:report": "2 4 4 4 2 N L | M M M M M M M",
    "discussion:export_csv": "2 4 4 4 2 N L | M M M M M M M",
    "return_login": "2 2 2 2 2 2 2 | 2 2 2 2 2 2 2",
    "return_login_code": "2 2 2 2 2 2 2 | 2 2 2 2 2 2 2",
    "account": "2 2 2 2 2 2 L | 2 2 2 2 2 2 L",
    "return_code_show": "2 2 2 2 2 2 L | M M M M M M M",
    "coding:export_qdpx": "2 4 4 4 2 N L | M M M M M M M",
    "evaluation:overview": "2 4 4 4 2 N L | 2 4 4 4 4 N L",
    "evaluation:rubric_edit": "2 4 4 4 4 N L | 2 4 4 4 4 N L",
    "evaluation:rubric_draft": "2 4 4 4 4 N L | 3 4 4 4 4 N L",
    "evaluation:rate_start": "4 3 C 4 4 N L | M M M M M M M",
    "evaluation:rate": "4 2 C 4 4 N L | 4 0 C 4 4 N L",
    "evaluation:rate_pair": "4 2 C 4 4 N L | 4 0 C 4 4 N L",
    "evaluation:results": "2 4 4 4 2 N L | M M M M M M M",
    "evaluation:judges": "2 4 4 4 2 N L | 0 4 4 4 4 N L",
    "evaluation:export_ratings": "2 4 4 4 2 N L | M M M M M M M",
    "evaluation:export_pair_ratings": "2 4 4 4 2 N L | M M M M M M M",
    "evaluation:export_rubrics": "2 4 4 4 2 N L | M M M M M M M",
    "evaluation:compare_list": "2 4 4 4 2 N L | 0 4 4 4 4 N L",
    "evaluation:compare_detail": "2 4 4 4 2 N L | 3 4 4 4 4 N L",
    "evaluation:export_weval": "2 4 4 4 2 N L | M M M M M M M",
    "evaluation:export_inspect_task": "2 4 4 4 2 N L | M M M M M M M",
    "evaluation:export_inspect_dataset": "2 4 4 4 2 N L | M M M M M M M",
    "evaluation:export_promptfoo": "2 4 4 4 2 N L | M M M M M M M",
    "evaluation:export_dpo": "2 4 4 4 2 N L | M M M M M M M",
    "evaluation:export_kto": "2 4 4 4 2 N L | M M M M M M M",
    "evaluation:export_reference_csv": "2 4 4 4 2 N L | M M M M M M M",
    "evaluation:export_reference_jsonl": "2 4 4 4 2 N L | M M M M M M M",
    "evaluation:export_data_statement": "2 4 4 4 2 N L | M M M M M M M",
    "evaluation:export_bundle": "2 4 4 4 2 N L | M M M M M M M",
    "discussion:export_json": "2 4 4 4 2 N L | M M M M M M M",
    # studies/ (tried in the Evaluate world, whose workshop is in a study with a suggested match)
    "studies:index": "2 2 2 2 2 2 L | M M M M M M M",
    "studies:create": "2 4 4 4 4 4 L | 0 4 4 4 4 4 L",
    "studies:detail": "2 N N N 2 N L | 0 N N N 4 N L",
    "studies:compare": "2 N N N 2 N L | M M M M M M M",
    "studies:suggest": "M M M M M M M | 3 N N N 3 N L",
    "studies:decide": "M M M M M M M | 3 N N N 3 N L",
    "studies:export_csv": "2 N N N 2 N L | M M M M M M M",
    "studies:export_json": "2 N N N 2 N L | M M M M M M M",
    "studies:labels": "2 N N N 2 N L | M M M M M M M",
    "studies:from_template": "2 4 4 4 4 N L | 0 4 4 4 4 N L",
    # The JSON API: a logged-in session or a token; 401 (JSON) for nobody, 404 for a workshop the
    # caller may not read, lists hold only what the caller may read. tests/api/ tries every
    # endpoint with tokens too (invalid, revoked, another workshop's researcher).
    "api_v1:openapi-json": "2 2 2 2 2 2 2 | 2 2 2 2 2 2 2",
    "api_v1:api-root": "N N N N N N N | N N N N N N N",
    "api_v1:list_workshops": "2 2 2 2 2 2 401 | M M M M M M M",
    "api_v1:get_workshop": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:list_studies": "2 2 2 2 2 2 401 | M M M M M M M",
    "api_v1:get_study": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:list_axes": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:list_group_ranking": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:list_members": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:stream_members": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:list_conversations": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:stream_conversations": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:list_messages": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:stream_messages": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:list_annotations": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:stream_annotations": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:list_codes": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:stream_codes": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:list_attributes": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:stream_attributes": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:list_likert_ratings": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:stream_likert_ratings": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:list_individual_ranks": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:stream_individual_ranks": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:list_evaluation_ratings": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:stream_evaluation_ratings": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:list_judge_scores": "2 N N N 2 N 401 | M M M M M M M",
    "api_v1:stream_judge_scores": "2 N N N 2 N 401 | M M M M M M M",
    "api:docs": "2 2 2 2 2 2 2 | M M M M M M M",
    "api:tokens": "2 4 4 4 2 4 L | 0 4 4 4 0 4 L",
    "api:token_revoke": "M M M M M M M | N N N N 3 N L",
    "api:not_found": "N N N N N N N | N N N N N N N",
}
# Django's admin is for staff only and no role here is staff: every admin URL sends every role
# to the admin login page, except these.
# (Admin URLs are tried as the facilitator and anonymously: to the admin, every other role is
# the same non-staff user.)
ADMIN_DEFAULT = "L L | L L"
ADMIN = {
    "admin:login": "2 2 | 2 2",  # the login form (it tells a logged-in non-staff user they lack access)
    "admin:logout": "3 3 | 3 3",  # back to the admin index, hence to its login
}


def _classify(response, stage) -> str:
    code = response.status_code
    if 200 <= code < 300:
        return "2"
    if 300 <= code < 400:
        location = response["Location"]
        if location.startswith(("/login/?next=", "/admin/login/")):
            return "L"
        if stage is not None and location == f"/w/{stage.workshop.slug}/consent/":
            return "C"
        return "3"
    return {400: "0", 403: "4", 404: "N", 405: "M", 409: "9", 410: "G"}.get(code, str(code))


def _request(client, method, url, stage) -> str:
    from django.db import transaction

    try:
        with transaction.atomic():  # every request's writes are undone: each sees the same world
            response = client.generic(method, url)
            if getattr(response, "streaming", False):  # run the export to its end
                if response.is_async:
                    from asgiref.sync import async_to_sync

                    async def drain():
                        return [chunk async for chunk in response.streaming_content]

                    async_to_sync(drain)()
                else:
                    list(response.streaming_content)
            transaction.set_rollback(True)
    except Exception as error:  # noqa: BLE001 - a 500: reported in the table, not raised
        return f"500 {error.__class__.__name__}: {str(error)[:80]}"
    return _classify(response, stage)


@pytest.fixture
def world(db, settings):
    from tests.routes import STAGE_OF_NAMESPACE, build_stage

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return {stage: build_stage(stage) for stage in sorted(set(STAGE_OF_NAMESPACE.values()))}


def test_every_route_answers_each_role_as_expected(world):
    from django.test import Client

    from tests.routes import A, F, ROLES, STAGE_OF_NAMESPACE, http_routes, url_for

    clients = {}
    order = [A, "outsider", "withdrawn", "unconsented", "researcher", "facilitator", "participant"]  # owner last
    problems, missing = [], []
    for route in http_routes():
        stage = world[STAGE_OF_NAMESPACE.get(route.namespace, "familiarize")]
        is_admin = route.namespace == "admin" or route.pattern.startswith("admin/")
        url = url_for(route, stage)
        roles = (F, A) if is_admin else ROLES
        got = {}
        for method in ("GET", "POST"):
            for role in [r for r in order if r in roles]:
                user = stage.users[role]
                client = clients.get((role, id(stage)))
                if client is None or "logout" in route.name:
                    client = clients[(role, id(stage))] = Client()
                    if user is not None:
                        client.force_login(user)
                got[(method, role)] = _request(client, method, url, stage)
        if "logout" in route.name:
            clients.clear()  # logged out: log in again for the next route
        line = " ".join(got[("GET", r)] for r in roles) + " | " + " ".join(got[("POST", r)] for r in roles)
        expected = (ADMIN.get(route.name, ADMIN_DEFAULT) if is_admin else ROUTES.get(route.name))
        if "500" in line:
            problems.append(f"{route.name} ({url}): a 500: {line}")
        elif expected is None:
            missing.append(f'    "{route.name}": "{line}",')
        elif line != expected:
            problems.append(f"{route.name} ({url}):\n   expected {expected}\n   got      {line}")
    assert not problems and not missing, (
        "\n".join(problems) + ("\nRoutes with no expectation (check, then add to ROUTES):\n" + "\n".join(missing)
                               if missing else ""))


# Websocket routes (calma/routing.py): the stage the route is tried in, and per role (same order)
# whether the socket is accepted (Y) or closed at connect (-).
SOCKETS = {
    "ws/w/<slug:slug>/events/": ("familiarize", "Y Y - - Y - -"),
    "ws/w/<slug:slug>/chat/<int:conversation_id>/": ("interact", "Y Y - - Y - -"),
    "ws/w/<slug:slug>/board/": ("discuss", "Y Y - - Y - -"),
}


@pytest.mark.django_db(transaction=True)
async def test_every_socket_route_admits_each_role_as_expected(settings):
    from channels.db import database_sync_to_async
    from channels.layers import channel_layers
    from channels.routing import URLRouter

    from calma.routing import websocket_urlpatterns
    from channels.testing import WebsocketCommunicator
    from tests.routes import ROLES, build_stage, socket_path, socket_routes

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    channel_layers.backends.clear()  # channels_redis binds to the event loop of the test
    app = URLRouter(websocket_urlpatterns)
    stages = {}
    problems = []
    for route in socket_routes():
        if route.pattern not in SOCKETS:
            problems.append(f"{route.pattern}: no expectation (add it to SOCKETS)")
            continue
        stage_name, expected = SOCKETS[route.pattern]
        if stage_name not in stages:
            stages[stage_name] = await database_sync_to_async(build_stage)(stage_name)
        stage = stages[stage_name]
        got = []
        for role in ROLES:
            comm = WebsocketCommunicator(app, socket_path(route, stage.objects))
            if stage.users[role] is not None:
                comm.scope["user"] = stage.users[role]
            connected, _code = await comm.connect(timeout=10)
            got.append("Y" if connected else "-")
            await comm.disconnect()
        if " ".join(got) != expected:
            problems.append(f"{route.pattern}: expected {expected}, got {' '.join(got)}")
    channel_layers.backends.clear()
    assert not problems, "\n".join(problems)
