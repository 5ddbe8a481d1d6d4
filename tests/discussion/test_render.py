"""The board rendered on the server (issue 14 §1): one partial for a card, used by the page,
the board's HTTP state and the broadcast; a change rendered once, whatever the number of
clients; participants' text escaped; withdrawn members never named."""

import pytest

from discussion import render, services
from tests.discussion.conftest import goto

pytestmark = pytest.mark.django_db


def url(d, path=""):
    return f"/w/{d.workshop.slug}/discuss/{path}"


def test_page_state_and_broadcast_render_the_same_card(discuss, client_for, monkeypatch):
    d = discuss
    goto(d, 4)
    calls = []
    real = render._render
    monkeypatch.setattr(render, "_render", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    axis = services.axis_create(membership=d.people[0], name="<b>Bias</b>", definition="One side <script>x</script>")
    assert calls == ["card"]  # rendered once for the change (every socket gets this text)
    html = axis.board_html
    assert f'id="card-{axis.pk}"' in html and "&lt;b&gt;Bias&lt;/b&gt;" in html and "<script>" not in html
    assert 'data-card-action="edit"' in html  # generic controls; an observer's browser drops them
    page = client_for(d.people[1]).get(url(d)).content.decode()
    assert f'id="card-{axis.pk}"' in page and "&lt;b&gt;Bias&lt;/b&gt;" in page
    observer = client_for(d.researcher).get(url(d)).content.decode()
    assert f'id="card-{axis.pk}"' in observer and 'data-card-action="edit"' not in observer
    state = client_for(d.people[1]).get(url(d, "state.json")).json()
    assert f'id="card-{axis.pk}"' in state["html"]["cards"] and state["cards"][0]["name"] == "<b>Bias</b>"

    calls.clear()
    edited = services.axis_update(membership=d.people[1], axis_id=axis.pk, name="Bias", definition="Both sides",
                                  version=axis.version)
    assert calls == ["card-text", "card-body", "card-meta"]  # a text edit: three small pieces, once
    assert f'id="card-def-{axis.pk}"' in edited.board_html and "Both sides" in edited.board_html
    assert "P01 · P02 · v2" in " ".join(edited.board_html.split())


def test_a_withdrawn_author_is_not_named_in_the_rendered_card(discuss):
    d = discuss
    goto(d, 4)
    axis = services.axis_create(membership=d.people[0], name="Bias", definition="One side")
    other = services.axis_create(membership=d.people[1], name="Balance", definition="Both")
    services.axis_comment(membership=d.people[0], axis_id=other.pk, text="P01 says hi")
    from workshops import services as workshop_services

    workshop_services.membership_withdraw(membership=d.people[0])
    services.axis_comment(membership=d.people[2], axis_id=other.pk, text="still here")
    from discussion import selectors
    from discussion.models import Axis

    html = render.card_html(selectors.card_data(Axis.objects.get(pk=other.pk)), "en")  # as the next change reads it
    assert "P01 says hi" not in html and "still here" in html
    assert not selectors.active_axes(d.workshop).filter(pk=axis.pk).exists()  # nobody else touched it: gone


def test_card_sources_name_their_kind_in_words_not_only_by_colour(discuss):
    """A code and an attribute of the same name both fed a card: each chip says what it is (a
    colour alone tells nothing to a screen reader or a colour-blind participant), translated."""
    from discussion import selectors
    from discussion.models import Axis, AxisSource
    from tests.discussion.conftest import add_code

    d = discuss
    goto(d, 4)
    member = d.people[0]
    axis = services.axis_create(membership=member, name="Bias", definition="One side")
    code = add_code(member, "Balance")
    AxisSource.objects.create(axis=axis, code=code, added_by=member)
    AxisSource.objects.create(axis=axis, attribute=d.attributes[(member.pk, "Balance")], added_by=member)
    card = selectors.card_data(Axis.objects.get(pk=axis.pk))
    html = " ".join(render.card_html(card, "en").split())
    assert "initial code:</span> <bdi class=\"user-text\">Balance</bdi>" in html
    assert "attribute:</span> <bdi class=\"user-text\">Balance</bdi>" in html
    hindi = render.card_html(card, "hi")
    assert "प्रारंभिक कोड:" in hindi and "गुण:" in hindi
