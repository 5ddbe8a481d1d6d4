import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from discussion import selectors, services
from discussion.models import AxisStatus, GroupRank, LikertRating, Pick, Session, SessionEvent
from tests.discussion.conftest import build, goto
from tests.factories import make_participant

pytestmark = pytest.mark.django_db


def test_only_the_facilitator_drives_the_segments(discuss):
    with pytest.raises(services.NotAllowed):
        services.session_set_segment(workshop=discuss.workshop, by=discuss.people[0], segment=2)
    with pytest.raises(services.NotAllowed):
        services.session_set_segment(workshop=discuss.workshop, by=discuss.researcher, segment=2)
    goto(discuss, 3)
    goto(discuss, 1)  # revisit
    session = Session.objects.get(workshop=discuss.workshop)
    assert session.segment == 1 and session.segment_open
    with pytest.raises(ValidationError):
        services.session_set_segment(workshop=discuss.workshop, by=discuss.facilitator, segment=9)
    kinds = list(SessionEvent.objects.filter(workshop=discuss.workshop).values_list("kind", "data__segment"))
    assert kinds == [("segment", 3), ("segment", 1)]


def test_picks_are_hidden_until_revealed_and_only_in_segment_one(discuss, client_for):
    p0, p1 = discuss.people[:2]
    with pytest.raises(services.NotAllowed):
        services.picks_save(membership=p0, picks=[{"name": "Bias", "definition": "x"}])
    goto(discuss, 1)
    attribute = discuss.attributes[(p0.pk, "Bias")]
    services.picks_save(membership=p0, picks=[
        {"attribute_id": attribute.pk, "name": "", "definition": ""},
        {"name": "Balance", "definition": "Several perspectives"},
        {"name": "", "definition": ""},
    ])
    picks = list(Pick.objects.filter(membership=p0).order_by("position"))
    assert [(p.position, p.name, p.definition) for p in picks] == [
        (1, "Bias", attribute.definition), (2, "Balance", "Several perspectives")]
    with pytest.raises(ValidationError):
        services.picks_save(membership=p0, picks=[{"name": "No definition", "definition": ""}])
    with pytest.raises(ValidationError):  # someone else's attribute
        services.picks_save(membership=p1, picks=[{"attribute_id": attribute.pk, "name": "", "definition": ""}])
    with pytest.raises(ValidationError):
        services.picks_save(membership=p0, picks=[{"name": f"n{i}", "definition": "d"} for i in range(4)])
    page = client_for(p1).get(f"/w/{discuss.workshop.slug}/discuss/").content.decode()
    assert "Several perspectives" not in page
    services.session_reveal_picks(workshop=discuss.workshop, by=discuss.facilitator)
    page = client_for(p1).get(f"/w/{discuss.workshop.slug}/discuss/").content.decode()
    assert "Several perspectives" in page
    services.session_set_open(workshop=discuss.workshop, by=discuss.facilitator, open=False)
    with pytest.raises(services.NotAllowed):
        services.picks_save(membership=p0, picks=[{"name": "Late", "definition": "d"}])


def _board(d):
    goto(d, 4)
    a = services.axis_create(membership=d.people[0], name="Bias", definition="One-sided accounts")
    b = services.axis_create(membership=d.people[1], name="Balance", definition="Several views")
    c = services.axis_create(membership=d.people[2], name="Accuracy", definition="Facts right")
    return a, b, c


def test_card_edit_with_a_stale_version_is_a_conflict_and_loses_nothing(discuss):
    a, _b, _c = _board(discuss)
    p0, p1 = discuss.people[:2]
    services.axis_update(membership=p0, axis_id=a.pk, name="Bias", definition="Text of P0", version=1)
    with pytest.raises(services.Conflict) as info:
        services.axis_update(membership=p1, axis_id=a.pk, name="Bias", definition="Text of P1", version=1)
    assert info.value.axis.definition == "Text of P0" and info.value.attempted["definition"] == "Text of P1"
    a.refresh_from_db()
    assert (a.definition, a.version) == ("Text of P0", 2)
    services.axis_update(membership=p1, axis_id=a.pk, name="Bias", definition="Text of P1", version=2)
    a.refresh_from_db()
    assert (a.definition, a.version) == ("Text of P1", 3)
    edits = SessionEvent.objects.filter(kind="card_edit").order_by("id")
    assert [e.data["after"]["definition"] for e in edits] == ["Text of P0", "Text of P1"]


