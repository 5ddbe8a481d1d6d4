"""Chat pages, limits, permissions, baseline marking, rendering safety, export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from llm_gateway import services
from llm_gateway.models import Conversation, GatewaySettings, Message, MessageStatus, WorkshopModel
from tests.factories import facilitator_of, make_conversation, make_member, make_participant, make_workshop

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_generation(monkeypatch):
    """Views tests: record generation starts instead of calling a model."""
    started = []
    monkeypatch.setattr("llm_gateway.runner.start", lambda message_id, **kw: started.append(message_id))
    return started


@pytest.fixture
def setup(use_endpoints, no_generation):
    use_endpoints({"key": "alpha", "name": "Alpha 70B", "base_url": "http://127.0.0.1:9/v1", "model": "a"},
                  {"key": "beta", "name": "Beta 8x7B", "base_url": "http://127.0.0.1:9/v1", "model": "b"})
    workshop = make_workshop(stage="interact")
    services.workshop_models_set(workshop=workshop, endpoint_keys=["alpha", "beta"])
    participant = make_participant(workshop)
    return workshop, participant


def test_facilitator_chooses_models_and_participants_see_blinded_labels(setup, client_for):
    workshop, participant = setup
    facilitator = facilitator_of(workshop)
    c = client_for(facilitator)
    response = c.post(f"/w/{workshop.slug}/interact/models/", {"endpoints": ["beta"], "token_budget": "5000"})
    assert response.status_code == 302
    assert list(WorkshopModel.objects.filter(workshop=workshop).values_list("endpoint_key", "blind_label")) == [
        ("beta", "Model B")]  # labels are stable
    assert GatewaySettings.objects.get(workshop=workshop).token_budget == 5000
    page = client_for(participant).get(f"/w/{workshop.slug}/interact/").content.decode()
    assert "New conversation with Model B" in page and "Beta 8x7B" not in page
    workshop.show_model_names = True
    workshop.save()
    page = client_for(participant).get(f"/w/{workshop.slug}/interact/").content.decode()
    assert "New conversation with Beta 8x7B" in page


def test_no_models_tells_facilitator_to_configure(use_endpoints, client_for):
    use_endpoints()
    workshop = make_workshop(stage="interact")
    page = client_for(facilitator_of(workshop)).get(f"/w/{workshop.slug}/interact/").content.decode()
    assert "No model is set up for this workshop yet" in page
    page = client_for(make_participant(workshop)).get(f"/w/{workshop.slug}/interact/").content.decode()
    assert "No model is available yet" in page


def test_participant_starts_conversation_and_sends(setup, client_for, no_generation, django_capture_on_commit_callbacks):
    workshop, participant = setup
    c = client_for(participant)
    model = WorkshopModel.objects.get(workshop=workshop, endpoint_key="alpha")
    response = c.post(f"/w/{workshop.slug}/interact/", {"model": model.id})
    conversation = Conversation.objects.get(owner=participant)
    assert response.headers["Location"] == f"/w/{workshop.slug}/interact/c/{conversation.id}/"
    assert conversation.model_label == "Model A" and not conversation.is_sandbox
    with django_capture_on_commit_callbacks(execute=True):
        response = c.post(f"/w/{workshop.slug}/interact/c/{conversation.id}/send/", {"text": "  Who was Ashoka?  "},
                          HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert 'data-sent="1"' in html and "Who was Ashoka?" in html and "Waiting for the model" in html
    question, answer = conversation.messages.order_by("position")
    assert question.content == "Who was Ashoka?" and answer.status == MessageStatus.PENDING
    assert no_generation == [answer.id]
    assert conversation.messages.count() == 2
    # A second message while the answer is pending is refused.
    response = c.post(f"/w/{workshop.slug}/interact/c/{conversation.id}/send/", {"text": "And then?"}, HTTP_HX_REQUEST="true")
    assert "Wait for the answer to finish" in response.content.decode()
    assert response["HX-Reswap"] == "none"  # the thread is left as it is, the text stays in the box
    assert conversation.messages.count() == 2


def test_send_returns_only_what_changed(setup, client_for, no_generation, django_capture_on_commit_callbacks):
    """The htmx send appends the two new messages and re-renders the previous answer (which
    loses its "ask again" button); earlier turns are not sent again."""
    workshop, participant = setup
    c = client_for(participant)
    conversation = services.conversation_create(membership=participant, workshop_model=WorkshopModel.objects.first())
    url = f"/w/{workshop.slug}/interact/c/{conversation.id}/send/"
    with django_capture_on_commit_callbacks(execute=True):
        first = c.post(url, {"text": "First question"}, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="chat-empty" hx-swap-oob="delete"' in first
    _q, answer = conversation.messages.order_by("position")
    Message.objects.filter(pk=answer.pk).update(status=MessageStatus.COMPLETE, content="The **first** answer.")
    page = c.get(f"/w/{workshop.slug}/interact/c/{conversation.id}/").content.decode()
    assert "Ask again (new answer)" in page
    with django_capture_on_commit_callbacks(execute=True):
        html = c.post(url, {"text": "Second question"}, HTTP_HX_REQUEST="true").content.decode()
    assert "First question" not in html and "chat-empty" not in html
    assert f'id="m-{answer.id}"' in html and "<strong>first</strong>" in html
    assert html.count('hx-swap-oob="true"') == 2  # the previous answer and the cleared error line
    assert "Ask again (new answer)" not in html
    assert "Second question" in html and "Waiting for the model" in html and html.count('data-sent="1"') == 1


@pytest.mark.parametrize("text, error", [("   ", "Write a message first."), ("x" * 4001, "the limit is 4000")])
def test_empty_and_oversized_messages_are_refused(setup, client_for, settings, text, error):
    settings.CHAT_MESSAGE_MAX_CHARS = 4000
    workshop, participant = setup
    conversation = services.conversation_create(membership=participant, workshop_model=WorkshopModel.objects.first())
    response = client_for(participant).post(f"/w/{workshop.slug}/interact/c/{conversation.id}/send/", {"text": text},
                                            HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and error in response.content.decode()
    assert not conversation.messages.exists()


def _finish(answer, content="An answer.", tokens=(10, 20)):
    Message.objects.filter(pk=answer.pk).update(status=MessageStatus.COMPLETE, content=content,
                                                prompt_tokens=tokens[0], completion_tokens=tokens[1])


def test_rate_limit_per_participant(setup, settings):
    settings.CHAT_RATE_LIMIT = "2/m"
    workshop, participant = setup
    conversation = services.conversation_create(membership=participant, workshop_model=WorkshopModel.objects.first())
    for i in range(2):
        _q, answer = services.message_send(conversation=conversation, membership=participant, text=f"q{i}")
        _finish(answer)
    with pytest.raises(Exception, match="faster than this workshop allows"):
        services.message_send(conversation=conversation, membership=participant, text="q3")
    # Another participant is not affected.
    other = make_participant(workshop)
    conv2 = services.conversation_create(membership=other, workshop_model=WorkshopModel.objects.first())
    services.message_send(conversation=conv2, membership=other, text="hello")


def test_token_budget_per_workshop(setup):
    workshop, participant = setup
    services.gateway_settings_update(workshop=workshop, token_budget=25, max_answer_tokens=None)
    conversation = services.conversation_create(membership=participant, workshop_model=WorkshopModel.objects.first())
    _q, answer = services.message_send(conversation=conversation, membership=participant, text="q")
    _finish(answer, tokens=(10, 20))
    with pytest.raises(Exception, match="used all the model time"):
        services.message_send(conversation=conversation, membership=participant, text="more")


def test_other_people_cannot_read_or_write_a_conversation(setup, client_for):
    workshop, participant = setup
    conversation = make_conversation(participant, [("q", "a")], endpoint_key="alpha")
    other = make_participant(workshop)
    assert client_for(other).get(f"/w/{workshop.slug}/interact/c/{conversation.id}/").status_code == 404
    assert client_for(other).post(f"/w/{workshop.slug}/interact/c/{conversation.id}/send/", {"text": "x"}).status_code == 404
    researcher = make_member(workshop, role="researcher")
    assert client_for(researcher).get(f"/w/{workshop.slug}/interact/c/{conversation.id}/").status_code == 200
    assert client_for(researcher).post(f"/w/{workshop.slug}/interact/c/{conversation.id}/send/", {"text": "x"}).status_code == 404
    outsider_ws = make_workshop(stage="interact")
    outsider = make_participant(outsider_ws)
    assert client_for(outsider).get(f"/w/{workshop.slug}/interact/c/{conversation.id}/").status_code == 404


def test_chat_is_closed_to_participants_outside_interact(use_endpoints, client_for):
    use_endpoints()
    workshop = make_workshop(stage="familiarize")
    response = client_for(make_participant(workshop)).get(f"/w/{workshop.slug}/interact/")
    assert response.status_code == 403


def test_facilitator_marks_and_unmarks_baseline(setup, client_for):
    workshop, participant = setup
    conversation = make_conversation(participant, [("q", "a")], endpoint_key="alpha")
    facilitator = facilitator_of(workshop)
    c = client_for(facilitator)
    page = c.get(f"/w/{workshop.slug}/interact/conversations/").content.decode()
    assert "mark as baseline" in page
    c.post(f"/w/{workshop.slug}/interact/c/{conversation.id}/baseline/", {"is_baseline": "1", "next": "list"})
    assert Conversation.objects.filter(workshop=workshop, is_baseline=True).get() == conversation
    c.post(f"/w/{workshop.slug}/interact/c/{conversation.id}/baseline/", {"is_baseline": "0"})
    assert not Conversation.objects.filter(workshop=workshop, is_baseline=True).exists()
    # Participants cannot mark baselines.
    response = client_for(participant).post(f"/w/{workshop.slug}/interact/c/{conversation.id}/baseline/", {"is_baseline": "1"})
    assert response.status_code == 403


def test_conversation_without_answer_cannot_be_baseline(setup):
    workshop, participant = setup
    conversation = make_conversation(participant, [], endpoint_key="alpha")
    with pytest.raises(Exception, match="at least one complete answer"):
        services.conversation_set_baseline(conversation=conversation, is_baseline=True)


def test_facilitator_sandbox_conversation(setup, client_for):
    workshop, _participant = setup
    facilitator = facilitator_of(workshop)
    model = WorkshopModel.objects.get(workshop=workshop, endpoint_key="alpha")
    client_for(facilitator).post(f"/w/{workshop.slug}/interact/", {"model": model.id})
    assert Conversation.objects.get(owner=facilitator).is_sandbox


def test_model_output_and_participant_text_never_run_as_html(setup, client_for):
    workshop, participant = setup
    conversation = make_conversation(participant, [(
        '<img src=x onerror="alert(1)">',
        "**Bold** <script>alert('x')</script> [click](javascript:alert(1)) <iframe src=//evil></iframe>",
    )], endpoint_key="alpha")
    page = client_for(participant).get(f"/w/{workshop.slug}/interact/c/{conversation.id}/").content.decode()
    assert "<strong>Bold</strong>" in page
    assert "<script>alert" not in page and 'href="javascript' not in page and "<iframe" not in page
    assert '<img src=x' not in page and "&lt;img src=x onerror=" in page


WRITES = ("INSERT", "UPDATE", "DELETE")


def test_page_views_write_nothing_and_show_a_dead_answer_as_interrupted(setup, client_for):
    """An answer whose generator died is shown as interrupted on a GET, without writing (the
    scheduled sweep stores it); asking again after that works."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from llm_gateway.tasks import sweep_answers

    workshop, participant = setup
    conversation = services.conversation_create(membership=participant, workshop_model=WorkshopModel.objects.first())
    _q, answer = services.message_send(conversation=conversation, membership=participant, text="q")
    client = client_for(participant)
    base = f"/w/{workshop.slug}/interact/c/{conversation.id}/"
    client.get(base)  # the session and CSRF cookie are settled by a first view
    Message.objects.filter(pk=answer.pk).update(status=MessageStatus.STREAMING, content="Half an ans",
                                                updated_at=timezone.now() - timedelta(minutes=5))
    with CaptureQueriesContext(connection) as queries:
        page = client.get(base).content.decode()
        fragment = client.get(f"{base}m/{answer.pk}/", HTTP_HX_REQUEST="true").content.decode()
    writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(WRITES)]
    assert writes == []
    assert "Interrupted." in page and "Try again" in page and "Half an ans" in page
    assert "Interrupted." in fragment
    answer.refresh_from_db()
    assert answer.status == MessageStatus.STREAMING  # the page only displayed it
    assert sweep_answers.apply().result == 1  # the scheduled sweep stores what the page showed
    answer.refresh_from_db()
    assert answer.status == MessageStatus.INTERRUPTED and answer.content == "Half an ans"
    assert answer.error_kind == "lost"


