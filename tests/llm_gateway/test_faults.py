"""Every failure mode of an endpoint ends in a stored, visible state (fault-injecting upstream).

These tests send a message through the service; with no server event loop the generator
runs to the end in place, exactly as the ASGI server runs it in the background.
"""

from __future__ import annotations

import pytest

from llm_gateway import services
from llm_gateway.models import MessageStatus
from tests.factories import facilitator_of

from .conftest import answers

pytestmark = pytest.mark.django_db(transaction=True)

WORDS8 = "The Mughal Empire was founded in 1526 by"


def send(conversation, membership, text="Tell me about the Mughals"):
    services.message_send(conversation=conversation, membership=membership, text=text)
    conversation.refresh_from_db()
    return answers(conversation)[-1]


def test_stream_complete_with_usage_in_final_chunk(chat_setup, fault_upstream):
    workshop, participant, conversation = chat_setup("fault:ok:8:usage-final")
    answer = send(conversation, participant)
    assert answer.status == MessageStatus.COMPLETE
    assert answer.content == WORDS8
    assert answer.completion_tokens == 8 and answer.prompt_tokens > 0
    assert answer.ttft_ms is not None and answer.total_ms >= answer.ttft_ms
    assert answer.attempts == 1 and answer.stream_chunks == 8
    assert answer.endpoint_key == "fault" and answer.model_id == "fault:ok:8:usage-final"
    sent = fault_upstream.requests[-1]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["messages"][0] == {"role": "system", "content": workshop.system_prompt}
    assert sent["messages"][-1] == {"role": "user", "content": "Tell me about the Mughals"}


def test_no_usage_is_recorded_as_unknown_not_invented(chat_setup):
    _w, participant, conversation = chat_setup("fault:nousage:x")
    answer = send(conversation, participant)
    assert answer.status == MessageStatus.COMPLETE
    assert answer.prompt_tokens is None and answer.completion_tokens is None
    assert answer.stream_chunks == 8


def test_groq_style_usage_is_read(chat_setup):
    _w, participant, conversation = chat_setup("fault:groqusage:x", extra={"provider": "groq"})
    answer = send(conversation, participant)
    assert (answer.prompt_tokens, answer.completion_tokens) == (11, 8)


@pytest.mark.parametrize("code", [401, 403])
def test_auth_error_fails_calmly_and_tells_the_facilitator(chat_setup, client_for, monkeypatch, code):
    monkeypatch.setenv("CALMA_TEST_KEY", "sk-very-secret-value-123")
    workshop, participant, conversation = chat_setup(f"fault:status:{code}", extra={"api_key_env": "CALMA_TEST_KEY"})
    answer = send(conversation, participant)
    assert answer.status == MessageStatus.FAILED and answer.error_kind == "auth"
    assert answer.attempts == 1  # a configuration error is not retried
    page = client_for(participant).get(f"/w/{workshop.slug}/interact/c/{conversation.id}/").content.decode()
    assert "The model is not available right now. The facilitator has been told." in page
    assert f"HTTP {code}" not in page  # no configuration details for participants
    staff_page = client_for(facilitator_of(workshop)).get(f"/w/{workshop.slug}/interact/usage/").content.decode()
    assert "Configuration problem" in staff_page and f"HTTP {code}" in staff_page
    for text in (page, staff_page, answer.error):
        assert "sk-very-secret-value-123" not in text


def test_rate_limited_upstream_honours_retry_after(chat_setup):
    _w, participant, conversation = chat_setup("fault:ratelimit:1:1:rl")
    answer = send(conversation, participant)
    assert answer.status == MessageStatus.COMPLETE
    assert answer.attempts == 2
    assert answer.total_ms >= 1000  # waited for Retry-After: 1


def test_server_errors_are_retried_with_backoff(chat_setup):
    _w, participant, conversation = chat_setup("fault:flaky:2:retry")
    answer = send(conversation, participant)
    assert answer.status == MessageStatus.COMPLETE and answer.attempts == 3


def test_fallback_endpoint_after_retries_are_spent(chat_setup, fault_upstream):
    endpoints = [
        {"key": "primary", "base_url": fault_upstream.base_url, "model": "fault:status:503", "fallback": "backup"},
        {"key": "backup", "base_url": fault_upstream.base_url, "model": "fault:ok:3:fallback"},
    ]
    _w, participant, conversation = chat_setup(endpoints=endpoints, LLM_MAX_RETRIES=1)
    answer = send(conversation, participant)
    assert answer.status == MessageStatus.COMPLETE
    assert answer.endpoint_key == "backup" and answer.content == "The Mughal Empire"
    assert answer.attempts == 3  # primary, one retry, then the fallback


def test_retry_budget_bounds_the_wait(chat_setup):
    _w, participant, conversation = chat_setup("fault:ratelimit:5:30:budget", LLM_RETRY_BUDGET_SECONDS=2)
    answer = send(conversation, participant)
    assert answer.status == MessageStatus.FAILED and answer.error_kind == "rate_limited"
    assert answer.attempts == 1  # a 30 s Retry-After does not fit in a 2 s budget


def test_slow_first_token_times_out_into_a_failed_answer(chat_setup):
    _w, participant, conversation = chat_setup("fault:slowfirst:3", extra={"timeouts": {"first_token": 0.5}},
                                               LLM_MAX_RETRIES=0)
    answer = send(conversation, participant)
    assert answer.status == MessageStatus.FAILED and answer.error_kind == "timeout_first_token"
    assert answer.content == ""


def test_malformed_sse_line_is_skipped_and_noted(chat_setup):
    _w, participant, conversation = chat_setup("fault:malformed")
    answer = send(conversation, participant)
    assert answer.status == MessageStatus.COMPLETE
    assert answer.content == WORDS8
    assert answer.error_kind == "malformed" and "malformed" in answer.error


