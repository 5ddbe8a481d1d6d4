"""Hostile input everywhere (issue 10 item 5): every bad input is a clean 4xx or a form error,
never a 500.

- every Django form of the project (found by walking the Form subclasses of the project's apps)
  gets hypothesis-generated text in every field: NUL, lone surrogates, huge lengths, right-to-
  left text, digits of other scripts; it validates or refuses, and what it accepts can be stored;
- every route of the URLconf (tests/routes.py) is sent a valid request, and then, for each field
  the view read (recorded), the same request with that field hostile (NUL, 70,000 characters,
  "²", a 23-digit number) and the others valid, so the hostile value reaches the services and
  the database;
- the login with a username over 255 characters (django-axes records the attempt) is a form error.

Socket frames are fuzzed in tests/discussion/test_fuzz_frames.py.
"""

from __future__ import annotations

import importlib
import inspect
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest
from django import forms as django_forms
from django.db import transaction
from django.http import QueryDict
from django.test import Client
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from tests.routes import F, P, STAGE_OF_NAMESPACE, build_stage, http_routes, url_for

PROJECT_APPS = ("workshops", "llm_gateway", "coding", "discussion", "evaluation")

# --- hostile text ------------------------------------------------------------------------------

OTHER_DIGITS = "١٢٣٠۴۵६७৮৯๓๔²³¹⁰₂①߀᠑"  # Arabic-Indic, Persian, Devanagari, Bengali, Thai, super/subscripts, circled, NKo, Mongolian
SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
HOSTILE_ALPHABET = st.one_of(
    st.characters(codec=None),  # any code point (no surrogates from this one)
    SURROGATES,
    st.sampled_from(["\x00", "\u202e", "\u200f", "\ufeff", "\u0085", "\r", "\n", "\t", "<", "&", "'", '"', "%"]),
    st.sampled_from(OTHER_DIGITS),
    st.sampled_from("0123456789-+.e"),
)
HOSTILE_TEXT = st.one_of(
    st.text(HOSTILE_ALPHABET, max_size=40),
    st.text(st.sampled_from(OTHER_DIGITS + "0123456789"), min_size=1, max_size=30),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "\x00", "ب", "9", "\U0001F600"]), st.integers(250, 70000)),
    st.sampled_from(["שלום עולם \u202e", "مرحبا", "1e308", "-1", "NaN", "99999999999999999999999", "0x10", "١٢"]),
)

def _project_forms():
    classes = []
    seen = set()
    for app in PROJECT_APPS:
        try:
            module = importlib.import_module(f"{app}.forms")
        except ModuleNotFoundError:
            continue
        for _name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, django_forms.BaseForm) and cls.__module__.split(".")[0] in PROJECT_APPS and cls not in seen:
                seen.add(cls)
                classes.append(cls)
    return sorted(classes, key=lambda c: f"{c.__module__}.{c.__name__}")


NEEDS_WORKSHOP = {"PicksForm", "RatingsForm", "WorkshopForm", "FamiliarizeForm", "AccountLoginForm"}


def _form_kwargs(cls, stage):
    """Constructor arguments of forms that need some (a new such form must be added here)."""
    name = cls.__name__
    if name == "PicksForm":
        return {"membership": stage.members[P]}
    if name == "RatingsForm" and cls.__module__ == "evaluation.forms":
        from discussion.selectors import active_axes
        from evaluation.models import RubricVersion

        return {"axes": [{"axis": axis, "version": RubricVersion(name=axis.name, definition=axis.definition)}
                         for axis in active_axes(stage.workshop)]}
    if name == "RatingsForm":
        from discussion.selectors import active_axes

        return {"axes": list(active_axes(stage.workshop))}
    if name == "AccountLoginForm":
        return {"user": stage.members[P].user}
    if name in ("LoginForm",):
        return {"request": None}
    if name in ("WorkshopForm", "FamiliarizeForm"):
        return {"instance": stage.workshop}
    return {}


def _field_names(form) -> list[str]:
    return [form.add_prefix(name) for name in form.fields]


def _storable(value) -> bool:
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return True


