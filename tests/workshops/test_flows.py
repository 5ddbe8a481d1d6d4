"""Stage machine, invites and joining, consent, withdrawal, Familiarize progress."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tests.factories import UserFactory, facilitator_of, make_participant, make_workshop
from workshops import selectors, services
from workshops.models import Invite, Membership, Role, Stage, StageChange

pytestmark = pytest.mark.django_db


def test_stage_moves_forward_and_back_and_is_logged():
    workshop = make_workshop()
    by = facilitator_of(workshop).user
    for stage in [Stage.INTERACT, Stage.REFLECT, Stage.INTERACT, Stage.DISCUSS, Stage.CLOSED]:
        services.workshop_set_stage(workshop=workshop, stage=stage, by=by)
    workshop.refresh_from_db()
    assert workshop.stage == Stage.CLOSED
    log = list(StageChange.objects.filter(workshop=workshop).order_by("changed_at", "id").values_list("from_stage", "to_stage"))
    assert log == [("familiarize", "interact"), ("interact", "reflect"), ("reflect", "interact"),
                   ("interact", "discuss"), ("discuss", "closed")]
    assert all(c.changed_by == by for c in StageChange.objects.filter(workshop=workshop))


def test_unknown_stage_is_refused():
    workshop = make_workshop()
    with pytest.raises(ValidationError):
        services.workshop_set_stage(workshop=workshop, stage="party", by=facilitator_of(workshop).user)
    workshop.refresh_from_db()
    assert workshop.stage == Stage.FAMILIARIZE


def _invite(workshop, **kwargs):
    return services.invite_create(workshop=workshop, role=kwargs.pop("role", Role.PARTICIPANT),
                                  by=facilitator_of(workshop).user, **kwargs)


def _signup(client, invite, display="Anjali", agree=True):
    """Join by the invite link alone: a display name and the consent box."""
    data = {"display_name": display}
    if agree:
        data["agree"] = "on"
    return client.post(f"/join/{invite.token}/", data)


def _joined(workshop):
    return Membership.objects.filter(workshop=workshop).order_by("-id").first()


def test_join_with_invite_creates_account_membership_and_pseudonym(client):
    workshop = make_workshop()
    make_participant(workshop)  # P01 exists
    invite = _invite(workshop, max_uses=5)
    before = timezone.now()
    response = _signup(client, invite)
    assert response.status_code == 302
    assert response["Location"] == "/account/code/"
    membership = _joined(workshop)
    assert membership.pseudonym == "P02"
    assert membership.display_name == "Anjali"
    # Consent was given on the join page, with the text shown there.
    assert membership.consented_at >= before
    assert membership.consent_text_snapshot == workshop.consent_text
    # The account was made behind the scenes: nobody chose a username or a password.
    assert membership.user.username.startswith("member-")
    assert not membership.user.has_usable_password()
    invite.refresh_from_db()
    assert invite.uses == 1
    # Logged in, straight into the workshop.
    assert client.get(f"/w/{workshop.slug}/").status_code == 200


def test_join_without_consent_is_refused_and_keeps_what_was_typed(client):
    workshop = make_workshop()
    invite = _invite(workshop)
    users_before = UserFactory._meta.model.objects.count()
    response = _signup(client, invite, display="Zhang Wei 张伟", agree=False)
    body = response.content.decode()
    assert response.status_code == 200
    assert 'value="Zhang Wei 张伟"' in body
    assert "Tick the box" in body
    assert UserFactory._meta.model.objects.count() == users_before
    invite.refresh_from_db()
    assert invite.uses == 0


def test_display_name_is_optional(client):
    workshop = make_workshop()
    invite = _invite(workshop)
    assert _signup(client, invite, display="  ").status_code == 302
    assert _joined(workshop).display_name == ""


def test_consent_page_still_serves_members_added_without_consent(client):
    workshop = make_workshop()
    member = make_participant(workshop, consented=False)
    client.force_login(member.user)
    assert client.get(f"/w/{workshop.slug}/")["Location"] == f"/w/{workshop.slug}/consent/"
    response = client.post(f"/w/{workshop.slug}/consent/", {})
    assert response.status_code == 200
    assert "Tick the box" in response.content.decode()
    before = timezone.now()
    response = client.post(f"/w/{workshop.slug}/consent/", {"agree": "on"})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.consented_at >= before
    assert member.consent_text_snapshot == workshop.consent_text


@pytest.mark.parametrize("state,message,status", [
    ("expired", "expired", 410),
    ("used_up", "used as many times", 410),
    ("revoked", "revoked", 410),
    ("closed", "closed", 410),
])
def test_unusable_invites_are_refused_and_change_nothing(client, state, message, status):
    workshop = make_workshop()
    invite = _invite(workshop, max_uses=1)
    if state == "expired":
        Invite.objects.filter(pk=invite.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    elif state == "used_up":
        Invite.objects.filter(pk=invite.pk).update(uses=1)
    elif state == "revoked":
        services.invite_revoke(invite=invite)
    elif state == "closed":
        services.workshop_set_stage(workshop=workshop, stage=Stage.CLOSED, by=facilitator_of(workshop).user)
    members_before = Membership.objects.filter(workshop=workshop).count()
    users_before = UserFactory._meta.model.objects.count()
    response = _signup(client, invite)
    assert response.status_code == status
    assert message in response.content.decode()
    assert Membership.objects.filter(workshop=workshop).count() == members_before
    assert UserFactory._meta.model.objects.count() == users_before


def test_second_join_with_same_link_is_refused(client):
    workshop = make_workshop()
    invite = _invite(workshop, max_uses=10)
    _signup(client, invite)
    user = _joined(workshop).user
    response = client.post(f"/join/{invite.token}/", {"display_name": "Again", "agree": "on"})
    assert response.status_code == 409
    assert "already joined" in response.content.decode()
    invite.refresh_from_db()
    assert invite.uses == 1
    assert Membership.objects.filter(workshop=workshop, user=user).count() == 1


def test_existing_user_joins_second_workshop_with_other_role(client):
    first = make_workshop()
    user = make_participant(first).user
    second = make_workshop()
    invite = _invite(second, role=Role.RESEARCHER)
    client.force_login(user)
    response = client.post(f"/join/{invite.token}/", {"display_name": "Dr R", "agree": "on"})
    assert response.status_code == 302
    assert response["Location"] == f"/w/{second.slug}/"
    roles = dict(Membership.objects.filter(user=user).values_list("workshop__slug", "role"))
    assert roles == {first.slug: Role.PARTICIPANT, second.slug: Role.RESEARCHER}
    assert Membership.objects.get(user=user, workshop=second).pseudonym == "R01"


def test_unknown_invite_token_is_404(client):
    assert client.get("/join/not-a-token/").status_code == 404


def test_invite_form_refuses_past_expiry_and_bad_uses(client):
    workshop = make_workshop()
    client.force_login(facilitator_of(workshop).user)
    response = client.post(f"/w/{workshop.slug}/invites/", {
        "role": "participant", "label": "Group <b>A</b>", "max_uses": "0",
        "expires_at": (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
    })
    body = response.content.decode()
    assert response.status_code == 200
    assert "between 1 and 1000" in body
    assert "must be in the future" in body
    assert 'value="Group &lt;b&gt;A&lt;/b&gt;"' in body
    assert not Invite.objects.filter(workshop=workshop).exists()


def test_facilitator_creates_and_revokes_invite(client):
    workshop = make_workshop()
    client.force_login(facilitator_of(workshop).user)
    response = client.post(f"/w/{workshop.slug}/invites/", {"role": "participant", "label": "Room 1", "max_uses": "30"})
    assert response.status_code == 302
    invite = Invite.objects.get(workshop=workshop)
    page = client.get(f"/w/{workshop.slug}/invites/").content.decode()
    assert f"/join/{invite.token}/" in page
    client.post(f"/w/{workshop.slug}/invites/{invite.id}/revoke/")
    invite.refresh_from_db()
    assert invite.revoked_at is not None
    assert invite.unusable_reason()


def test_withdrawal_is_recorded_and_excludes_data(client):
    workshop = make_workshop()
    stays = make_participant(workshop)
    leaves = make_participant(workshop)
    services.practice_code_add(membership=stays, code="kept code")
    services.practice_code_add(membership=leaves, code="withdrawn code")
    client.force_login(leaves.user)
    response = client.post(f"/w/{workshop.slug}/withdraw/", {"reason": "changed my mind"})
    assert response.status_code == 200  # the confirmation box was not ticked
    leaves.refresh_from_db()
    assert leaves.withdrawn_at is None
    response = client.post(f"/w/{workshop.slug}/withdraw/", {"reason": "changed my mind", "confirm": "on"})
    assert response.status_code == 200
    leaves.refresh_from_db()
    assert leaves.withdrawn_at is not None
    assert leaves.withdrawal.reason == "changed my mind"
    assert list(selectors.active_participants(workshop)) == [stays]
    assert [c.code for c in selectors.practice_codes_of_others(make_participant(workshop))] == ["kept code"]
    # The withdrawn participant can no longer open workshop pages.
    assert client.get(f"/w/{workshop.slug}/familiarize/").status_code == 403
    assert selectors.dashboard_summary(workshop)["withdrawn"] == 1


def test_familiarize_progress_through_pages(client):
    workshop = make_workshop()
    participant = make_participant(workshop)
    client.force_login(participant.user)
    assert client.post(f"/w/{workshop.slug}/familiarize/").status_code == 302
    # Done without a code is refused.
    response = client.post(f"/w/{workshop.slug}/familiarize/practice/", {"done": "1"})
    assert "at least one code" in response.content.decode()
    # Empty and oversized codes are refused next to the field.
    response = client.post(f"/w/{workshop.slug}/familiarize/practice/", {"code": "   "})
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    response = client.post(f"/w/{workshop.slug}/familiarize/practice/", {"code": "x" * 150})
    assert "under 120 characters" in response.content.decode()
    text = workshop.practice_text
    start = text.index("Everyone loves")
    response = client.post(f"/w/{workshop.slug}/familiarize/practice/", {
        "code": "<script>alert(1)</script> overclaims", "start": start, "end": start + 24})
    assert response.status_code == 302
    code = participant.practice_codes.get()
    assert code.excerpt == text[start:start + 24]
    page = client.get(f"/w/{workshop.slug}/familiarize/practice/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; overclaims" in page
    assert "<script>alert(1)" not in page
    client.post(f"/w/{workshop.slug}/familiarize/practice/", {"done": "1"})
    page = client.get(f"/w/{workshop.slug}/familiarize/practice/").content.decode()
    assert "How others might have coded it" in page
    questions = list(workshop.readiness_questions.all())
    wrong = {f"q{q.id}": (q.correct_choice + 1) % len(q.choices) for q in questions}
    response = client.post(f"/w/{workshop.slug}/familiarize/readiness/", wrong)
    assert "try again" in response.content.decode()
    participant.refresh_from_db()
    assert participant.readiness_passed_at is None
    right = {f"q{q.id}": q.correct_choice for q in questions}
    client.post(f"/w/{workshop.slug}/familiarize/readiness/", right)
    participant.refresh_from_db()
    assert participant.orientation_done_at and participant.practice_done_at and participant.readiness_passed_at
    assert participant.readiness_attempts.count() == 2


def test_readiness_refuses_missing_and_out_of_range_answers(client):
    workshop = make_workshop()
    participant = make_participant(workshop)
    client.force_login(participant.user)
    q = workshop.readiness_questions.first()
    response = client.post(f"/w/{workshop.slug}/familiarize/readiness/", {f"q{q.id}": "99"})
    assert "Choose an answer" in response.content.decode()
    assert participant.readiness_attempts.count() == 0


def test_orientation_markdown_is_sanitised(client):
    workshop = make_workshop()
    services.workshop_update(workshop=workshop, orientation_md="# Hello\n\n<script>alert('x')</script>\n\n[link](javascript:alert(1))")
    participant = make_participant(workshop)
    client.force_login(participant.user)
    page = client.get(f"/w/{workshop.slug}/familiarize/").content.decode()
    assert "<h1>Hello</h1>" in page
    assert "<script>alert('x')</script>" not in page
    assert "href=\"javascript:" not in page


def test_dashboard_shows_progress(client):
    workshop = make_workshop()
    participant = make_participant(workshop, name="Visible <i>Name</i>")
    services.orientation_complete(membership=participant)
    client.force_login(facilitator_of(workshop).user)
    page = client.get(f"/w/{workshop.slug}/dashboard/").content.decode()
    assert participant.pseudonym in page
    assert "Visible &lt;i&gt;Name&lt;/i&gt;" in page
    partial = client.get(f"/w/{workshop.slug}/dashboard/", HTTP_HX_REQUEST="true").content.decode()
    assert partial.strip().startswith('<div id="progress"')
    assert "1 read the orientation" in partial


def test_security_headers_present(client):
    response = client.get("/login/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert response["X-Frame-Options"] == "DENY"


def test_csrf_is_enforced():
    from django.test import Client

    workshop = make_workshop()
    client = Client(enforce_csrf_checks=True)
    client.force_login(facilitator_of(workshop).user)
    response = client.post(f"/w/{workshop.slug}/stage/", {"stage": "interact"})
    assert response.status_code == 403
    workshop.refresh_from_db()
    assert workshop.stage == Stage.FAMILIARIZE


def test_login_attempts_are_throttled(client, settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    user = UserFactory(username="target")
    for _ in range(3):
        client.post("/login/", {"username": "target", "password": "wrong"})
    response = client.post("/login/", {"username": "target", "password": "correct-horse-battery-9"})
    assert response.status_code == 429
    assert "Too many" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert user.pk


def _participant_home(client, workshop) -> str:
    """The workshop's home page as a new participant sees it."""
    client.force_login(make_participant(workshop).user)
    return client.get(f"/w/{workshop.slug}/").content.decode()


