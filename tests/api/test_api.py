"""The JSON API: the permission matrix over every endpoint of the schema, withdrawn people, bad
input, pages and streams, tokens."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from api.api import api
from api.models import ApiToken

pytestmark = pytest.mark.django_db


def _operations():
    schema = api.get_openapi_schema(path_prefix="/api/v1")
    return [(path, op["operationId"]) for path, methods in schema["paths"].items() for op in methods.values()]


def _url(path, world):
    return path.replace("{slug}", world.a.workshop.slug).replace("{study_slug}", world.study.slug)


def _get(client, url, token=None, **extra):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    response = client.get(url, **headers, **extra)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


# Per caller: the status every endpoint answers with (the workshop and study of the URL are a's).
# "list" endpoints without a workshop answer 200 for everyone authenticated, with only what they may read.
CALLERS = {"anonymous": 401, "invalid": 401, "revoked": 401, "other_researcher": 404, "participant": 404,
           "participant_session": 404, "facilitator": 200, "researcher": 200, "researcher_session": 200}


@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_permission_matrix_for_every_endpoint(world, caller):
    client = Client()
    token = None
    if caller.endswith("_session"):
        client.force_login({"participant_session": world.a.people[0], "researcher_session": world.a.researcher}[caller].user)
    elif caller != "anonymous":
        token = world.tokens[caller]
    operations = _operations()
    assert len(operations) >= 26
    problems = []
    for path, operation in operations:
        response, body = _get(client, _url(path, world), token)
        expected = CALLERS[caller]
        if path in ("/api/v1/workshops", "/api/v1/studies") and expected == 404:
            expected = 200  # lists: only what the caller may read (nothing, for a participant)
        if path == "/api/v1/studies/{study_slug}" and caller == "other_researcher":
            expected = 200  # they read b, which is in the study (test below: only b is listed)
        if response.status_code != expected:
            problems.append(f"{operation}: {response.status_code} (expected {expected})")
            continue
        if not response.streaming:
            data = json.loads(body)
            if expected >= 400:
                assert set(data) == {"detail"}, body
                assert world.a.workshop.title.encode() not in body
            elif path == "/api/v1/workshops":
                slugs = [w["slug"] for w in data]
                assert slugs == ([world.a.workshop.slug] if caller in ("facilitator",) else
                                 [] if caller.startswith("participant") else
                                 [world.b.workshop.slug] if caller == "other_researcher" else [world.a.workshop.slug, world.b.workshop.slug]), (caller, slugs)
        if expected == 200:
            assert b"WITHDRAWN-ANSWER" not in body and b"withdrawn-code" not in body
            assert world.gone.pseudonym.encode() not in body or path.endswith(("/workshops", "/studies"))
    assert not problems, "\n".join(problems)


def test_other_researchers_study_lists_only_their_workshop(world):
    response, body = _get(Client(), f"/api/v1/studies/{world.study.slug}", world.tokens["other_researcher"])
    assert response.status_code == 200
    assert json.loads(body)["workshops"] == [world.b.workshop.slug]


def test_pages_walk_every_annotation_and_the_stream_matches(world):
    token, slug = world.tokens["researcher"], world.a.workshop.slug
    seen, cursor, pages = [], None, 0
    while True:
        url = f"/api/v1/workshops/{slug}/annotations?limit=1" + (f"&cursor={cursor}" if cursor else "")
        response, body = _get(Client(), url, token)
        assert response.status_code == 200
        data = json.loads(body)
        seen += [a["id"] for a in data["items"]]
        pages += 1
        cursor = data["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == world.n_annotations == pages and seen == sorted(seen)
    response, body = _get(Client(), f"/api/v1/workshops/{slug}/annotations/stream", token)
    assert response["Content-Type"] == "application/x-ndjson"
    rows = [json.loads(line) for line in body.decode().splitlines()]
    assert [r["id"] for r in rows] == seen
    assert all(r["participant"].startswith("P") and r["code_ids"] for r in rows)
    assert "user" not in rows[0] and "username" not in json.dumps(rows)


def test_time_filters(world):
    token, slug = world.tokens["researcher"], world.a.workshop.slug
    response, body = _get(Client(), f"/api/v1/workshops/{slug}/codes?since=2999-01-01T00:00:00Z", token)
    assert json.loads(body)["items"] == []
    response, body = _get(Client(), f"/api/v1/workshops/{slug}/codes?until=2999-01-01T00:00:00", token)
    assert len(json.loads(body)["items"]) == world.n_codes


@pytest.mark.parametrize("query,status", [
    ("limit=100000", 422), ("limit=0", 422), ("limit=abc", 422), ("since=yesterday", 422),
    ("cursor=!!!", 422), ("cursor=djI6MTA", 422), ("cursor=" + "9" * 19, 422), ("cursor=-1", 422),
])
def test_malformed_filters_are_clear_4xx_json(world, query, status):
    response, body = _get(Client(), f"/api/v1/workshops/{world.a.workshop.slug}/annotations?{query}",
                          world.tokens["researcher"])
    assert response.status_code == status, body
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in json.loads(body)
    assert b"Traceback" not in body and b"SELECT" not in body


def test_unknown_addresses_and_methods(world):
    token = world.tokens["researcher"]
    response, body = _get(Client(), "/api/v1/nothing/here", token)
    assert response.status_code == 404 and json.loads(body) == {"detail": "Not found."}
    response = Client().post(f"/api/v1/workshops/{world.a.workshop.slug}/annotations", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 405
    response, body = _get(Client(), "/api/v1/workshops", None, HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Bearer"


def test_rate_limit_answers_429_with_retry_after(world, settings):
    settings.API_RATE_LIMIT = "3/m"
    from api.services import token_create

    _token, raw = token_create(user=world.a.researcher.user, name="limited")
    codes = [_get(Client(), "/api/v1/workshops", raw)[0].status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
    response, body = _get(Client(), "/api/v1/workshops", raw)
    assert int(response["Retry-After"]) >= 1 and "Too many requests" in json.loads(body)["detail"]


def test_tokens_page_shows_a_token_once_and_stores_only_its_hash(world):
    client = Client()
    client.force_login(world.a.researcher.user)
    response = client.post("/account/tokens/", {"name": "notebook"})
    assert response.status_code == 200
    raw = response.context["created"]["raw"]
    assert raw in response.content.decode()
    token = ApiToken.objects.get(name="notebook")
    assert raw not in {token.key_hash, token.prefix} and len(token.key_hash) == 64
    assert raw not in client.get("/account/tokens/").content.decode()  # shown once
    assert _get(Client(), "/api/v1/workshops", raw)[0].status_code == 200
    assert client.post(f"/account/tokens/{token.pk}/revoke/").status_code == 302
    assert _get(Client(), "/api/v1/workshops", raw)[0].status_code == 401
    # Someone else cannot revoke it; a participant gets no tokens page.
    other = Client()
    other.force_login(world.b.researcher.user)
    assert other.post(f"/account/tokens/{world.a.researcher.user.api_tokens.first().pk}/revoke/").status_code == 404
    participant = Client()
    participant.force_login(world.a.people[0].user)
    assert participant.get("/account/tokens/").status_code == 403


def test_schema_and_docs_page(world):
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.") and "/api/v1/workshops/{slug}/annotations" in schema["paths"]
    page = Client().get("/api/docs/").content.decode()
    assert "/api/v1/openapi.json" in page and "/api/v1/workshops/{slug}/annotations/stream" in page