@pytest.mark.parametrize(("model", "error_kind", "content"), [
    ("fault:nodone", "incomplete", "The Mughal Empire was founded"),  # the stream ends without [DONE]
    ("fault:drop:4", "dropped", "The Mughal Empire was"),  # the connection drops mid-stream
    ("fault:error:3", "upstream_error", "The Mughal Empire"),  # an error object inside the stream
])
def test_a_stream_cut_short_keeps_its_partial_text_as_interrupted(chat_setup, model, error_kind, content):
    _w, participant, conversation = chat_setup(model)
    answer = send(conversation, participant)
    assert answer.status == MessageStatus.INTERRUPTED and answer.error_kind == error_kind
    assert answer.content == content
    assert answer.attempts == 1  # text was shown: never retried behind the participant's back


def test_error_object_inside_the_stream_is_told_in_a_short_reason(chat_setup):
    _w, participant, conversation = chat_setup("fault:error:3")
    # A short reason with the provider's error type; the provider's text stays in the server log.
    assert send(conversation, participant).error == "fault reported an error in the stream (server_error)"


def test_connection_refused_fails_after_retries(chat_setup, use_endpoints):
    from tests.fixtures_llm import free_port

    port = free_port()
    _w, participant, conversation = chat_setup(endpoints=[{"key": "down", "base_url": f"http://127.0.0.1:{port}/v1",
                                                           "model": "x"}], LLM_MAX_RETRIES=2)
    answer = send(conversation, participant)
    assert answer.status == MessageStatus.FAILED and answer.error_kind == "connect"
    assert answer.attempts == 3


def test_retry_after_interruption_supersedes_the_old_answer(chat_setup, fault_upstream):
    _w, participant, conversation = chat_setup("fault:drop:2")
    first = send(conversation, participant)
    assert first.status == MessageStatus.INTERRUPTED
    services.answer_regenerate(message=first, membership=participant)
    first.refresh_from_db()
    new = answers(conversation)[-1]
    assert first.status == MessageStatus.SUPERSEDED and first.superseded_by_id == new.id
    assert first.content == "The Mughal"  # the old text is kept
    assert new.reply_to_id == first.reply_to_id and new.position > first.position


def test_multi_turn_history_leaves_out_superseded_answers(chat_setup, fault_upstream):
    workshop, participant, conversation = chat_setup("fault:echo")
    first = send(conversation, participant, "first question")
    assert first.content == "2 messages; system=yes; last=first question"
    services.answer_regenerate(message=first, membership=participant)
    again = answers(conversation)[-1]
    assert again.status == MessageStatus.COMPLETE
    second = send(conversation, participant, "second question")
    assert second.content == "4 messages; system=yes; last=second question"
    sent = fault_upstream.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[2]["content"] == again.content


def test_a_server_error_is_shown_as_what_happened_not_as_a_timeout(chat_setup, client_for):
    workshop, participant, conversation = chat_setup("fault:status:500", LLM_MAX_RETRIES=1)
    answer = send(conversation, participant)
    assert answer.status == MessageStatus.FAILED and answer.error_kind == "server"
    assert answer.attempts == 2  # a 500 is retried once, then given up
    page = client_for(participant).get(f"/w/{workshop.slug}/interact/c/{conversation.id}/").content.decode()
    assert "The model server returned an error (HTTP 500). You can try again." in page
    assert "did not answer in time" not in page
    assert "injected status 500" not in page  # the upstream's own text stays for staff


def test_an_unreachable_server_is_not_called_a_timeout(chat_setup, client_for, use_endpoints):
    from tests.fixtures_llm import free_port

    workshop, participant, conversation = chat_setup("fault:ok", LLM_MAX_RETRIES=0)
    use_endpoints({"key": "fault", "base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "x"})
    answer = send(conversation, participant)
    assert answer.status == MessageStatus.FAILED and answer.error_kind == "connect"
    page = client_for(participant).get(f"/w/{workshop.slug}/interact/c/{conversation.id}/").content.decode()
    assert "The model server could not be reached." in page and "did not answer in time" not in page


def test_the_retry_budget_bounds_the_whole_first_token_wait(chat_setup):
    """The endpoint allows 30 s to the first token and answers after 20 s; the 1.5 s budget
    must cut the attempt short (before the fix the participant waited the 20 s)."""
    _w, participant, conversation = chat_setup("fault:slowfirst:20", extra={"timeouts": {"first_token": 30}},
                                               LLM_RETRY_BUDGET_SECONDS=1.5, LLM_MAX_RETRIES=3)
    answer = send(conversation, participant)
    assert answer.status == MessageStatus.FAILED and answer.error_kind == "timeout_first_token"
    assert answer.attempts == 1  # nothing of the budget is left for a retry
    assert answer.total_ms < 20_000  # bounded by the budget, not by the endpoint's 20 s


def test_a_hanging_primary_leaves_the_fallback_its_share_of_the_budget(chat_setup, fault_upstream):
    endpoints = [
        {"key": "primary", "base_url": fault_upstream.base_url, "model": "fault:slowfirst:20",
         "timeouts": {"first_token": 30}, "fallback": "backup"},
        {"key": "backup", "base_url": fault_upstream.base_url, "model": "fault:ok:3:budget-fallback"},
    ]
    _w, participant, conversation = chat_setup(endpoints=endpoints, LLM_RETRY_BUDGET_SECONDS=2)
    answer = send(conversation, participant)
    assert answer.status == MessageStatus.COMPLETE and answer.endpoint_key == "backup"
    assert answer.total_ms < 20_000
