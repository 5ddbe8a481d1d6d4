"""The annotation-create hot path: the fragment a save returns is built from what the service
wrote (no second read), so it must equal a fresh rendering of the turn, on both write paths
(one SQL statement on Postgres, the ORM elsewhere)."""

import threading

import psycopg
import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse

from coding import selectors, services
from coding.models import Annotation, AnnotationCode, Code
from tests.coding.conftest import MIXED

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["sql", "orm"])
def write_path(request, monkeypatch):
    monkeypatch.setattr(services, "FAST_WRITE", request.param == "sql")
    return request.param


def fresh(message, membership):
    """The turn as the transcript page renders it, read from the database."""
    from llm_gateway.models import Message

    return selectors.render_turn(Message.objects.get(pk=message.pk), membership)


def assert_fragment_is_fresh(annotation, membership):
    built = selectors.render_turn(annotation.message, membership, annotations=annotation.turn_annotations)
    again = fresh(annotation.message, membership)
    assert built.annotations == again.annotations
    assert (built.number, built.replaced) == (again.number, again.replaced)
    assert built.article == again.article


def test_fragment_equals_a_fresh_rendering_in_every_case(reflect, write_path):
    p1, answer = reflect.p1, reflect.own_answer
    create = services.annotation_create
    # A new highlight with codes typed in any case and order, one of them twice.
    a = create(membership=p1, message_id=answer.id, start=0, end=6, codes=["Zebra", "alpha", "ZEBRA ", "Éclair"])
    assert_fragment_is_fresh(a, p1)
    assert [t for _i, t in a.turn_annotations[0].codes] == ["alpha", "Zebra", "Éclair"]  # code-point order
    # Overlapping and nested highlights, and one before the others.
    b = create(membership=p1, message_id=answer.id, start=3, end=20, codes=["zebra", "beta"], memo="a memo")
    assert_fragment_is_fresh(b, p1)
    c = create(membership=p1, message_id=answer.id, start=0, end=2, codes=["gamma"])
    assert_fragment_is_fresh(c, p1)
    assert [v.id for v in c.turn_annotations] == [c.id, a.id, b.id]
    # The same span again: codes are added (existing and new), the memo is set once.
    again = create(membership=p1, message_id=answer.id, start=0, end=6, codes=["beta", "delta"], memo="first")
    assert again.id == a.id and again.memo == "first"
    assert_fragment_is_fresh(again, p1)
    again = create(membership=p1, message_id=answer.id, start=0, end=6, codes=["alpha"], memo="second")
    assert again.memo == "first"  # an existing memo is not replaced from the code field
    assert_fragment_is_fresh(again, p1)
    stored = Annotation.objects.get(pk=a.id)
    assert (again.created_at, again.updated_at, again.memo) == (stored.created_at, stored.updated_at, stored.memo)
    assert sorted(stored.codes.values_list("text", flat=True), key=str.casefold) == ["alpha", "beta", "delta", "Zebra", "Éclair"]
    # Another participant's highlights on the same (baseline) answer never show.
    services.annotation_create(membership=reflect.p2, message_id=reflect.baseline_answer.id, start=0, end=5,
                               codes=["theirs"])
    mine = create(membership=p1, message_id=reflect.baseline_answer.id, start=0, end=5, codes=["mine"])
    assert [v.id for v in mine.turn_annotations] == [mine.id]
    assert_fragment_is_fresh(mine, p1)
    # The returned annotation is the stored row.
    row = Annotation.objects.get(pk=b.id)
    assert (b.start, b.end, b.excerpt, b.memo, b.created_at, b.updated_at, b.membership_id, b.message_id) == (
        row.start, row.end, row.excerpt, row.memo, row.created_at, row.updated_at, row.membership_id, row.message_id)
    assert b.excerpt == MIXED[3:20]


def test_fragment_keeps_the_answer_number_and_replaced_note(reflect, write_path):
    from llm_gateway.models import Message

    question = reflect.own.messages.get(position=2)
    Message.objects.create(conversation=reflect.own, role="assistant", content="OLD", status="superseded",
                           position=50, reply_to=question)
    Message.objects.create(conversation=reflect.own, role="assistant", content="OLDER", status="superseded",
                           position=51, reply_to=question)
    a = services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer2.id, start=0, end=3,
                                   codes=["x"])
    assert (a.message.turn_number, a.message.turn_replaced) == (2, 2)
    assert_fragment_is_fresh(a, reflect.p1)
    built = selectors.render_turn(a.message, reflect.p1, annotations=a.turn_annotations)
    assert "Model answer 2" in built.article and "2 earlier answers to this question were replaced" in built.article


