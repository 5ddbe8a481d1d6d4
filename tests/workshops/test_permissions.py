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
