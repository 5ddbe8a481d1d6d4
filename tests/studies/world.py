"""Two workshops of one study (the CALMA pilot's two groups, seed paper Table 2), each with final
axes made through the discussion services, a group ranking and Likert ratings."""

from __future__ import annotations

from discussion import services as discussion_services
from studies import services as study_services
from tests.discussion.conftest import build, goto
from tests.factories import make_participant

# (name, definition) per group: Table 2 of the seed paper, shortened.
GROUP_A = [
    ("Bias", "Favouring one side's account of history, e.g. colonial or Western views over Indian ones"),
    ("Accuracy", "Facts, dates and events are correct"),
    ("Age-appropriate language", "Simple words a high-school student understands"),
]
GROUP_B = [
    ("Religious and political bias", "Taking sides on religion or politics in the account of history"),
    ("Factual correctness", "Dates and facts are right and checkable"),
    ("Empathy", "Acknowledges how the events affected people"),
]


def add_final_axes(d, axes: list[tuple[str, str]]):
    """Final axes on the board (segment 4), the group's ranking, and every participant's Likert rating."""
    goto(d, 4)
    made = [discussion_services.axis_create(membership=d.facilitator, name=n, definition=t) for n, t in axes]
    discussion_services.group_ranking_record(workshop=d.workshop, by=d.facilitator, axis_ids=[a.pk for a in made])
    goto(d, 5)
    for i, person in enumerate(d.people):
        person.workshop = d.workshop
        for j, axis in enumerate(made):
            discussion_services.rating_set(membership=person, axis_id=axis.pk, value=1 + (i + j) % 5)
    return made


def two_groups(*, participants: int = 2):
    a = build(stage="discuss", participants=participants)
    b = build(stage="discuss", participants=participants)
    study = study_services.study_create(title="History assistant", slug=f"history-{a.workshop.pk}",
                                        by=a.facilitator.user, workshops=[a.workshop])
    # b's facilitator adds their workshop; the researcher of a gets study-wide access.
    study_services.study_add_workshop(study=study, workshop=b.workshop, by=b.facilitator.user)
    study_services.study_grant(study=study, user=a.researcher.user, by=a.facilitator.user)
    a.axes = add_final_axes(a, GROUP_A)
    b.axes = add_final_axes(b, GROUP_B)
    return study, a, b


def withdrawn_participant(workshop):
    from workshops import services as workshop_services

    person = make_participant(workshop)
    workshop_services.membership_withdraw(membership=person, reason="")
    return person