def test_merge_and_split_keep_provenance(discuss):
    a, b, c = _board(discuss)
    p0 = discuss.people[0]
    services.axis_attach_label(membership=p0, axis_id=a.pk, key="code:colonial bias")
    services.axis_attach_label(membership=p0, axis_id=b.pk, key="attribute:balance")
    merged = services.axis_merge(membership=p0, axis_ids=[b.pk], into_id=a.pk, name="Bias and balance")
    b.refresh_from_db()
    assert b.status == AxisStatus.MERGED and b.merged_into_id == a.pk
    card = selectors.card_data(merged)
    assert {s["label"] for s in card["sources"]} == {"colonial bias", "Balance"}
    assert card["examples"] and card["examples"][0]["excerpt"] == "Many historians differ on this"
    parts = services.axis_split(membership=p0, axis_id=a.pk, parts=[{"name": "Bias"}, {"name": "Balance"}])
    assert [p.split_from_id for p in parts] == [a.pk, a.pk]
    assert all(len(selectors.card_data(p)["sources"]) == 2 for p in parts)
    assert set(selectors.active_axes(discuss.workshop)) == {parts[0], parts[1], c}
    with pytest.raises(ValidationError):
        services.axis_attach_label(membership=p0, axis_id=c.pk, key="code:not a label")


def test_votes_and_group_ranking_refuse_merged_missing_and_foreign_axes(discuss):
    a, b, c = _board(discuss)
    p0 = discuss.people[0]
    services.vote_set(membership=p0, axis_ids=[c.pk, a.pk])
    tally = selectors.vote_tally(discuss.workshop)
    assert [(t["name"], t["points"]) for t in tally] == [("Accuracy", 5), ("Bias", 4)]
    services.axis_merge(membership=p0, axis_ids=[b.pk], into_id=a.pk)
    other = build()
    goto(other, 4)
    foreign = services.axis_create(membership=other.people[0], name="Elsewhere")
    for ids in ([b.pk], [a.pk, a.pk], [foreign.pk], [999999], ["x"], [a.pk, c.pk, 1, 2, 3, 4]):
        with pytest.raises(ValidationError):
            services.group_ranking_record(workshop=discuss.workshop, by=discuss.facilitator, axis_ids=ids)
        with pytest.raises(ValidationError):
            services.vote_set(membership=p0, axis_ids=ids)
    with pytest.raises(services.NotAllowed):
        services.group_ranking_record(workshop=discuss.workshop, by=p0, axis_ids=[a.pk])
    services.group_ranking_record(workshop=discuss.workshop, by=discuss.facilitator, axis_ids=[c.pk, a.pk])
    assert list(GroupRank.objects.filter(workshop=discuss.workshop).values_list("axis__name", "rank")) == [
        ("Accuracy", 1), ("Bias", 2)]


