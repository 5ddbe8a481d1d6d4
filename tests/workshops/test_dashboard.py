"""The facilitator sees who is stuck: where each participant is, last activity, who is behind,
sort and filter; activity is recorded cheaply; moving the stage is confirmed."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import facilitator_of, make_conversation, make_participant, make_workshop
from workshops import selectors, services
from workshops.models import Membership, Stage

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _pass_readiness(m):
    services.orientation_complete(membership=m)
    services.practice_code_add(membership=m, code="names a place")
    services.practice_complete(membership=m)
    questions = list(m.workshop.readiness_questions.all())
    services.readiness_submit(membership=m, answers={q.id: q.correct_choice for q in questions})


def _seen(m, minutes_ago, page=""):
    Membership.objects.filter(pk=m.pk).update(last_seen_at=timezone.now() - timedelta(minutes=minutes_ago),
                                              last_seen_page=page)


@pytest.fixture
def group():
    """Familiarize: four participants, three ready; P04 is on the practice page."""
    workshop = make_workshop()
    people = [make_participant(workshop) for _ in range(4)]
    for m in people[:3]:
        _pass_readiness(m)
    services.orientation_complete(membership=people[3])
    for m in people:
        _seen(m, 1)
    return workshop, people


def _row(board, pseudonym):
    return next(r for r in board["rows"] if r.membership.pseudonym == pseudonym)


# --- Selectors ------------------------------------------------------------------------------------


def test_the_one_not_done_while_most_are_is_behind_and_sorted_first(group):
    workshop, people = group
    board = selectors.dashboard(workshop)
    assert board["goal"] == "passed the readiness check"
    assert board["summary"] == {"participants": 4, "done": 3, "counted": 4, "behind": 1, "idle": 0, "withdrawn": 0}
    p04 = _row(board, "P04")
    assert p04.behind and p04.done is False
    assert p04.step == "Practice"
    assert p04.reasons == ["3 of 4 are done"]
    assert board["rows"][0] is p04  # "needs help first" is the default order
    assert all(not r.behind and r.done for r in board["rows"][1:])
    assert _row(board, "P01").step == "Ready: passed the readiness check"


def test_idle_and_not_done_is_behind_even_when_most_are_not_done():
    workshop = make_workshop()
    busy, idle, fresh = (make_participant(workshop) for _ in range(3))
    _seen(busy, 1)
    _seen(idle, 14, page="workshops:practice")
    _seen(fresh, 3)
    board = selectors.dashboard(workshop)
    assert board["summary"]["done"] == 0
    row = _row(board, idle.pseudonym)
    assert row.behind and row.long_idle
    assert row.idle_text == "idle 14 min"
    assert row.reasons == ["idle 14 min"]
    assert row.page == "Practice"
    assert _row(board, busy.pseudonym).idle_text == "active now"
    assert not _row(board, busy.pseudonym).behind and not _row(board, fresh.pseudonym).behind
    assert _row(board, fresh.pseudonym).idle_text == "idle 3 min"


def test_done_and_withdrawn_people_are_never_behind(group):
    workshop, people = group
    _seen(people[0], 45)  # done, then idle: waiting, not stuck
    services.membership_withdraw(membership=people[3])
    board = selectors.dashboard(workshop)
    assert board["summary"]["behind"] == 0
    assert board["rows"][-1].membership == people[3]  # withdrawn last
    assert board["rows"][-1].step == "Withdrawn"


@pytest.mark.parametrize("minutes,text", [(0, "active now"), (6, "idle 6 min"), (65, "idle 1 h 5 min"),
                                          (120, "idle 2 h"), (60 * 50, "idle 2 days")])
def test_idle_text(minutes, text):
    assert selectors.idle_text(timedelta(minutes=minutes, seconds=5)) == text


def test_sort_and_filter(group):
    workshop, people = group
    _seen(people[1], 30)
    board = selectors.dashboard(workshop, sort="idle")
    assert [r.membership.pseudonym for r in board["rows"]][0] == "P02"
    board = selectors.dashboard(workshop, sort="pseudonym")
    assert [r.membership.pseudonym for r in board["rows"]] == ["P01", "P02", "P03", "P04"]
    board = selectors.dashboard(workshop, show="behind")
    assert [r.membership.pseudonym for r in board["rows"]] == ["P04"]
    board = selectors.dashboard(workshop, query="p03")
    assert [r.membership.pseudonym for r in board["rows"]] == ["P03"]
    board = selectors.dashboard(workshop, sort="'; drop", show="<x>", view="nope")
    assert (board["sort"], board["show"], board["view"]) == ("needs", "all", "stage")


def test_interact_status_and_tokens_are_explained():
    from llm_gateway.models import Message, MessageRole, MessageStatus

    workshop = make_workshop(stage=Stage.INTERACT)
    chatty, cut_off, silent = (make_participant(workshop) for _ in range(3))
    make_conversation(chatty, turns=[("Who built the Red Fort?", "Shah Jahan.")])
    Message.objects.filter(conversation__owner=chatty, role=MessageRole.ASSISTANT).update(
        prompt_tokens=20, completion_tokens=5)
    conv = make_conversation(cut_off, turns=[("Tell me about 1857", "The revolt")])
    conv.messages.filter(role=MessageRole.ASSISTANT).update(status=MessageStatus.INTERRUPTED)
    board = selectors.dashboard(workshop)
    assert board["goal"] == "sent a message to a model"
    assert _row(board, chatty.pseudonym).cells == [("Conversations", 1), ("Messages sent", 1), ("Tokens", "25")]
    tokens = dict(_row(board, cut_off.pseudonym).cells)["Tokens"]
    assert tokens == "0 (1 answer not counted)"  # was "—?"
    assert _row(board, silent.pseudonym).step == "Has not sent a message yet"
    assert _row(board, silent.pseudonym).behind  # two of three have sent one


def test_reflect_status():
    from tests.discussion.conftest import build

    d = build(stage="reflect")
    board = selectors.dashboard(d.workshop)
    # Everyone in the fixture has codes and attributes and no baseline conversations exist.
    assert board["goal"] == "coded the baseline conversations and defined an attribute"
    assert [r.step for r in board["rows"]] == ["Focused coding · 2 attributes"] * 3
    assert all(r.done for r in board["rows"])
    # A baseline conversation nobody has coded yet: nobody is done.
    make_conversation(d.facilitator, turns=[("Was Ashoka great?", "Historians differ.")], is_baseline=True)
    board = selectors.dashboard(d.workshop)
    assert [r.step for r in board["rows"]] == ["Focused coding · 2 attributes · baseline 0/1"] * 3
    assert not any(r.done for r in board["rows"])


def test_discuss_status_follows_the_segment():
    from discussion import services as discussion_services
    from discussion.models import Segment
    from tests.discussion.conftest import build

    d = build()
    board = selectors.dashboard(d.workshop)
    assert board["goal"] == "" and all(r.done is None and not r.behind for r in board["rows"])
    discussion_services.session_set_segment(workshop=d.workshop, by=d.facilitator, segment=Segment.TOP_THREE)
    discussion_services.picks_save(membership=d.people[0], picks=[{"name": "Bias", "definition": "One side"}])
    discussion_services.picks_save(membership=d.people[1], picks=[{"name": "Nuance", "definition": "Both sides"}])
    board = selectors.dashboard(d.workshop)
    assert board["goal"] == "saved a top three"
    last = _row(board, d.people[2].pseudonym)
    assert last.behind and last.step == "Top three: not saved yet"
    assert _row(board, d.people[0].pseudonym).step == "Top three: 1 pick saved"


@pytest.mark.parametrize("stage", [Stage.FAMILIARIZE, Stage.INTERACT, Stage.REFLECT, Stage.DISCUSS, Stage.CLOSED])
def test_dashboard_queries_do_not_grow_with_the_group(client, stage):
    workshop = make_workshop(stage=stage)
    client.force_login(facilitator_of(workshop).user)
    counts = []
    for n in (3, 30):
        while workshop.memberships.filter(role="participant").count() < n:
            m = make_participant(workshop)
            make_conversation(m, turns=[("Q", "A")])
        with CaptureQueriesContext(connection) as queries:
            for view in ("stage", "all"):
                assert client.get(f"/w/{workshop.slug}/dashboard/?view={view}").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


# --- Recording activity ----------------------------------------------------------------------------


def test_membership_seen_writes_at_most_once_a_minute_per_page():
    workshop = make_workshop()
    m = make_participant(workshop)
    now = timezone.now()
    assert services.membership_seen(membership=m, page="workshops:practice", now=now)
    with CaptureQueriesContext(connection) as queries:
        assert not services.membership_seen(membership=m, page="workshops:practice", now=now + timedelta(seconds=30))
        assert not services.membership_seen(membership=m, now=now + timedelta(seconds=59))
    assert not [q for q in queries.captured_queries if "UPDATE" in q["sql"]]
    assert services.membership_seen(membership=m, page="workshops:readiness", now=now + timedelta(seconds=40))
    assert services.membership_seen(membership=m, now=now + timedelta(seconds=101))
    # A stale copy (another request loaded the row earlier) does not write twice.
    stale = Membership.objects.get(pk=m.pk)
    stale.last_seen_at = now
    assert not services.membership_seen(membership=stale, now=now + timedelta(seconds=110))
    m.refresh_from_db()
    assert m.last_seen_at == now + timedelta(seconds=101)
    assert m.last_seen_page == "workshops:readiness"


def _membership_updates(queries):
    return [q for q in queries.captured_queries if q["sql"].startswith('UPDATE "workshops_membership"')]


def test_pages_record_activity_without_a_write_per_request(client):
    workshop = make_workshop()
    m = make_participant(workshop)
    client.force_login(m.user)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert client.get(f"/w/{workshop.slug}/familiarize/").status_code == 200
    assert len(_membership_updates(queries)) == 1
    m.refresh_from_db()
    assert m.last_seen_page == "workshops:orientation"
    first = m.last_seen_at
    assert first is not None

    # Live refreshes (htmx GETs) are not activity; a POST is, but within the minute costs nothing.
    Membership.objects.filter(pk=m.pk).update(last_seen_at=first - timedelta(minutes=9))
    client.get(f"/w/{workshop.slug}/familiarize/practice/", HTTP_HX_REQUEST="true")
    m.refresh_from_db()
    assert m.last_seen_at == first - timedelta(minutes=9)
    client.post(f"/w/{workshop.slug}/familiarize/practice/", {"code": "colonial lens"})
    m.refresh_from_db()
    assert m.last_seen_at > first
    assert m.last_seen_page == "workshops:orientation"  # a POST does not change the page


def test_board_commands_are_activity_but_heartbeats_are_not():
    from discussion.consumers import _run
    from tests.discussion.conftest import build

    d = build()
    m = d.people[0]
    _seen(m, 20)
    _run(m.pk, "chan-1", "ping", {})
    m.refresh_from_db()
    assert timezone.now() - m.last_seen_at > timedelta(minutes=19)
    _run(m.pk, "chan-1", "editing", {"id": None})
    m.refresh_from_db()
    assert timezone.now() - m.last_seen_at < timedelta(minutes=1)


# --- Views ----------------------------------------------------------------------------------------


def test_dashboard_page_shows_steps_markers_and_filters(client, group):
    workshop, people = group
    _seen(people[3], 12, page="workshops:practice")
    client.force_login(facilitator_of(workshop).user)
    page = client.get(f"/w/{workshop.slug}/dashboard/").content.decode()
    assert '<form method="get" action="/w/%s/dashboard/" class="dash-filters"' % workshop.slug in page
    assert 'data-pseudonym="P04" data-behind' in page
    assert "idle 12 min" in page and "on Practice" in page
    assert "3 of 4 passed the readiness check" in page
    partial = client.get(f"/w/{workshop.slug}/dashboard/?show=behind&sort=pseudonym",
                         HTTP_HX_REQUEST="true").content.decode()
    assert partial.strip().startswith('<div id="progress" hx-get="/w/%s/dashboard/?show=behind&amp;sort=pseudonym"'
                                      % workshop.slug)
    assert 'data-pseudonym="P04"' in partial and 'data-pseudonym="P01"' not in partial
    hidden = client.get(f"/w/{workshop.slug}/dashboard/?names=hide").content.decode()
    assert people[0].display_name not in hidden.split('id="progress"')[1]
    for bad in ["?sort=%00", "?show=" + "x" * 5000, "?view=all&q=%3Cscript%3E"]:
        response = client.get(f"/w/{workshop.slug}/dashboard/{bad}")
        assert response.status_code == 200
        assert "<script>" not in response.content.decode().split('id="progress"')[1]


def test_dashboard_has_no_unexplained_token_marks(client):
    from llm_gateway.models import MessageRole, MessageStatus

    workshop = make_workshop(stage=Stage.INTERACT)
    m = make_participant(workshop)
    make_conversation(m, turns=[("Q", "A")]).messages.filter(role=MessageRole.ASSISTANT).update(
        status=MessageStatus.FAILED)
    client.force_login(facilitator_of(workshop).user)
    page = client.get(f"/w/{workshop.slug}/dashboard/").content.decode()
    assert "—?" not in page and "(+?)" not in page
    assert "1 answer not counted" in page
    assert "has no count" in page  # the legend says why


def test_stage_change_is_confirmed_with_what_participants_see_and_who_is_not_done(client, group):
    workshop, people = group
    client.force_login(facilitator_of(workshop).user)
    url = f"/w/{workshop.slug}/stage/"
    page = client.get(url, {"stage": "interact"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "Move from Familiarize to Interact?" in text
    assert "1 of 4 participants has not yet passed the readiness check:" in text and "P04" in text
    assert "The chat with the workshop&#x27;s models opens" in text
    assert "The practice round and the readiness check close" in text
    workshop.refresh_from_db()
    assert workshop.stage == Stage.FAMILIARIZE

    # A POST without the confirmation (an old form, a script) only shows the page.
    assert client.post(url, {"stage": "interact"}).status_code == 200
    workshop.refresh_from_db()
    assert workshop.stage == Stage.FAMILIARIZE

    response = client.post(url, {"stage": "interact", "from_stage": "familiarize", "confirm": "1"})
    assert response.status_code == 302
    workshop.refresh_from_db()
    assert workshop.stage == Stage.INTERACT

    # Confirmed against a stage that has changed meanwhile: asked again, nothing moves.
    response = client.post(url, {"stage": "reflect", "from_stage": "familiarize", "confirm": "1"})
    assert response.status_code == 200
    assert "The stage was changed meanwhile" in response.content.decode()
    workshop.refresh_from_db()
    assert workshop.stage == Stage.INTERACT

    back = client.get(url, {"stage": "familiarize"}).content.decode()
    assert "moves the workshop back" in back
    assert "already in Interact" in client.get(url, {"stage": "interact"}).content.decode()
    assert client.get(url, {"stage": "party"}).status_code == 302
    assert client.put(url).status_code == 405
