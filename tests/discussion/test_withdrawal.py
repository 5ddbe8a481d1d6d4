"""Withdrawal on the board: a withdrawn member's cards, text, comments, excerpts and ratings are
gone from the board state, the results page, the report and both derived-axes exports."""

from __future__ import annotations

import json

import pytest

from discussion import selectors, services
from discussion.models import Axis, AxisStatus
from tests.discussion.conftest import goto
from workshops import services as workshop_services

pytestmark = pytest.mark.django_db

SECRETS = ("Untouched by anyone", "only W wrote this", "W named it so", "W defined it so", "W rewrote the name",
           "W rewrote the definition", "W comments privately", "W merged name", "W rewrote nothing yet")


@pytest.fixture
def board(discuss):
    d = discuss
    w, p1, p2 = d.people  # w withdraws later
    goto(d, 4)
    d.untouched = services.axis_create(membership=w, name="Untouched by anyone", definition="only W wrote this")
    d.voted = services.axis_create(membership=w, name="W named it so", definition="W defined it so")
    d.edited = services.axis_create(membership=w, name="W rewrote nothing yet", definition="W first definition")
    services.axis_update(membership=p1, axis_id=d.edited.pk, name="Group wording", definition="Said by P02",
                         version=d.edited.version)
    d.theirs = services.axis_create(membership=p1, name="P02 card", definition="P02 definition")
    services.axis_update(membership=w, axis_id=d.theirs.pk, name="W rewrote the name",
                         definition="W rewrote the definition", version=d.theirs.version)
    services.axis_comment(membership=w, axis_id=d.theirs.pk, text="W comments privately")
    services.axis_comment(membership=p2, axis_id=d.theirs.pk, text="P03 comment stays")
    # W attaches P03's highlighted excerpt to P02's card: the excerpt is W's doing, so it goes.
    d.attached = services.axis_add_example(membership=w, axis_id=d.theirs.pk,
                                           annotation_id=d.codes[(p2.pk, "diplomatic")].annotations.get().pk)
    # W's card merged by P03 into P03's card: the comment copied over starts with "[W's card name]".
    d.merge_src = services.axis_create(membership=w, name="W merged name", definition="")
    services.axis_comment(membership=p2, axis_id=d.merge_src.pk, text="P03 on the merged card")
    d.merge_into = services.axis_create(membership=p2, name="P03 target", definition="P03 target definition")
    services.axis_merge(membership=p2, axis_ids=[d.merge_src.pk], into_id=d.merge_into.pk)
    services.vote_set(membership=p2, axis_ids=[d.voted.pk, d.theirs.pk])
    services.vote_set(membership=w, axis_ids=[d.untouched.pk, d.theirs.pk])
    services.session_set_spotlight(workshop=d.workshop, by=d.facilitator, membership_id=w.pk)
    goto(d, 5)
    for axis in (d.voted, d.edited, d.theirs):
        services.rating_set(membership=w, axis_id=axis.pk, value=1)
        services.rating_set(membership=p1, axis_id=axis.pk, value=5)
    services.individual_ranking_set(membership=w, axis_ids=[d.untouched.pk, d.voted.pk])
    d.w = w
    return d


def _pages(d, client_for):
    slug = d.workshop.slug
    participant = d.people[1]
    yield "board state", json.dumps(client_for(participant).get(f"/w/{slug}/discuss/state.json").json(),
                                    ensure_ascii=False)
    yield "session", client_for(participant).get(f"/w/{slug}/discuss/").content.decode()
    yield "results", client_for(d.facilitator).get(f"/w/{slug}/discuss/results/").content.decode()
    yield "report", client_for(d.facilitator).get(f"/w/{slug}/discuss/report/").content.decode()
    csv_response = client_for(d.researcher).get(f"/w/{slug}/discuss/export/derived-axes.csv")
    yield "csv", b"".join(csv_response.streaming_content).decode()
    yield "json", json.dumps(client_for(d.researcher).get(f"/w/{slug}/discuss/export/derived-axes.json").json(),
                             ensure_ascii=False)


def test_before_withdrawal_everything_is_shown(board, client_for):
    """The check below is not vacuous: each secret is on some page while W is a member."""
    pages = dict(_pages(board, client_for))
    everything = "\n".join(pages.values())
    for secret in SECRETS:
        assert secret in everything, secret
    assert board.attached.excerpt in pages["board state"] and board.w.pseudonym in pages["board state"]


