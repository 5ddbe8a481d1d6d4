"""A participant chats with two blinded models, reloads mid-stream and finds the whole answer;
the facilitator marks a conversation as baseline. Real server (uvicorn), real Chromium."""

from __future__ import annotations

import json

import pytest

from llm_gateway import services
from llm_gateway.models import Conversation, MessageStatus
from tests.browser.conftest import login, open_new_chat
from tests.factories import PASSWORD, facilitator_of, make_participant, make_workshop
from tests.fixtures_llm import WORDS

pytestmark = pytest.mark.browser

SLOW_TOKENS = 40
EXPECTED = " ".join(WORDS[i % len(WORDS)] for i in range(SLOW_TOKENS))


@pytest.fixture
def interact_workshop(transactional_db, settings, fault_upstream):
    endpoints = json.dumps([
        {"key": "alpha", "name": "Alpha Llama 70B", "base_url": fault_upstream.base_url,
         "model": f"fault:slow:{SLOW_TOKENS}:60:alpha", "provider": "together"},
        {"key": "beta", "name": "Beta Mixtral", "base_url": fault_upstream.base_url,
         "model": "fault:slow:6:20:beta", "provider": "vllm"},
    ])
    settings.LLM_ENDPOINTS = endpoints
    settings.TEST_SERVER_ENV = {"LLM_ENDPOINTS": endpoints}
    workshop = make_workshop(stage="interact")
    services.workshop_models_set(workshop=workshop, endpoint_keys=["alpha", "beta"])
    return workshop


def test_participant_chats_with_two_blinded_models_and_reloads_mid_stream(interact_workshop, new_page):
    workshop = interact_workshop
    participant = make_participant(workshop)
    page = new_page(viewport={"width": 390, "height": 844})  # a phone
    login(page, participant.user.username, PASSWORD)
    page.goto(f"/w/{workshop.slug}/")
    page.get_by_role("link", name="Open the chat").click()
    assert page.get_by_role("button", name="New conversation with Model A").is_visible()
    assert page.get_by_role("button", name="New conversation with Model B").is_visible()
    assert "Alpha Llama" not in page.content() and "Mixtral" not in page.content()

    page.get_by_role("button", name="New conversation with Model A").click()
    # With the conversation's socket open, Send goes over it (llm_gateway/consumers.py), not HTTP.
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/send/" in r.url else None)
    page.locator("#chat[data-socket=open]").wait_for(timeout=20000)
    page.get_by_label("Your message").fill("Tell me about the Mughal Empire")
    page.get_by_role("button", name="Send").click()
    stream = page.locator(".msg-assistant [data-stream]")
    page.wait_for_function("() => { const s = document.querySelector('.msg-assistant [data-stream]');"
                           " return s && s.textContent.split(' ').length >= 4; }")
    partial = stream.inner_text()
    assert partial and EXPECTED.startswith(partial.strip())
    assert page.get_by_label("Your message").input_value() == ""  # the composer was cleared
    assert posts == [], posts
    page.screenshot(path="/tmp/interact_streaming.png")

    page.reload()  # mid-answer: generation goes on in the server
    page.locator(".msg-assistant[data-status=complete]").wait_for(timeout=20000)
    assert page.locator(".msg-assistant .msg-body").inner_text().strip() == EXPECTED
    assert page.locator(".msg-user .msg-body").inner_text() == "Tell me about the Mughal Empire"
    conversation_a = Conversation.objects.get(owner=participant, endpoint_key="alpha")
    answer = conversation_a.messages.get(role="assistant")
    assert answer.status == MessageStatus.COMPLETE and answer.content == EXPECTED
    page.screenshot(path="/tmp/interact_after_reload.png", full_page=True)

    # A second conversation with the other blinded model; Enter sends.
    page.get_by_role("link", name="All my conversations").click()
    page.get_by_role("button", name="New conversation with Model B").click()
    box = page.get_by_label("Your message")
    box.fill("And the Maratha Empire?")
    box.press("Enter")
    page.locator(".msg-assistant[data-status=complete]").wait_for(timeout=20000)
    assert "Model B" in page.locator(".msg-assistant .msg-who").inner_text()
    conversation_b = Conversation.objects.get(owner=participant, endpoint_key="beta")
    assert conversation_b.model_label == "Model B"
    assert conversation_b.messages.get(role="assistant").status == MessageStatus.COMPLETE
    assert page.js_errors == []


def test_facilitator_marks_a_participant_conversation_as_baseline(interact_workshop, new_page):
    from tests.factories import make_conversation

    workshop = interact_workshop
    participant = make_participant(workshop)
    conversation = make_conversation(participant, [("Who was Akbar?", "Akbar was a Mughal emperor.")],
                                     endpoint_key="alpha", model_label="Model A")
    page = new_page()
    login(page, facilitator_of(workshop).user.username, PASSWORD)
    page.goto(f"/w/{workshop.slug}/")
    page.get_by_role("link", name="Interact: conversations and the baseline set").click()
    row = page.locator(f"tr[data-conversation='{conversation.id}']")
    row.get_by_role("button", name="Mark “Who was Akbar?” as baseline").click()
    page.get_by_text("Marked as a baseline conversation").wait_for()
    assert row.locator(".badge", has_text="baseline").is_visible()
    assert list(Conversation.objects.filter(workshop=workshop, is_baseline=True)) == [conversation]
    page.screenshot(path="/tmp/interact_baseline.png", full_page=True)
    # The facilitator reads it, sees the real model name, and can take it out again.
    page.get_by_role("link", name="Who was Akbar?").click()
    assert "Alpha Llama 70B" in page.content()
    page.get_by_role("button", name="Remove from the baseline set").click()
    page.get_by_text("No longer a baseline conversation").wait_for()
    assert not Conversation.objects.filter(workshop=workshop, is_baseline=True).exists()
    assert page.js_errors == []


