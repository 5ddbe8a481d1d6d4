"""The excerpt picker of a board card: what a member may browse, search and attach."""

import json

import pytest
from channels.db import database_sync_to_async
from django.core.exceptions import ValidationError

from discussion import selectors, services
from discussion.models import AxisExample, SessionEvent
from llm_gateway.models import Conversation
from tests.discussion.conftest import add_code, build, goto
from tests.discussion.test_consumers import app, connect, next_kind, reply_and_event, send  # noqa: F401
from tests.factories import facilitator_of, make_conversation

HOSTILE = "<img src=x onerror=alert(1)> Dates matter.\r\nSecond line: the Mughal court. Third one!"


def url(d, query=""):
    return f"/w/{d.workshop.slug}/discuss/excerpts/{query}"


def _setup(d):
    """A baseline conversation, a facilitator sandbox, and a card on the board."""
    goto(d, 4)
    d.baseline = make_conversation(facilitator_of(d.workshop), turns=[("Baseline question", HOSTILE)], is_baseline=True)
    d.sandbox = make_conversation(d.facilitator, turns=[("Sandbox", "Private facilitator sandbox text.")])
    Conversation.objects.filter(pk=d.sandbox.pk).update(is_sandbox=True)
    d.axis = services.axis_create(membership=d.people[0], name="Accuracy", definition="Facts are right")
    return d


@pytest.fixture
def picker(db):
    return _setup(build())


# --- selectors -----------------------------------------------------------------------------------


def test_sentences_cover_the_whole_text():
    text = selectors.picker_text(HOSTILE)
    spans = selectors.sentence_spans(text)
    assert "".join(text[s:e] for s, e in spans) == text
    assert [text[s:e].strip() for s, e in spans] == [
        "<img src=x onerror=alert(1)> Dates matter.", "Second line: the Mughal court.", "Third one!"]
    assert selectors.sentence_spans("") == []
    assert selectors.sentence_spans("no end") == [(0, 6)]


def test_participants_browse_their_own_and_the_baseline_transcripts(picker):
    d = picker
    p0, p1 = d.people[:2]
    own = d.answers[p0.pk].conversation
    browse = selectors.picker_browse(p0)
    conversations = {c["conversation"].pk for c in browse["conversations"]}
    assert conversations == {own.pk, d.baseline.pk}  # not P02's, not the facilitator's sandbox
    assert [r["highlight"].excerpt for r in browse["highlights"]] == ["Many historians differ on this"]
    assert browse["highlights"][0]["conversation"].pk == own.pk
    assert {c["conversation"].pk for c in selectors.picker_browse(d.facilitator)["conversations"]} == {
        d.answers[p.pk].conversation_id for p in d.people} | {d.baseline.pk}
    # Another participant's transcript and the sandbox cannot be opened.
    assert selectors.picker_transcript(p0, d.answers[p1.pk].conversation_id) is None
    assert selectors.picker_transcript(p0, d.sandbox.pk) is None
    assert selectors.picker_transcript(p0, "x") is None
    view = selectors.picker_transcript(p0, own.pk)
    answer = [t for t in view["turns"] if t["message"].role == "assistant"][0]
    assert [h.excerpt for h in answer["highlights"]] == ["Many historians differ on this"]
    assert "".join(s["text"] for s in answer["sentences"]) == d.answers[p0.pk].content


def test_search_finds_highlights_by_text_or_code_and_messages_by_text(picker):
    d = picker
    p0 = d.people[0]
    found = selectors.picker_browse(p0, q="COLONIAL")  # one of P01's codes on the highlight
    assert [r["highlight"].excerpt for r in found["highlights"]] == ["Many historians differ on this"]
    found = selectors.picker_browse(p0, q="mughal")
    assert found["highlights"] == []
    assert [m["message"].pk for m in found["matches"]] == [d.baseline.messages.get(role="assistant").pk]
    assert "Mughal court" in found["matches"][0]["snippet"]
    assert selectors.picker_browse(p0, q="sandbox")["matches"] == []  # the facilitator's sandbox stays out
    assert selectors.picker_browse(p0, q="Indian rulers")["matches"][0]["conversation"].owner_id == p0.pk


# --- the service -------------------------------------------------------------------------------------


def test_a_passage_by_offsets_becomes_an_example_once(picker):
    d = picker
    p1 = d.people[1]
    message = d.baseline.messages.get(role="assistant")
    text = selectors.picker_text(message.content)
    start = text.index("Second line")
    end = text.index("Third")
    example = services.axis_add_example(membership=p1, axis_id=d.axis.pk, message_id=message.pk, start=start, end=end)
    assert example.excerpt == "Second line: the Mughal court."
    assert example.message_id == message.pk and example.added_by == p1
    d.axis.refresh_from_db()
    version = d.axis.version
    again = services.axis_add_example(membership=p1, axis_id=d.axis.pk, message_id=message.pk, start=start, end=end)
    assert again.pk == example.pk
    d.axis.refresh_from_db()
    assert d.axis.version == version  # nothing changed, nothing broadcast
    assert SessionEvent.objects.filter(kind="card_example").count() == 1
    card = selectors.card_data(d.axis)
    assert [e["excerpt"] for e in card["examples"]] == ["Second line: the Mughal court."]