def test_asking_again_is_not_blocked_by_an_answer_whose_server_died(setup, client_for):
    workshop, participant = setup
    conversation = services.conversation_create(membership=participant, workshop_model=WorkshopModel.objects.first())
    _q, answer = services.message_send(conversation=conversation, membership=participant, text="q")
    Message.objects.filter(pk=answer.pk).update(updated_at=timezone.now() - timedelta(minutes=5))  # still pending
    response = client_for(participant).post(f"/w/{workshop.slug}/interact/c/{conversation.id}/m/{answer.pk}/again/")
    assert response.status_code == 302
    answer.refresh_from_db()
    assert answer.status == MessageStatus.SUPERSEDED and answer.superseded_by is not None


def test_usage_page_and_dashboard_columns(setup, client_for):
    workshop, participant = setup
    conversation = services.conversation_create(membership=participant, workshop_model=WorkshopModel.objects.first())
    _q, answer = services.message_send(conversation=conversation, membership=participant, text="q")
    Message.objects.filter(pk=answer.pk).update(status=MessageStatus.COMPLETE, content="a", prompt_tokens=12,
                                                completion_tokens=30, ttft_ms=150, total_ms=900)
    facilitator = facilitator_of(workshop)
    page = client_for(facilitator).get(f"/w/{workshop.slug}/interact/usage/").content.decode()
    assert "Alpha 70B" in page and participant.pseudonym in page and ">30<" in page and ">150<" in page
    dashboard = client_for(facilitator).get(f"/w/{workshop.slug}/dashboard/").content.decode()
    assert "Messages sent" in dashboard and ">42<" in dashboard


