"""Axis provenance (issue 11 §1) and merge confirm + undo (issue 9 §3).

A board session as it happens: cards made by several participants (freehand, not from labels),
their texts edited, two cards merged, one split; then the researcher's CSV and JSON must name
who proposed each axis, every card merged into it (name, definition, author, when, by whom),
every split and every edit (before/after, who, when), with ids that resolve inside the file.
"""

import csv
import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from discussion import selectors, services
from discussion.models import Axis, AxisComment, AxisEvent, AxisStatus, GroupVote
from tests.discussion.conftest import goto
from workshops import services as workshop_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(discuss):
    """P01 proposes "Bias", P02 "One-sidedness", P03 "Accuracy"; P03 and P02 edit; P02's card
    is merged into P01's by P03; P01 splits nothing yet."""
    d = discuss
    p1, p2, p3 = d.people
    goto(d, 4)
    d.bias = services.axis_create(membership=p1, name="Bias", definition="Favours one side")
    d.onesided = services.axis_create(membership=p2, name="One-sidedness", definition="Only the British view")
    d.accuracy = services.axis_create(membership=p3, name="Accuracy", definition="Dates right")
    services.axis_update(membership=p3, axis_id=d.bias.pk, name="Bias", version=1,
                         definition="Favours one side, e.g. colonial accounts")
    services.axis_update(membership=p2, axis_id=d.accuracy.pk, name="Accuracy", version=1,
                         definition="Facts and dates are right")
    services.axis_merge(membership=p3, axis_ids=[d.onesided.pk], into_id=d.bias.pk)
    return d


def _csv(client, d):
    response = client.get(f"/w/{d.workshop.slug}/discuss/export/derived-axes.csv")
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8")
    return {int(r["axis_id"]): r for r in csv.DictReader(io.StringIO(body.lstrip("\ufeff")))}


def _json(client, d):
    response = client.get(f"/w/{d.workshop.slug}/discuss/export/derived-axes.json")
    assert response.status_code == 200
    return response.json()


def _ids_in(tree) -> set[int]:
    """Every axis id the file refers to (merged_from, split_from, events)."""
    found = set()

    def walk(node, key=None):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif key in ("merged_from", "split_from", "merged_into", "absorbed_axis_id", "restored_axis_id",
                     "parts_axis_ids", "lineage") and isinstance(node, int):
            found.add(node)

    walk(tree)
    return found


def test_researcher_sees_who_proposed_merged_and_edited_each_axis(session, client_for):
    d = session
    client = client_for(d.researcher)
    rows = _csv(client, d)
    assert set(rows) == {d.bias.pk, d.accuracy.pk}
    bias, accuracy = rows[d.bias.pk], rows[d.accuracy.pk]
    # Who proposed each axis, and everyone behind it (proposers, merged cards' authors, editors).
    assert bias["proposed_by"] == "P01" and accuracy["proposed_by"] == "P03"
    assert bias["participants"] == "P01 P02 P03"
    assert accuracy["participants"] == "P02 P03"
    # The merged card: its name, definition, author, when, and by whom.
    merged = json.loads(bias["merged_cards"])
    assert len(merged) == 1
    assert merged[0]["axis_id"] == d.onesided.pk
    assert (merged[0]["name"], merged[0]["definition"]) == ("One-sidedness", "Only the British view")
    assert merged[0]["proposed_by"] == "P02" and merged[0]["merged_by"] == "P03" and merged[0]["merged_at"]
    # The definition history, from the first card to the final text.
    history = json.loads(bias["definition_history"])
    assert [h["kind"] for h in history] == ["created", "edited", "merged"]
    assert history[0]["by"] == "P01" and history[0]["after"] == {"name": "Bias", "definition": "Favours one side"}
    assert history[1]["by"] == "P03"
    assert history[1]["before"]["definition"] == "Favours one side"
    assert history[1]["after"]["definition"] == "Favours one side, e.g. colonial accounts"
    assert history[2]["absorbed"]["name"] == "One-sidedness" and history[2]["by"] == "P03"
    assert history[-1].get("after", history[1]["after"])["definition"] == bias["definition"]
    assert all(h["at"] for h in history)
    # Versions line up with the card's version (what a Likert rating stores as definition_version).
    assert [h["version"] for h in history] == [1, 2, 3] and d.bias.__class__.objects.get(pk=d.bias.pk).version == 3
    acc_history = json.loads(accuracy["definition_history"])
    assert [(h["kind"], h["by"]) for h in acc_history] == [("created", "P03"), ("edited", "P02")]

    tree = _json(client, d)
    axis = next(a for a in tree["axes"] if a["axis_id"] == d.bias.pk)
    assert axis["proposed_by"] == "P01" and axis["participants"] == ["P01", "P02", "P03"]
    assert axis["merged_from"] == [d.onesided.pk]
    assert [e["kind"] for e in axis["history"]] == ["created", "edited", "merged"]
    # Every axis id in the file resolves to an axis or a card of the same file.
    known = {a["axis_id"] for a in tree["axes"]} | {c["axis_id"] for c in tree["cards"]}
    assert _ids_in(tree) <= known
    card = next(c for c in tree["cards"] if c["axis_id"] == d.onesided.pk)
    assert (card["status"], card["merged_into"], card["proposed_by"]) == ("merged", d.bias.pk, "P02")
    assert (card["name"], card["definition"]) == ("One-sidedness", "Only the British view")
    assert [e["kind"] for e in card["history"]] == ["created"]
    # Every pseudonym in the file is listed once at the top, and no username appears.
    assert {p["pseudonym"] for p in tree["participants"]} == {"P01", "P02", "P03"}
    text = json.dumps(tree)
    for person in d.people:
        assert person.user.username not in text