def test_both_write_paths_store_the_same_rows(reflect, monkeypatch):
    def store(fast, membership):
        monkeypatch.setattr(services, "FAST_WRITE", fast)
        services.annotation_create(membership=membership, message_id=reflect.baseline_answer.id, start=0, end=8,
                                   codes=["One", "two"], memo="m")
        services.annotation_create(membership=membership, message_id=reflect.baseline_answer.id, start=0, end=8,
                                   codes=["ONE", "three"])
        services.annotation_create(membership=membership, message_id=reflect.baseline_answer.id, start=4, end=12,
                                   codes=["two"])
        return sorted(
            (a.start, a.end, a.excerpt, a.memo, tuple(sorted(a.codes.values_list("text", flat=True))))
            for a in Annotation.objects.filter(membership=membership)
        ), sorted(Code.objects.filter(membership=membership).values_list("text", "normalized", "workshop_id", "memo"))

    assert store(True, reflect.p1) == store(False, reflect.p2)
    assert AnnotationCode.objects.filter(annotation__membership=reflect.p1).count() == 4


def test_refusals_write_nothing_on_either_path(reflect, write_path):
    for codes in (["ok", ""], ["ok", "y" * 121], ["ß" * 61]):  # casefold makes ß*61 122 characters long
        with pytest.raises(ValidationError):
            services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=5,
                                       codes=codes)
    with pytest.raises(ValidationError):
        services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=10_000,
                                   codes=["x"])
    assert not Annotation.objects.exists() and not Code.objects.exists()


def test_create_reads_and_writes_in_few_queries(reflect, client_for):
    from django.test.utils import CaptureQueriesContext

    client = client_for(reflect.p1)
    url = reverse("coding:annotation_create", args=[reflect.workshop.slug])
    data = {"message": reflect.own_answer.id, "start": 0, "end": 5, "code": ["new", "codes"]}
    client.post(url, data, HTTP_X_CODING="1")  # session etc. warmed up
    with CaptureQueriesContext(connection) as queries:
        r = client.post(url, {**data, "start": 6, "end": 9, "code": ["new", "more"]}, HTTP_X_CODING="1")
    assert r.status_code == 201
    # session, user, the membership with its workshop; then the message, the turn and one write
    # statement (plus, only because the test runs inside a transaction, a savepoint around the write).
    sql = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(sql) == 6, sql


@pytest.mark.django_db(transaction=True)
def test_code_created_at_the_same_moment_in_another_tab_is_linked(reflect):
    """The statement inserts missing codes with ON CONFLICT DO NOTHING: a code another
    transaction creates meanwhile is skipped there, then found and linked by the follow-up."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    other = psycopg.connect(**{k: v for k, v in params.items() if k in ("dbname", "user", "password", "host", "port")})
    try:
        other.execute(
            "INSERT INTO coding_code (workshop_id, membership_id, text, normalized, memo, created_at, updated_at) "
            "VALUES (%s, %s, 'Racing', 'racing', '', now(), now())", [reflect.workshop.id, reflect.p1.id])
        result = {}

        def save():
            try:
                result["a"] = services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id,
                                                         start=0, end=5, codes=["racing", "calm"])
            finally:
                connection.close()

        worker = threading.Thread(target=save)
        worker.start()
        worker.join(1.0)
        assert worker.is_alive()  # waiting on the other transaction's uncommitted code
        other.commit()
        worker.join(10)
        a = result["a"]
        assert sorted(a.codes.values_list("text", flat=True)) == ["Racing", "calm"]
        assert [t for _i, t in a.turn_annotations[0].codes] == ["calm", "Racing"]  # by normalized text
    finally:
        other.close()


def test_same_span_saved_at_the_same_moment_in_two_tabs(reflect, client_for, monkeypatch, write_path):
    """The turn was read before the other tab's highlight existed: the insert hits the unique
    span, and the view saves again, adding the codes to that highlight."""
    first = services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=5,
                                       codes=["from tab 1"])
    real, calls = selectors.turn_annotations, []

    def stale_once(membership_id, message_id):
        calls.append(1)
        return [] if len(calls) == 1 else real(membership_id, message_id)

    monkeypatch.setattr(selectors, "turn_annotations", stale_once)
    r = client_for(reflect.p1).post(reverse("coding:annotation_create", args=[reflect.workshop.slug]),
                                    {"message": reflect.own_answer.id, "start": 0, "end": 5, "code": ["from tab 2"]},
                                    HTTP_X_CODING="1")
    assert r.status_code == 201 and r["X-Annotation-Id"] == str(first.id) and len(calls) == 2
    assert sorted(Annotation.objects.get().codes.values_list("text", flat=True)) == ["from tab 1", "from tab 2"]
    assert "from tab 1" in r.content.decode() and "from tab 2" in r.content.decode()