def test_export_is_pseudonymous_quoted_and_excludes_withdrawn(setup, client_for):
    workshop, participant = setup
    make_conversation(participant, [("=HYPERLINK(\"http://x\")", "plain answer")], endpoint_key="alpha")
    gone = make_participant(workshop)
    make_conversation(gone, [("secret", "answer")], endpoint_key="alpha")
    gone.withdrawn_at = timezone.now()
    gone.save()
    response = client_for(facilitator_of(workshop)).get(f"/w/{workshop.slug}/interact/export/messages.csv")
    # Streamed page by page (workshops.exports.stream_download: in batches under ASGI).
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert {r["participant"] for r in rows} == {participant.pseudonym}
    assert rows[0]["text"].startswith("'=HYPERLINK")
    assert participant.user.username not in body and "secret" not in body
    assert body.startswith('"participant","role"')


def test_send_reads_the_conversation_once_and_gives_the_model_the_same_history(setup, client_for, monkeypatch,
                                                                            django_capture_on_commit_callbacks):
    """The Send path (issue "Performance"): session, user, membership with its workshop, the
    conversation with its settings, its messages once, then the writes — 10 statements with
    the transaction (it was 17). The history the model gets from the messages already read is
    the one the database query gives."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    started: list[dict] = []
    monkeypatch.setattr("llm_gateway.runner.start", lambda message_id, **kw: started.append(kw))
    workshop, participant = setup
    conversation = services.conversation_create(membership=participant, workshop_model=WorkshopModel.objects.first())
    client = client_for(participant)
    send = f"/w/{workshop.slug}/interact/c/{conversation.id}/send/"
    for text in ("first question", "second question"):
        assert client.post(send, {"text": text}, HTTP_HX_REQUEST="true").status_code == 200
        Message.objects.filter(conversation=conversation, status=MessageStatus.PENDING).update(
            status=MessageStatus.COMPLETE, content=f"answer to {text}")
    with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as queries:
        response = client.post(send, {"text": "third question"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "third question" in response.content.decode()
    assert len(queries) <= 10, [q["sql"][:80] for q in queries]
    question = Message.objects.get(conversation=conversation, content="third question")
    assert started[-1]["messages"] == services.history_for_model(conversation, upto_position=question.position + 1)
    assert [m["content"] for m in started[-1]["messages"] if m["role"] != "system"] == [
        "first question", "answer to first question", "second question", "answer to second question",
        "third question"]