def test_split_and_nested_merge_resolve_inside_the_file(session, client_for):
    d = session
    p1, p2, p3 = d.people
    # The merged card (with its own merged card inside) is split in two.
    parts = services.axis_split(membership=p2, axis_id=d.bias.pk,
                                parts=[{"name": "Colonial bias", "definition": "Colonial view only"},
                                       {"name": "Religious bias", "definition": "One religion favoured"}])
    services.axis_merge(membership=p1, axis_ids=[d.accuracy.pk], into_id=parts[0].pk)
    client = client_for(d.researcher)
    tree = _json(client, d)
    assert {a["axis_id"] for a in tree["axes"]} == {p.pk for p in parts}
    colonial = next(a for a in tree["axes"] if a["axis_id"] == parts[0].pk)
    assert colonial["split_from"] == d.bias.pk and colonial["merged_from"] == [d.accuracy.pk]
    assert set(colonial["lineage"]) == {d.bias.pk, d.onesided.pk, d.accuracy.pk}
    assert colonial["proposed_by"] == "P02"
    assert colonial["participants"] == ["P01", "P02", "P03"]
    cards = {c["axis_id"]: c for c in tree["cards"]}
    assert set(cards) == {d.bias.pk, d.onesided.pk, d.accuracy.pk}
    split = [e for e in cards[d.bias.pk]["history"] if e["kind"] == "split"]
    assert split[0]["by"] == "P02" and split[0]["parts_axis_ids"] == [p.pk for p in parts]
    assert [p["name"] for p in split[0]["parts"]] == ["Colonial bias", "Religious bias"]
    known = {a["axis_id"] for a in tree["axes"]} | set(cards)
    assert _ids_in(tree) <= known
    rows = _csv(client, d)
    split_from = json.loads(rows[parts[0].pk]["split_from"])
    assert split_from["axis_id"] == d.bias.pk and split_from["name"] == "Bias"
    assert split_from["proposed_by"] == "P01" and split_from["split_by"] == "P02"
    assert [h["kind"] for h in split_from["history"]] == ["created", "edited", "merged", "split"]
    merged = {m["axis_id"]: m for m in json.loads(rows[parts[0].pk]["merged_cards"])}
    # The card merged directly and the one merged into its origin, each with its author.
    assert merged[d.accuracy.pk]["proposed_by"] == "P03" and merged[d.accuracy.pk]["merged_by"] == "P01"
    assert merged[d.onesided.pk]["proposed_by"] == "P02"