@pytest.mark.parametrize("start,end", [(5, 5), (-1, 4), (0, 10_000), ("0", 4), (True, 4), (None, 4), (0, 1.5)])
def test_bad_offsets_are_refused(picker, start, end):
    message = picker.baseline.messages.get(role="assistant")
    with pytest.raises(ValidationError):
        services.axis_add_example(membership=picker.people[0], axis_id=picker.axis.pk, message_id=message.pk,
                                  start=start, end=end)
    assert not AxisExample.objects.exists()


def test_blank_passage_is_refused(picker):
    conv = make_conversation(picker.people[0], turns=[("q", "One.   Two.")])
    answer = conv.messages.get(role="assistant")
    with pytest.raises(ValidationError):
        services.axis_add_example(membership=picker.people[0], axis_id=picker.axis.pk, message_id=answer.pk, start=4, end=7)


def test_no_passage_from_a_transcript_the_member_cannot_read(picker):
    d = picker
    p0, p1 = d.people[:2]
    others = d.answers[p1.pk]
    for message_id in (others.pk, d.sandbox.messages.get(role="assistant").pk, "abc", None):
        with pytest.raises(ValidationError):
            # Even with no excerpt (which would otherwise take the whole message).
            services.axis_add_example(membership=p0, axis_id=d.axis.pk, message_id=message_id)
    with pytest.raises(ValidationError):
        services.axis_add_example(membership=p0, axis_id=d.axis.pk, annotation_id="1; drop table")
    assert not AxisExample.objects.exists()
    # The facilitator reads every participant's transcripts.
    services.axis_add_example(membership=d.facilitator, axis_id=d.axis.pk, message_id=others.pk, start=0, end=10)


def test_own_highlight_attaches_from_the_picker(picker):
    d = picker
    p0 = d.people[0]
    highlight = selectors.picker_browse(p0)["highlights"][0]["highlight"]
    example = services.axis_add_example(membership=p0, axis_id=d.axis.pk, annotation_id=highlight.id)
    assert example.annotation_id == highlight.id and example.excerpt == highlight.excerpt


# --- the view ----------------------------------------------------------------------------------------


def test_picker_fragments_escape_text_and_keep_to_readable_transcripts(picker, client_for):
    d = picker
    p0, p1 = d.people[:2]
    add_code(p0, "<script>x()</script>", d.baseline.messages.get(role="assistant"), excerpt="Dates matter.")
    client = client_for(p0)
    page = client.get(url(d), HTTP_HX_REQUEST="true")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<html" not in html and 'id="picker-q"' in html
    assert "&lt;script&gt;x()&lt;/script&gt;" in html and "<script>x()" not in html
    assert f"conversation={d.baseline.pk}" in html and f"conversation={d.sandbox.pk}" not in html
    results = client.get(url(d, "?partial=results&q=mughal")).content.decode()
    assert 'id="picker-q"' not in results and "Mughal court" in results
    transcript = client.get(url(d, f"?conversation={d.baseline.pk}")).content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in transcript and "<img src=x" not in transcript
    assert 'role="checkbox"' in transcript and 'data-attach-passage="' in transcript
    assert "Attach this highlight" in transcript  # P01's highlight on the baseline answer
    assert client.get(url(d, f"?conversation={d.answers[p1.pk].conversation_id}")).status_code == 404
    assert client.get(url(d, f"?conversation={d.sandbox.pk}")).status_code == 404
    assert client.get(url(d, "?conversation=abc")).status_code == 400
    other = build()
    assert client_for(other.people[0]).get(url(d)).status_code == 404


def test_board_page_has_the_picker_dialog_except_for_observers(picker, client_for):
    d = picker
    page = client_for(d.people[0]).get(f"/w/{d.workshop.slug}/discuss/").content.decode()
    assert 'id="excerpt-picker"' in page and f'data-url="/w/{d.workshop.slug}/discuss/excerpts/"' in page
    assert 'id="excerpt-picker"' not in client_for(d.researcher).get(f"/w/{d.workshop.slug}/discuss/").content.decode()


# --- over the socket -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_attached_passage_reaches_every_member_live():
    d = await database_sync_to_async(lambda: _setup(build()))()
    message = await database_sync_to_async(d.baseline.messages.get)(role="assistant")
    text = selectors.picker_text(message.content)
    comms = [await connect(d.workshop, p.user) for p in d.people]
    start, end = text.index("Third"), len(text)
    await send(comms[1], "card.example", ref=7, id=d.axis.pk, message=message.pk, start=start, end=end)
    reply, own = await reply_and_event(comms[1], "example_added", "card")
    assert reply["payload"]["id"] == d.axis.pk and reply["payload"]["ref"] == 7
    for comm in comms:
        event = own if comm is comms[1] else await next_kind(comm, "card")
        assert [e["excerpt"] for e in event["payload"]["card"]["examples"]] == ["Third one!"]
    # A passage of a message the sender cannot read is refused to the sender only.
    hidden = await database_sync_to_async(lambda: d.answers[d.people[0].pk].pk)()
    await send(comms[1], "card.example", ref=8, id=d.axis.pk, message=hidden, start=0, end=5)
    refused = await next_kind(comms[1], "error")
    assert refused["payload"]["ref"] == 8 and refused["payload"]["action"] == "card.example"
    await send(comms[1], "card.example", ref=9, id=d.axis.pk, message=message.pk, start="0", end=json.dumps(5))
    assert (await next_kind(comms[1], "error"))["payload"]["ref"] == 9
    for comm in comms:
        await comm.disconnect()
    assert await database_sync_to_async(AxisExample.objects.count)() == 1