def test_compare_mode_two_models_side_by_side_and_a_stored_preference(interact_workshop, new_page):
    from llm_gateway.models import Preference

    workshop = interact_workshop
    participant = make_participant(workshop)
    facilitator = new_page()
    login(facilitator, facilitator_of(workshop).user.username, PASSWORD)
    facilitator.goto(f"/w/{workshop.slug}/interact/models/")
    facilitator.get_by_label("Two models side by side (blinded)").check()
    facilitator.get_by_role("button", name="Save").click()
    facilitator.get_by_text("Models saved.").wait_for()

    page = new_page(viewport={"width": 1280, "height": 900})
    login(page, participant.user.username, PASSWORD)
    page.goto(f"/w/{workshop.slug}/interact/")
    page.get_by_role("button", name="New comparison: two models answer side by side").click()
    page.get_by_label("Your message").fill("Who built the Red Fort?")
    page.get_by_role("button", name="Send").click()
    grid = page.locator(".compare-grid")
    grid.wait_for()
    assert grid.locator(".msg-assistant").count() == 2
    # Both answers stream at once, into two columns.
    page.locator(".compare-grid .msg-assistant[data-status=complete]").nth(1).wait_for(timeout=30000)
    boxes = [grid.locator(".msg-assistant").nth(i).bounding_box() for i in range(2)]
    assert abs(boxes[0]["y"] - boxes[1]["y"]) < 2 and boxes[0]["x"] < boxes[1]["x"]
    assert "Alpha Llama" not in page.content() and "Mixtral" not in page.content()
    assert page.get_by_label("Your message").input_value() == ""
    save = page.get_by_role("button", name="Save my choice")
    page.wait_for_function("() => { const b = [...document.querySelectorAll('form.choice button')][0];"
                           " return b && !b.disabled; }")
    page.get_by_label("Answer 2").check()
    page.get_by_label("Why? (optional)").fill("Clearer for a student")
    save.click()
    page.get_by_role("button", name="Change my choice").wait_for()
    page.screenshot(path="/tmp/interact_compare.png", full_page=True)
    preference = Preference.objects.get(conversation__owner=participant)
    chosen_column = page.locator(".compare-grid .msg.chosen .msg-who").inner_text()
    assert preference.chosen is not None and preference.chosen.slot == 1 and "Answer 2" in chosen_column
    assert preference.note == "Clearer for a student"

    # The conversation goes on; the earlier choice is now closed and shown as made.
    page.get_by_label("Your message").fill("And the Taj Mahal?")
    page.get_by_role("button", name="Send").click()
    page.locator(".compare-turn").nth(1).wait_for()
    assert "Preferred: Answer 2" in page.locator(".compare-turn").first.inner_text()
    page.locator(".compare-turn").nth(1).locator(".msg-assistant[data-status=complete]").nth(1).wait_for(timeout=30000)
    page.set_viewport_size({"width": 390, "height": 844})  # on a phone the answers stack
    boxes = [page.locator(".compare-turn").nth(1).locator(".msg-assistant").nth(i).bounding_box() for i in range(2)]
    assert boxes[1]["y"] > boxes[0]["y"] + boxes[0]["height"] - 1
    page.screenshot(path="/tmp/interact_compare_phone.png", full_page=True)
    assert page.js_errors == [] and facilitator.js_errors == []


def test_a_send_whose_socket_is_lost_is_never_sent_twice(interact_workshop, new_page):
    """The connection goes while a Send over the socket waits for its answer. Stored or not, the
    page finds out from the server when it is back: a stored message shows once and leaves the
    box; one that never arrived stays in the box with the "not sent" notice."""
    workshop = interact_workshop
    participant = make_participant(workshop)
    page = open_new_chat(new_page, workshop, participant, "Model B")
    page.locator("#chat[data-socket=open]").wait_for(timeout=20000)
    box = page.get_by_label("Your message")
    box.fill("Was this stored?")
    page.get_by_role("button", name="Send").click()
    page.context.set_offline(True)  # at once: the frame may or may not have left
    page.wait_for_timeout(1500)
    page.context.set_offline(False)
    page.locator("#chat[data-socket=open]:not([data-unsure])").wait_for(timeout=30000)  # the server was asked
    conversation = Conversation.objects.get(owner=participant)
    stored = conversation.messages.filter(role="user", content="Was this stored?").count()
    shown = page.locator(".msg-user .msg-body", has_text="Was this stored?").count()
    assert stored in (0, 1) and shown == stored
    assert (box.input_value() == "") == (stored == 1)
    if stored:  # the title the first message gave the conversation, not a stale "New conversation"
        assert page.locator("#chat-title").inner_text() == "Was this stored?"
    if not stored:  # sent again by hand: it arrives once
        page.get_by_role("button", name="Send").click()
        expect_one = page.locator(".msg-user .msg-body", has_text="Was this stored?")
        expect_one.first.wait_for(timeout=20000)
        assert conversation.messages.filter(role="user", content="Was this stored?").count() == 1
    page.screenshot(path="/tmp/interact_send_lost.png", full_page=True)
    assert page.js_errors == []