def test_ratings_range_update_and_constraints(discuss):
    a, b, c = _board(discuss)
    p0 = discuss.people[0]
    with pytest.raises(services.NotAllowed):  # not segment 5 yet
        services.rating_set(membership=p0, axis_id=a.pk, value=3)
    services.axis_merge(membership=p0, axis_ids=[b.pk], into_id=a.pk)
    goto(discuss, 5)
    for bad in (0, 6, -1, "x", None, 2.5 if False else "2.5"):
        with pytest.raises(ValidationError):
            services.rating_set(membership=p0, axis_id=a.pk, value=bad)
    with pytest.raises(ValidationError):
        services.rating_set(membership=p0, axis_id=b.pk, value=3)  # merged away
    services.rating_set(membership=p0, axis_id=a.pk, value=2)
    services.rating_set(membership=p0, axis_id=a.pk, value=5)  # updates
    assert list(LikertRating.objects.filter(membership=p0).values_list("axis_id", "value")) == [(a.pk, 5)]
    with pytest.raises(services.NotAllowed):
        services.rating_set(membership=discuss.facilitator, axis_id=a.pk, value=3)
    # The database refuses what the service would: out of range, and a second row.
    with pytest.raises(IntegrityError), transaction.atomic():
        LikertRating.objects.create(membership=p0, axis=c, value=7)
    with pytest.raises(IntegrityError), transaction.atomic():
        LikertRating.objects.create(membership=p0, axis=a, value=3)
    services.individual_ranking_set(membership=p0, axis_ids=[c.pk, a.pk])
    with pytest.raises(ValidationError):
        services.individual_ranking_set(membership=p0, axis_ids=[c.pk, b.pk])


def test_withdrawn_participant_is_excluded_from_results(discuss):
    from workshops import services as workshop_services

    a, b, c = _board(discuss)
    goto(discuss, 5)
    p0, p1, p2 = discuss.people
    for p, v in ((p0, 5), (p1, 4), (p2, 1)):
        services.rating_set(membership=p, axis_id=a.pk, value=v)
    workshop_services.membership_withdraw(membership=p2)
    dist = {row["name"]: row for row in selectors.likert_distribution(discuss.workshop)}
    assert dist["Bias"]["counts"] == [0, 0, 0, 1, 1] and dist["Bias"]["n"] == 2
    assert "P03" not in [r["participant"] for r in selectors.consensus_shift(discuss.workshop)["rows"]]
    late = make_participant(discuss.workshop)
    assert late.pseudonym != p2.pseudonym


def test_consensus_shift_counts_converged_participants(discuss):
    p0, p1, p2 = discuss.people
    goto(discuss, 1)
    services.picks_save(membership=p0, picks=[{"name": "Accuracy", "definition": "facts"}, {"name": "Bias", "definition": "x"}])
    services.picks_save(membership=p1, picks=[{"name": "Bias", "definition": "x"}, {"name": "Accuracy", "definition": "y"}])
    goto(discuss, 4)
    p0_picks = {p.name: p for p in Pick.objects.filter(membership=p0)}
    p1_picks = {p.name: p for p in Pick.objects.filter(membership=p1)}
    bias = services.axis_create(membership=p0, name="Bias", pick_id=p0_picks["Bias"].pk)
    acc = services.axis_create(membership=p0, name="Accuracy", pick_id=p0_picks["Accuracy"].pk)
    services.axis_merge(membership=p1, axis_ids=[services.axis_create(membership=p1, name="B", pick_id=p1_picks["Bias"].pk).pk], into_id=bias.pk)
    services.axis_merge(membership=p1, axis_ids=[services.axis_create(membership=p1, name="A", pick_id=p1_picks["Accuracy"].pk).pk], into_id=acc.pk)
    third = services.axis_create(membership=p2, name="Language")
    services.group_ranking_record(workshop=discuss.workshop, by=discuss.facilitator, axis_ids=[bias.pk, acc.pk, third.pk])
    goto(discuss, 5)
    # P01 started Accuracy-first and moved to the group's order; P02 started where the group ended.
    services.individual_ranking_set(membership=p0, axis_ids=[bias.pk, acc.pk, third.pk])
    services.individual_ranking_set(membership=p1, axis_ids=[bias.pk, acc.pk, third.pk])
    shift = selectors.consensus_shift(discuss.workshop)
    rows = {r["participant"]: r for r in shift["rows"]}
    assert rows[p0.pseudonym]["before_rho"] < rows[p0.pseudonym]["after_rho"] == 1.0
    assert rows[p0.pseudonym]["converged"] is True
    assert rows[p1.pseudonym]["converged"] is False
    assert rows[p2.pseudonym]["converged"] is None
    assert shift["group"]["converged"] == 1 and shift["group"]["comparable"] == 2