def test_withdrawn_member_is_left_out_of_provenance(session, client_for):
    d = session
    workshop_services.membership_withdraw(membership=d.people[1])  # P02: merged card's author, an editor
    client = client_for(d.researcher)
    rows = _csv(client, d)
    body = json.dumps(rows)
    assert "P02" not in body and "One-sidedness" not in body and "Only the British view" not in body
    assert json.loads(rows[d.bias.pk]["merged_cards"]) == []
    # P02's edit is left out; the withdrawal put back the text an active member wrote, recorded as
    # an edit by nobody whose "before" (P02's text) is not shown.
    history = json.loads(rows[d.accuracy.pk]["definition_history"])
    assert [h["kind"] for h in history] == ["created", "edited"]
    assert history[1]["by"] is None and history[1]["after"] == history[0]["after"]
    tree = _json(client, d)
    text = json.dumps(tree)
    assert "P02" not in text and "One-sidedness" not in text
    known = {a["axis_id"] for a in tree["axes"]} | {c["axis_id"] for c in tree["cards"]}
    assert _ids_in(tree) <= known


def test_events_are_written_with_the_change_and_are_append_only(session):
    d = session
    kinds = list(AxisEvent.objects.filter(axis=d.bias).values_list("kind", "actor__pseudonym"))
    assert kinds == [("created", "P01"), ("edited", "P03"), ("merged", "P03")]
    event = AxisEvent.objects.filter(axis=d.bias, kind="merged").get()
    assert event.data["absorbed"]["name"] == "One-sidedness"
    event.data = {}
    with pytest.raises(ValueError):
        event.save()
    with pytest.raises(ValueError):
        event.delete()
    # The database refuses it too (a bulk UPDATE skips the model).
    with pytest.raises(DatabaseError), transaction.atomic():
        AxisEvent.objects.filter(pk=event.pk).update(data={"absorbed": {"name": "rewritten"}})
    event.refresh_from_db()
    assert event.data["absorbed"]["name"] == "One-sidedness"
    # A refused change writes no event.
    with pytest.raises(services.Conflict):
        services.axis_update(membership=d.people[0], axis_id=d.bias.pk, name="X", definition="Y", version=1)
    assert AxisEvent.objects.filter(axis=d.bias).count() == 3


def test_undo_merge_restores_the_absorbed_card_as_it_was(discuss):
    d = discuss
    p1, p2, p3 = d.people
    goto(d, 4)
    a = services.axis_create(membership=p1, name="Bias", definition="Favours one side")
    b = services.axis_create(membership=p2, name="One-sidedness", definition="Only the British view")
    services.axis_attach_label(membership=p2, axis_id=b.pk, key="code:religious bias")
    services.axis_add_example(membership=p2, axis_id=b.pk, message_id=d.answers[p2.pk].pk,
                              excerpt="Some accounts centre Britain")
    services.axis_comment(membership=p3, axis_id=b.pk, text="Close to Bias?")
    services.vote_set(membership=p3, axis_ids=[b.pk, a.pk])
    services.vote_set(membership=p1, axis_ids=[a.pk, b.pk])
    before = selectors.card_data(Axis.objects.get(pk=b.pk))
    target_before = selectors.card_data(Axis.objects.get(pk=a.pk))

    services.axis_merge(membership=p1, axis_ids=[b.pk], into_id=a.pk, name="Bias and one-sidedness")
    merged = selectors.card_data(Axis.objects.get(pk=a.pk))
    assert merged["name"] == "Bias and one-sidedness"
    assert len(merged["merges"]) == 1 and merged["merges"][0]["name"] == "One-sidedness"
    assert GroupVote.objects.filter(axis=b).count() == 0

    restored = services.axis_unmerge(membership=p3, merge_event_id=merged["merges"][0]["event"])
    assert restored.pk == b.pk
    after = selectors.card_data(Axis.objects.get(pk=b.pk))
    for key in ("name", "definition", "status", "sources", "examples", "comments", "by"):
        assert after[key] == before[key], key
    target_after = selectors.card_data(Axis.objects.get(pk=a.pk))
    for key in ("name", "definition", "sources", "examples", "comments"):
        assert target_after[key] == target_before[key], key
    assert target_after["merges"] == []
    assert sorted(GroupVote.objects.filter(axis__in=[a, b]).values_list("membership_id", "axis_id", "rank")) == sorted(
        [(p3.pk, b.pk, 1), (p3.pk, a.pk, 2), (p1.pk, a.pk, 1), (p1.pk, b.pk, 2)])
    assert not AxisComment.objects.filter(axis=a).exists()
    # The history keeps both the merge and its undo; a second undo is refused.
    assert list(AxisEvent.objects.filter(axis=a).values_list("kind", flat=True)) == ["created", "merged", "unmerged"]
    with pytest.raises(ValidationError):
        services.axis_unmerge(membership=p3, merge_event_id=merged["merges"][0]["event"])
    # Researchers observe; they cannot undo.
    services.axis_merge(membership=p1, axis_ids=[b.pk], into_id=a.pk)
    event = AxisEvent.objects.filter(axis=a, kind="merged").last()
    with pytest.raises(services.NotAllowed):
        services.axis_unmerge(membership=d.researcher, merge_event_id=event.pk)
    for bad in (None, "x", 0, 999999, AxisEvent.objects.get(axis=a, kind="created").pk):
        with pytest.raises(ValidationError):
            services.axis_unmerge(membership=p1, merge_event_id=bad)


