"""The board's most frequent change, a card's text edit, has two writes (discussion/services/cards.py
`_write_edit`): one statement on Postgres, the portable ORM write elsewhere. Both must store
the same rows (the card, its provenance event, the session's log row), refuse the same way,
and name the card's proposer on the board the same way (never a withdrawn member)."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from discussion import services
from discussion.models import Axis, AxisEvent, AxisEventKind, BoardSequence, SessionEvent
from discussion.services import cards
from tests.discussion.conftest import goto
from workshops import services as workshop_services

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["sql", "orm"])
def write_path(request, monkeypatch):
    if request.param == "sql" and connection.vendor != "postgresql":
        pytest.fail("the one-statement edit is Postgres's: run the suite on Postgres (make test)")
    monkeypatch.setattr(cards, "FAST_WRITE", request.param == "sql")
    return request.param


def test_the_fixture_reaches_the_path_it_names(discuss, write_path, monkeypatch):
    called = []
    for path in ("_write_edit_sql", "_write_edit_orm"):
        real = getattr(cards, path)
        monkeypatch.setattr(cards, path, lambda real=real, path=path, **kw: called.append(path) or real(**kw))
    goto(discuss, 4)
    axis = services.axis_create(membership=discuss.people[0], name="Bias", definition="d")
    services.axis_update(membership=discuss.people[1], axis_id=axis.pk, name="Bias", definition="e", version=1)
    assert called == [f"_write_edit_{write_path}"]


def _edits(d):
    """Two cards, three edits by two members, one of them on a card whose proposer withdraws
    later; returns what the rows hold, without ids and times."""
    goto(d, 4)
    p0, p1, p2 = d.people
    a = services.axis_create(membership=p0, name="Bias", definition="One-sided accounts")
    b = services.axis_create(membership=p2, name="Balance", definition="")
    replies = [
        services.axis_update(membership=p1, axis_id=a.pk, name="Bias ", definition="  Favouring one side « ».\n", version=1),
        services.axis_update(membership=p0, axis_id=a.pk, name="Bias — संस्कृति", definition="", version=2),
        services.axis_update(membership=p1, axis_id=b.pk, name="Balance", definition="Several views", version=1),
    ]
    person = {m.pk: i for i, m in enumerate(d.people)}
    card = {a.pk: "a", b.pk: "b"}
    return {
        "cards": [(x.name, x.definition, x.version, person[x.updated_by_id], x.status)
                  for x in Axis.objects.filter(pk__in=[a.pk, b.pk]).order_by("pk")],
        "events": [(card[e.axis_id], e.kind, person[e.actor_id], e.data)
                   for e in AxisEvent.objects.filter(axis__workshop=d.workshop, kind=AxisEventKind.EDITED).order_by("id")],
        "log": [(person[e.actor_id], card[e.data["axis"]], {k: v for k, v in e.data.items() if k != "axis"})
                for e in SessionEvent.objects.filter(workshop=d.workshop, kind="card_edit").order_by("id")],
        "replies": [(r.name, r.definition, r.version, r.board_html.replace(f'-{a.pk}"', '-a"').replace(f'-{b.pk}"', '-b"'))
                    for r in replies],
        "seq": BoardSequence.objects.get(workshop=d.workshop).seq,
    }


def test_both_writes_store_the_same_rows(discuss, monkeypatch):
    from tests.discussion.conftest import build

    if connection.vendor != "postgresql":
        pytest.fail("the one-statement edit is Postgres's: run the suite on Postgres (make test)")
    monkeypatch.setattr(cards, "FAST_WRITE", True)
    fast = _edits(discuss)
    monkeypatch.setattr(cards, "FAST_WRITE", False)
    portable = _edits(build())
    assert fast == portable
    # What they hold: the text before and after each edit, as typed (cleaned), and the version.
    assert [data for *_x, data in fast["events"]] == [
        {"before": {"name": "Bias", "definition": "One-sided accounts"},
         "after": {"name": "Bias", "definition": "Favouring one side « »."}, "version": 2},
        {"before": {"name": "Bias", "definition": "Favouring one side « »."},
         "after": {"name": "Bias — संस्कृति", "definition": ""}, "version": 3},
        {"before": {"name": "Balance", "definition": ""}, "after": {"name": "Balance", "definition": "Several views"},
         "version": 2},
    ]
    assert [data for *_x, data in fast["log"]] == [
        {"after": {"name": "Bias", "definition": "Favouring one side « »."}, "version": 2},
        {"after": {"name": "Bias — संस्कृति", "definition": ""}, "version": 3},
        {"after": {"name": "Balance", "definition": "Several views"}, "version": 2},
    ]
    assert fast["seq"] == 6  # one board event each: the segment opened, two cards, three edits


def test_a_stale_version_or_a_removed_card_writes_nothing(discuss, write_path):
    d = discuss
    goto(d, 4)
    a = services.axis_create(membership=d.people[0], name="Bias", definition="first")
    services.axis_update(membership=d.people[1], axis_id=a.pk, name="Bias", definition="second", version=1)
    counts = (AxisEvent.objects.count(), SessionEvent.objects.count(), BoardSequence.objects.get().seq)
    with pytest.raises(services.Conflict) as info:
        services.axis_update(membership=d.people[2], axis_id=a.pk, name="Bias", definition="stale", version=1)
    assert (info.value.axis.definition, info.value.attempted["definition"]) == ("second", "stale")
    assert (AxisEvent.objects.count(), SessionEvent.objects.count(), BoardSequence.objects.get().seq) == counts
    services.axis_archive(membership=d.people[0], axis_id=a.pk)
    counts = (AxisEvent.objects.count(), SessionEvent.objects.count(), BoardSequence.objects.get().seq)
    with pytest.raises(ValidationError, match="no longer on the board"):
        services.axis_update(membership=d.people[2], axis_id=a.pk, name="Bias", definition="late", version=3)
    assert (AxisEvent.objects.count(), SessionEvent.objects.count(), BoardSequence.objects.get().seq) == counts
    a.refresh_from_db()
    assert (a.definition, a.version) == ("second", 3)


def test_the_board_never_names_a_withdrawn_proposer(discuss, write_path):
    d = discuss
    goto(d, 4)
    w, p1, _p2 = d.people
    theirs = services.axis_create(membership=w, name="Theirs", definition="")
    # Edited by someone else, the card is the group's: it stays when its proposer withdraws.
    shown = services.axis_update(membership=p1, axis_id=theirs.pk, name="Ours", definition="", version=1)
    assert w.pseudonym in shown.board_html
    workshop_services.membership_withdraw(membership=w)
    services.withdrawal_apply(workshop=d.workshop)
    theirs.refresh_from_db()
    edited = services.axis_update(membership=p1, axis_id=theirs.pk, name="Ours now", definition="",
                                  version=theirs.version)
    assert w.pseudonym not in edited.board_html and "Ours now" in edited.board_html


@pytest.mark.django_db(transaction=True)
def test_two_edits_of_the_same_version_at_once_one_wins(write_path):
    """Two members save over the same version at the same moment (two threads, two
    connections): one edit is written with its log rows, the other is a conflict and writes
    nothing."""
    from django.db import connections

    from tests.discussion.conftest import build

    d = build()
    goto(d, 4)
    a = services.axis_create(membership=d.people[0], name="Bias", definition="first")
    barrier = threading.Barrier(2)
    outcome: dict[str, str] = {}

    def edit(member, text):
        try:
            barrier.wait(timeout=10)
            services.axis_update(membership=member, axis_id=a.pk, name="Bias", definition=text, version=1)
            outcome[text] = "saved"
        except services.Conflict:
            outcome[text] = "conflict"
        finally:
            connections.close_all()

    threads = [threading.Thread(target=edit, args=(m, t)) for m, t in ((d.people[1], "one"), (d.people[2], "two"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcome.values()) == ["conflict", "saved"]
    winner = next(text for text, result in outcome.items() if result == "saved")
    a.refresh_from_db()
    assert (a.definition, a.version) == (winner, 2)
    edits = AxisEvent.objects.filter(axis=a, kind=AxisEventKind.EDITED)
    assert [e.data["after"]["definition"] for e in edits] == [winner]
    assert [e.data["after"]["definition"] for e in SessionEvent.objects.filter(kind="card_edit")] == [winner]