@pytest.fixture
def discuss_stage(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    stage = build_stage("discuss")
    from discussion import services

    services.axis_create(membership=stage.members[F], name="Bias", definition="One-sided accounts")
    return stage


def test_every_project_form_is_found():
    names = {c.__name__ for c in _project_forms()}
    # A sample, so the discovery itself is tested: the fuzz below runs over all of them.
    assert {"LoginForm", "AnnotationCreateForm", "PicksForm", "RatingsForm", "ModelsForm", "InviteForm"} <= names


@pytest.mark.parametrize("form_class", _project_forms(), ids=lambda c: f"{c.__module__.split('.')[0]}.{c.__name__}")
def test_every_form_refuses_or_cleans_hostile_text(form_class, request, db):
    discuss_stage = request.getfixturevalue("discuss_stage") if form_class.__name__ in NEEDS_WORKSHOP else None
    probe = form_class(**_form_kwargs(form_class, discuss_stage))
    names = _field_names(probe)

    @hsettings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(values=st.fixed_dictionaries({name: HOSTILE_TEXT for name in names}))
    def check(values):
        # As a browser or an attacker would send it: urlencoded UTF-8 (lone surrogates as the
        # bytes a CESU-8 client sends), decoded by Django's QueryDict like every request body.
        body = urlencode(values, encoding="utf-8", errors="surrogatepass")
        form = form_class(data=QueryDict(body), **_form_kwargs(form_class, discuss_stage))
        with transaction.atomic():  # ModelForms check uniqueness in the database
            valid = form.is_valid()
            transaction.set_rollback(True)
        if valid:
            bad = {k: v for k, v in form.cleaned_data.items() if not _storable(v)}
            assert not bad, f"{form_class.__name__} accepted text the database refuses: {bad!r}"[:300]

    check()


# --- every route, hostile values in every field ------------------------------------------------


def _baseline(stage) -> dict:
    """A valid value for every field name the project's forms and views read."""
    answer_id = stage.objects["message_id"]
    base = {
        "message": str(answer_id), "start": "0", "end": "5", "memo": "a memo", "code": "bias", "name": "Fairness",
        "definition": "Treats all sides alike", "text": "a text", "choice": "0", "note": "a note", "model": "1",
        "compare": "0", "is_baseline": "1", "stage": "interact", "action": "segment", "value": "4", "q": "British",
        "conversation": str(stage.objects["conversation_id"]), "partial": "", "display_name": "Asha",
        "reason": "a reason", "confirm": "on", "agree": "on", "excerpt": "", "role": "participant", "label": "a label",
        "max_uses": "5", "title": "A workshop", "slug": stage.workshop.slug, "language": "en",
        "deployment_context": "A context", "audience": "Students", "system_prompt": "Be helpful",
        "token_budget": "1000", "max_answer_tokens": "256", "compare_mode": "off", "compare_count": "2",
        "compare_variants": "", "endpoints": "test-endpoint", "username": "someone", "password": "wrong-password-1",
        "readiness_pass_mark": "60", "force": "1", "next": "", "name_1": "Bias", "definition_1": "One-sided",
        "attribute_1": "",
    }
    return base


def _numeric(value: str) -> bool:
    return value.isascii() and value.isdigit()


def _send(client, method, url, data) -> int | str:
    """One request with `data` urlencoded as raw UTF-8 (lone surrogates as the bytes a
    hostile client sends), its writes undone; a 500 is returned as text."""
    body = urlencode(data, encoding="utf-8", errors="surrogatepass")
    try:
        with transaction.atomic():
            if method == "GET":
                response = client.get(f"{url}?{body}")
            else:
                response = client.post(url, data=body, content_type="application/x-www-form-urlencoded")
            if getattr(response, "streaming", False) and not response.is_async:
                list(response.streaming_content)
            transaction.set_rollback(True)
    except Exception as error:  # noqa: BLE001 - reported as a 500
        return f"500 {error.__class__.__name__}: {str(error)[:120]}"
    return response.status_code


@pytest.fixture
def stages(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return {name: build_stage(name) for name in sorted(set(STAGE_OF_NAMESPACE.values()))}


@contextmanager
def _keys_read(into: set):
    """Record the names a view reads from request.GET/POST (forms read them the same way)."""
    from django.utils.datastructures import MultiValueDict

    originals = {name: getattr(MultiValueDict, name) for name in ("__getitem__", "get", "getlist", "__contains__")}

    def recording(name):
        original = originals[name]

        def method(self, key, *args, **kwargs):
            into.add(key)
            return original(self, key, *args, **kwargs)

        return method

    for name in originals:
        setattr(MultiValueDict, name, recording(name))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(MultiValueDict, name, original)


def test_every_route_answers_hostile_fields_with_a_4xx_not_a_500(stages):
    """Per route, as the first of participant/facilitator it lets in, with the method it takes
    (GET: the query string): the fields the view reads (recorded from a valid request) get,
    one at a time, each hostile value of the corpus while the others stay valid, so the
    hostile one reaches the services and the database."""
    failures, tried = [], 0
    routes = [r for r in http_routes() if r.named and r.namespace in STAGE_OF_NAMESPACE]
    clients = {}
    for route in routes:
        stage = stages[STAGE_OF_NAMESPACE[route.namespace]]
        url = url_for(route, stage)
        base = _baseline(stage)
        for role in (P, F):
            client = clients.get((role, id(stage)))
            if client is None:
                client = clients[(role, id(stage))] = Client()
                client.force_login(stage.users[role])
            method = "POST" if _send(client, "POST", url, base) != 405 else "GET"
            read: set = set()
            with _keys_read(read):
                status = _send(client, method, url, base)
            if status in (403, 404):
                continue  # not this role's route: try the next one
            for key in sorted(k for k in read if isinstance(k, str) and k in base):
                valid = base.get(key, "")
                for hostile in (["²", "9" * 23] if _numeric(valid) else ["a\x00b", "x" * 70000]):
                    status = _send(client, method, url, {**base, key: hostile})
                    tried += 1
                    if isinstance(status, str) or status >= 500:
                        failures.append(f"{method} {route.name} as {role}: {status} with {key}={hostile[:20]!r}"[:300])
            break
    assert tried > 200  # the sweep reached the routes
    assert not failures, "\n".join(failures[:40])


def test_login_with_a_huge_username_is_a_form_error_not_a_500(client, settings, db):
    settings.AXES_ENABLED = True  # the 500 came from axes storing the attempt (username max 255)
    for username in ("u" * 256, "u" * 5000, "\x00admin", "١٢", "\u202eadmin"):
        response = client.post("/login/", {"username": username, "password": "whatever-123"})
        assert response.status_code in (200, 400, 403), (username[:20], response.status_code)


# --- the inputs issue 10 named, each a clean 4xx ---------------------------------------------------


@pytest.fixture
def reflect(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return build_stage("reflect")


def test_a_nul_byte_in_a_code_is_a_400(reflect, client):
    client.force_login(reflect.users[P])
    slug, answer = reflect.workshop.slug, reflect.objects["message_id"]
    response = client.post(f"/w/{slug}/reflect/annotations/", {"message": answer, "start": 0, "end": 5,
                                                               "code": "colonial\x00bias"}, headers={"X-Coding": "1"})
    assert response.status_code == 400 and "NUL" in response.content.decode()
    response = client.post(f"/w/{slug}/reflect/annotations/{reflect.objects['annotation_pk']}/codes/",
                           {"code": "a\x00b"}, headers={"X-Coding": "1"})
    assert response.status_code == 400


def test_digits_of_other_scripts_as_ids_are_a_404_or_400(reflect, client):
    client.force_login(reflect.users[P])
    slug = reflect.workshop.slug
    # In a URL: the route converters take ASCII digits only.
    assert client.get(f"/w/{slug}/reflect/c/١٢/").status_code == 404
    assert client.post(f"/w/{slug}/reflect/codes/١٢/delete/").status_code == 404
    # In a form field: "²" passes str.isdigit() but not int(); "١٢" is int 12, someone else's or no code.
    for value in ("²", "١٢", "߀"):
        response = client.post(f"/w/{slug}/reflect/attributes/new/", {"name": "Fairness", "code": value},
                               headers={"X-Coding": "1"})
        assert response.status_code in (200, 400), (value, response.status_code)
        response = client.post(f"/w/{slug}/reflect/attributes/{reflect.objects['attribute_pk']}/codes/",
                               {"code": value}, headers={"X-Coding": "1"})
        assert response.status_code in (400, 404), (value, response.status_code)


def test_a_chat_model_that_is_not_a_number_is_refused(db, settings, client):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    stage = build_stage("interact")
    client.force_login(stage.users[P])
    for value in ("abc", "²", "\x00", "9" * 30):
        response = client.post(f"/w/{stage.workshop.slug}/interact/", {"model": value})
        assert response.status_code == 200 and "Choose one of the models" in response.content.decode()


def test_a_next_that_is_not_a_path_of_this_site_is_ignored(reflect, client):
    client.force_login(reflect.users[P])
    slug = reflect.workshop.slug
    for back in ("a b", "coding:index", "//evil.example/", "/ok\x00", "https://evil.example/"):
        response = client.post(f"/w/{slug}/reflect/attributes/new/", {"name": "", "next": back})
        assert response.status_code == 302 and response["Location"] == f"/w/{slug}/reflect/", back