def test_undo_is_refused_when_the_merged_card_left_the_board(discuss):
    d = discuss
    p1, p2, _p3 = d.people
    goto(d, 4)
    a = services.axis_create(membership=p1, name="Bias")
    b = services.axis_create(membership=p2, name="One-sidedness")
    c = services.axis_create(membership=p2, name="Accuracy")
    services.axis_merge(membership=p1, axis_ids=[b.pk], into_id=a.pk)
    event = AxisEvent.objects.get(axis=a, kind="merged")
    services.axis_merge(membership=p1, axis_ids=[a.pk], into_id=c.pk)
    with pytest.raises(ValidationError):
        services.axis_unmerge(membership=p1, merge_event_id=event.pk)
    assert Axis.objects.get(pk=b.pk).status == AxisStatus.MERGED


def test_migration_backfills_axes_made_before_the_log(discuss, client_for):
    """Cards made by the old code (no events, only the session log) get their history rebuilt."""
    import importlib

    from django.apps import apps as django_apps

    from discussion.models import SessionEvent

    d = discuss
    p1, p2, _p3 = d.people
    w = d.workshop
    a = Axis.objects.create(workshop=w, name="Bias", definition="v2 text", created_by=p1, version=2)
    b = Axis.objects.create(workshop=w, name="One-sidedness", definition="British view", created_by=p2,
                            status=AxisStatus.MERGED, merged_into=a)
    for actor, kind, data in (
        (p1, "card_create", {"axis": a.pk, "name": "Bias", "definition": "v1 text"}),
        (p2, "card_create", {"axis": b.pk, "name": "One-sidedness", "definition": "British view"}),
        (p2, "card_edit", {"axis": a.pk, "after": {"name": "Bias", "definition": "v2 text"}, "version": 2}),
        (p1, "card_merge", {"into": a.pk, "merged": [b.pk]}),
    ):
        SessionEvent.objects.create(workshop=w, actor=actor, kind=kind, data=data)
    migration = importlib.import_module("discussion.migrations.0002_axis_event_log")
    migration.backfill(django_apps, None)
    history = list(AxisEvent.objects.filter(axis=a).values_list("kind", "actor_id", "data"))
    assert [(k, m) for k, m, _ in history] == [("created", p1.pk), ("edited", p2.pk), ("merged", p1.pk)]
    assert history[1][2]["before"]["definition"] == "v1 text" and history[1][2]["after"]["definition"] == "v2 text"
    assert history[2][2]["absorbed"]["name"] == "One-sidedness" and "undo" not in history[2][2]
    assert selectors.card_data(a)["merges"] == []  # a rebuilt merge cannot be undone
    rows = _csv(client_for(d.researcher), d)
    merged = json.loads(rows[a.pk]["merged_cards"])
    assert [(m["name"], m["proposed_by"], m["merged_by"]) for m in merged] == [("One-sidedness", "P02", "P01")]
    assert all(h.get("backfilled") for h in json.loads(rows[a.pk]["definition_history"]))


