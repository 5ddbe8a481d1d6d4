"""Who may open the session pages, in which stage, and what each segment shows."""

import pytest

from discussion import services
from tests.discussion.conftest import build, goto

pytestmark = pytest.mark.django_db


def url(d, path=""):
    return f"/w/{d.workshop.slug}/discuss/{path}"


def test_session_page_is_for_members_in_the_discuss_stage(client_for):
    d = build(stage="reflect")
    assert client_for(d.people[0]).get(url(d)).status_code == 403  # not open now
    assert client_for(d.facilitator).get(url(d)).status_code == 200  # staff are never stage-blocked
    other = build()
    assert client_for(other.people[0]).get(url(d)).status_code == 404


def test_each_segment_renders_its_content(discuss, client_for):
    d = discuss
    p = client_for(d.people[0])
    assert "has not started" in p.get(url(d)).content.decode()
    goto(d, 1)
    page = p.get(url(d)).content.decode()
    assert "Save my top three" in page and 'id="attribute-definitions"' in page
    goto(d, 2)
    assert 'id="affinity-map"' in p.get(url(d)).content.decode()
    goto(d, 3)
    services.session_set_spotlight(workshop=d.workshop, by=d.facilitator, membership_id=d.people[1].pk)
    assert "P02 presents their top three" in p.get(url(d)).content.decode()
    goto(d, 4)
    page = p.get(url(d)).content.decode()
    assert 'id="board"' in page and 'id="vote-form"' in page and 'id="ranking-form"' not in page
    assert 'id="ranking-form"' in client_for(d.facilitator).get(url(d)).content.decode()
    observer = client_for(d.researcher).get(url(d)).content.decode()
    assert "You are observing" in observer and 'id="card-new"' not in observer
    goto(d, 5)
    assert "The group has no axes on the board." in client_for(d.people[0]).get(url(d)).content.decode()


def test_facilitator_controls_over_http_and_participants_refused(discuss, client_for):
    d = discuss
    response = client_for(d.people[0]).post(url(d, "control/"), {"action": "segment", "value": "3"})
    assert response.status_code == 403
    response = client_for(d.facilitator).post(url(d, "control/"), {"action": "segment", "value": "3"})
    assert response.status_code == 302
    d.workshop.discussion.refresh_from_db()
    assert d.workshop.discussion.segment == 3
    client_for(d.facilitator).post(url(d, "control/"), {"action": "timer", "value": "5"})
    page = client_for(d.facilitator).get(url(d), {"partial": "header"}, HTTP_HX_REQUEST="true").content.decode()
    assert "data-ends-at" in page and "<html" not in page


def test_the_live_parts_of_a_segment_are_drawn_alone(discuss, client_for):
    d = discuss
    fac = client_for(d.facilitator)
    goto(d, 1)
    picks = fac.get(url(d), {"partial": "picks"}, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="picks-overview"' in picks and "<html" not in picks
    goto(d, 3)
    services.session_set_spotlight(workshop=d.workshop, by=d.facilitator, membership_id=d.people[1].pk)
    spotlight = fac.get(url(d), {"partial": "spotlight"}, HTTP_HX_REQUEST="true").content.decode()
    assert "P02 presents their top three" in spotlight and "<html" not in spotlight


def test_ratings_form_submits_likert_and_ranking(discuss, client_for):
    d = discuss
    goto(d, 4)
    a = services.axis_create(membership=d.people[0], name="<b>Bias</b>", definition="<script>alert(1)</script>")
    b = services.axis_create(membership=d.people[0], name="Balance")
    goto(d, 5)
    c = client_for(d.people[1])
    page = c.get(url(d)).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    bad = c.post(url(d, "ratings/"), {f"likert_{a.pk}": "7", f"likert_{b.pk}": "3", f"rank_{a.pk}": "1", f"rank_{b.pk}": "2"})
    assert bad.status_code == 302 and not d.people[1].likert_ratings.exists()
    same_rank = c.post(url(d, "ratings/"), {f"likert_{a.pk}": "4", f"likert_{b.pk}": "3", f"rank_{a.pk}": "1", f"rank_{b.pk}": "1"})
    assert same_rank.status_code == 302 and not d.people[1].likert_ratings.exists()
    ok = c.post(url(d, "ratings/"), {f"likert_{a.pk}": "4", f"likert_{b.pk}": "3", f"rank_{a.pk}": "2", f"rank_{b.pk}": "1"})
    assert ok.status_code == 302
    assert dict(d.people[1].likert_ratings.values_list("axis_id", "value")) == {a.pk: 4, b.pk: 3}
    assert list(d.people[1].axis_ranks.order_by("rank").values_list("axis_id", flat=True)) == [b.pk, a.pk]


def test_dashboard_shows_discuss_progress_and_home_links(discuss, client_for):
    d = discuss
    goto(d, 1)
    services.picks_save(membership=d.people[0], picks=[{"name": "Bias", "definition": "One-sided"}])
    page = client_for(d.facilitator).get(f"/w/{d.workshop.slug}/dashboard/").content.decode()
    assert "Top-three picks" in page and "Axis ratings" in page
    home = client_for(d.people[1]).get(f"/w/{d.workshop.slug}/").content.decode()
    assert "Join the group discussion" in home and url(d) in home
    staff = client_for(d.researcher).get(f"/w/{d.workshop.slug}/").content.decode()
    assert url(d, "results/") in staff