def test_withdrawn_members_text_is_gone_everywhere(board, client_for):
    d = board
    workshop_services.membership_withdraw(membership=d.w)
    for where, text in _pages(d, client_for):
        for secret in SECRETS:
            assert secret not in text, (where, secret)
        assert d.w.pseudonym not in text, where

    state = selectors.board_state(d.workshop, d.people[1])
    assert state["session"]["spotlight"] is None
    cards = {c["id"]: c for c in state["cards"]}
    # Nobody else touched it: off the board.
    assert d.untouched.pk not in cards
    assert Axis.objects.get(pk=d.untouched.pk).status == AxisStatus.ARCHIVED
    # Voted on by others: the group's card, without W's name or W's text.
    assert cards[d.voted.pk]["name"] == "(withdrawn)" and cards[d.voted.pk]["definition"] == "(withdrawn)"
    assert cards[d.voted.pk]["by"] is None and cards[d.voted.pk]["edited_by"] is None
    # Rewritten by P02 after W created it: P02's text stays, W is not named as its author.
    assert (cards[d.edited.pk]["name"], cards[d.edited.pk]["definition"]) == ("Group wording", "Said by P02")
    assert cards[d.edited.pk]["by"] is None and cards[d.edited.pk]["edited_by"] == "P02"
    # P02's card that W rewrote last: back to P02's own text; W's comment and attached excerpt gone.
    theirs = cards[d.theirs.pk]
    assert (theirs["name"], theirs["definition"]) == ("P02 card", "P02 definition")
    assert [c["text"] for c in theirs["comments"]] == ["P03 comment stays"]
    assert theirs["examples"] == []
    # The merged card's name was W's: the copied comment keeps P03's words only.
    assert [c["text"] for c in cards[d.merge_into.pk]["comments"]] == ["[(withdrawn)] P03 on the merged card"]
    # W's votes and ratings are not counted.
    assert {t["id"]: t["points"] for t in state["tally"]} == {d.voted.pk: 5, d.theirs.pk: 4}
    likert = {row["id"]: row for row in selectors.likert_distribution(d.workshop)}
    assert likert[d.voted.pk]["counts"] == [0, 0, 0, 0, 1]
    tree = {a["axis_id"]: a for a in selectors.axis_provenance(d.workshop)}
    assert d.untouched.pk not in tree and tree[d.voted.pk]["individual_rank_n"] == 0


def test_withdrawal_apply_is_idempotent_and_keeps_later_edits(board):
    d = board
    workshop_services.membership_withdraw(membership=d.w)
    before = {a.pk: (a.name, a.definition, a.version) for a in Axis.objects.filter(workshop=d.workshop)}
    outcome = services.withdrawal_apply(workshop=d.workshop)
    assert outcome == {"removed": [], "rewritten": []}
    assert {a.pk: (a.name, a.definition, a.version) for a in Axis.objects.filter(workshop=d.workshop)} == before
    # The group goes on with the card: a new edit is shown as written.
    goto(d, 4)
    voted = Axis.objects.get(pk=d.voted.pk)
    services.axis_update(membership=d.people[2], axis_id=voted.pk, name="Fairness", definition="Our words",
                         version=voted.version)
    card = selectors.card_data(Axis.objects.get(pk=voted.pk))
    assert (card["name"], card["definition"], card["edited_by"]) == ("Fairness", "Our words", "P03")


def test_withdrawal_of_someone_without_cards_changes_no_card(discuss):
    d = discuss
    goto(d, 4)
    axis = services.axis_create(membership=d.people[1], name="Kept", definition="As written")
    workshop_services.membership_withdraw(membership=d.people[0])
    assert (Axis.objects.get(pk=axis.pk).name, Axis.objects.get(pk=axis.pk).version) == ("Kept", axis.version)


def test_members_who_withdrew_before_the_hooks_existed_are_handled_by_the_command(board):
    from django.core.management import call_command
    from django.utils import timezone

    from workshops.models import Membership

    d = board
    Membership.objects.filter(pk=d.w.pk).update(withdrawn_at=timezone.now())  # as an old version did
    assert d.untouched.pk in {c["id"] for c in selectors.board_state(d.workshop, d.people[1])["cards"]}
    call_command("withdrawals_apply", workshop=d.workshop.slug)
    cards = {c["id"]: c for c in selectors.board_state(d.workshop, d.people[1])["cards"]}
    assert d.untouched.pk not in cards and cards[d.voted.pk]["name"] == "(withdrawn)"


def test_a_second_withdrawal_takes_the_second_members_text_off_a_placeholder_card(board):
    d = board
    workshop_services.membership_withdraw(membership=d.w)
    goto(d, 4)
    voted = Axis.objects.get(pk=d.voted.pk)
    assert voted.name == "(withdrawn)"
    second = d.people[2]
    services.axis_update(membership=second, axis_id=voted.pk, name=voted.name, definition="P03 secret wording",
                         version=voted.version)
    workshop_services.membership_withdraw(membership=second)
    card = selectors.card_data(Axis.objects.get(pk=voted.pk))
    assert (card["name"], card["definition"], card["edited_by"]) == ("(withdrawn)", "(withdrawn)", None)