# --- property: any board session gives a history that is a chain and a file whose ids resolve ---

OPS = st.lists(st.tuples(st.sampled_from(["create", "edit", "merge", "merge_rename", "undo", "split"]),
                         st.integers(0, 2), st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=14)

TEXT_KINDS = ("created", "edited", "merged", "unmerged")


def _run_ops(d, ops):
    for n, (op, who, i, j) in enumerate(ops):
        member = d.people[who]
        active = list(selectors.active_axes(d.workshop))
        try:
            if op == "create" or not active:
                services.axis_create(membership=member, name=f"Card {n}", definition=f"Definition {n}")
            elif op == "edit":
                axis = active[i % len(active)]
                services.axis_update(membership=member, axis_id=axis.pk, name=f"{axis.name}'", version=axis.version,
                                     definition=f"Edited {n} by {member.pseudonym}")
            elif op.startswith("merge") and len(active) > 1:
                source, target = active[i % len(active)], active[j % len(active)]
                services.axis_merge(membership=member, axis_ids=[source.pk], into_id=target.pk,
                                    name=f"Merged {n}" if op == "merge_rename" else None)
            elif op == "undo":
                merges = [m for a in active for m in selectors.card_data(a)["merges"]]
                if merges:
                    services.axis_unmerge(membership=member, merge_event_id=merges[i % len(merges)]["event"])
            elif op == "split":
                axis = active[i % len(active)]
                services.axis_split(membership=member, axis_id=axis.pk,
                                    parts=[{"name": f"Part {n}a", "definition": "a"}, {"name": f"Part {n}b"}])
        except ValidationError:
            pass  # e.g. merging a card into itself: refused, and nothing recorded


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_any_session_gives_a_chained_history_and_resolvable_ids(discuss, ops):
    from discussion import exports

    d = discuss
    goto(d, 4)
    with transaction.atomic():
        _run_ops(d, ops)
        tree = exports.axes_json(d.workshop)
        cards = {c["axis_id"]: c for c in tree["cards"]}
        known = {a["axis_id"] for a in tree["axes"]} | set(cards)
        assert _ids_in(tree) <= known
        for entry in tree["axes"] + tree["cards"]:
            texts = [e for e in entry["history"] if e["kind"] in TEXT_KINDS]
            assert texts and texts[0]["kind"] == "created"
            for previous, event in zip(texts, texts[1:]):
                assert event["before"] == previous["after"], (entry["axis_id"], event)
            assert texts[-1]["after"] == {"name": entry["name"], "definition": entry["definition"]}
            versions = [e["version"] for e in entry["history"]]
            assert versions == sorted(versions)
        for axis in tree["axes"]:
            assert axis["proposed_by"] == Axis.objects.get(pk=axis["axis_id"]).created_by.pseudonym
            assert set(axis["lineage"]) <= set(cards)
        transaction.set_rollback(True)


def test_axis_provenance_queries_do_not_grow_with_cards_and_labels(discuss):
    """Sources, an attribute's codes, each code's highlights and the examples are prefetched
    for all axes: more cards with more labels cost no more queries (issue 14 §2)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    d = discuss
    p1, p2, _p3 = d.people
    goto(d, 4)
    first = services.axis_create(membership=p1, name="Bias", definition="Favours one side")
    services.axis_attach_label(membership=p2, axis_id=first.pk, key="code:religious bias")
    with CaptureQueriesContext(connection) as one:
        assert len(selectors.axis_provenance(d.workshop)) == 1
    for n in range(4):
        axis = services.axis_create(membership=p1, name=f"Card {n}", definition="d")
        services.axis_attach_label(membership=p2, axis_id=axis.pk, key="code:religious bias")
        services.axis_attach_label(membership=p1, axis_id=axis.pk, key="attribute:balance")
    with CaptureQueriesContext(connection) as five:
        cards = selectors.axis_provenance(d.workshop)
    assert len(cards) == 5 and all(c["codes"] or c["attributes"] for c in cards)
    assert len(five) <= len(one) + 2, [q["sql"][:120] for q in five.captured_queries]