@pytest.mark.parametrize(("language", "direction"), [("ar", "rtl"), ("hi", "ltr")])
def test_workshop_pages_use_the_workshop_language_and_direction(client, language, direction):
    page = _participant_home(client, make_workshop(language=language))
    assert f'<html lang="{language}" dir="{direction}">' in page


@pytest.mark.parametrize("text", ["इतिहास में पक्षपात", "历史观点偏颇", "تحيز استعماري", "bias 🙂 <b>x</b>"])
def test_participant_text_in_any_script_round_trips(client, text):
    workshop = make_workshop()
    participant = make_participant(workshop, name=text)
    client.force_login(participant.user)
    client.post(f"/w/{workshop.slug}/familiarize/practice/", {"code": text})
    assert participant.practice_codes.get().code == text
    client.force_login(facilitator_of(workshop).user)
    dashboard = client.get(f"/w/{workshop.slug}/dashboard/").content.decode()
    from django.utils.html import escape

    assert escape(text) in dashboard


def test_a_hindi_workshop_speaks_hindi(client):
    workshop = make_workshop(language="hi")
    page = _participant_home(client, workshop)
    assert "परिचय पढ़ें" in page  # "Read the orientation"
    assert "इस कार्यशाला से हटें" in page  # "Withdraw from this workshop"
    # The built-in readiness check was written in the workshop's language at creation.
    assert workshop.readiness_questions.first().prompt == "किसी उत्तर के लिए इनमें से सबसे उपयोगी कोड कौन सा है?"


def test_practice_points_out_codes_that_only_describe_form(client):
    workshop = make_workshop()
    participant = make_participant(workshop)
    client.force_login(participant.user)
    client.post(f"/w/{workshop.slug}/familiarize/practice/", {"code": "Summary"})
    page = client.get(f"/w/{workshop.slug}/familiarize/practice/").content.decode()
    assert "only describes the form of the answer" in page
    client.post(f"/w/{workshop.slug}/familiarize/practice/{participant.practice_codes.get().id}/delete/")
    client.post(f"/w/{workshop.slug}/familiarize/practice/", {"code": "ignores the Friday diet"})
    page = client.get(f"/w/{workshop.slug}/familiarize/practice/").content.decode()
    assert "only describes the form" not in page


def test_socket_membership_follows_the_page_rules():
    workshop = make_workshop()
    consented = make_participant(workshop)
    pending = make_participant(workshop, consented=False)
    gone = make_participant(workshop)
    services.membership_withdraw(membership=gone)
    assert selectors.socket_membership(consented.user, workshop.slug) == consented
    assert selectors.socket_membership(pending.user, workshop.slug) is None
    assert selectors.socket_membership(gone.user, workshop.slug) is None
    assert selectors.socket_membership(consented.user, make_workshop().slug) is None
