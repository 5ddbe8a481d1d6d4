"""Live screens never show stale data, in a real browser:
- every participant page follows a stage change (the readiness page after passing moves on to
  the workshop page of the new stage; a page with unsaved typing says so and keeps the text);
- a board client that loses its network shows it is offline and what is waiting, and when it
  is back it sends what was kept and re-syncs the board (changes made meanwhile appear).
Screenshots in /tmp/live-*.png.
"""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from discussion import services as discussion_services
from discussion.models import Axis
from tests.browser.conftest import login, open_new_chat
from tests.discussion.conftest import build, goto
from tests.factories import PASSWORD, facilitator_of, make_participant, make_workshop
from workshops.models import Stage

pytestmark = [pytest.mark.usefixtures("sync_orm_until_database_teardown"), pytest.mark.browser, pytest.mark.django_db(transaction=True)]



def move_stage(fac, slug, stage, from_stage=Stage.FAMILIARIZE):
    """The facilitator moves the stage (the confirmation page's POST, from the facilitator's browser)."""
    status = fac.evaluate("""async ([slug, stage, from]) => {
        const token = document.querySelector("[name=csrfmiddlewaretoken]").value;
        const body = new URLSearchParams({stage: stage, confirm: "1", from_stage: from, csrfmiddlewaretoken: token});
        const r = await fetch(`/w/${slug}/stage/`, {method: "POST", body: body, credentials: "same-origin"});
        return r.status;
    }""", [slug, str(stage), str(from_stage)])
    assert status == 200, status  # followed the redirect to the dashboard


def test_participant_pages_follow_the_stage_change(django_db_setup, new_page):
    workshop = make_workshop(stage=Stage.FAMILIARIZE)
    facilitator = facilitator_of(workshop)
    ready = make_participant(workshop)
    typing = make_participant(workshop)
    waiting = make_participant(workshop)
    ready.user.refresh_from_db()
    slug = workshop.slug

    fac = new_page()
    login(fac, facilitator.user.username, PASSWORD)
    fac.goto(f"/w/{slug}/dashboard/")

    # P01 passes the readiness check and is told to wait for the next stage.
    p = new_page(viewport={"width": 390, "height": 844})
    login(p, ready.user.username, PASSWORD)
    p.goto(f"/w/{slug}/familiarize/readiness/")
    for q in workshop.readiness_questions.all():
        p.locator(f'input[name="q{q.id}"][value="{q.correct_choice}"]').check()
    p.get_by_role("button", name="Check my answers").click()
    expect(p.get_by_text("You passed the readiness check")).to_be_visible()
    expect(p.locator("html")).to_have_attribute("data-live", "connected")  # no eval: the CSP forbids it

    # P02 is on the practice page, in the middle of typing a code.
    q = new_page()
    login(q, typing.user.username, PASSWORD)
    q.goto(f"/w/{slug}/familiarize/practice/")
    q.get_by_label("Code").fill("half-written code")
    expect(q.locator("html")).to_have_attribute("data-live", "connected")  # no eval: the CSP forbids it

    # P03 opened the chat too early: "Not open right now".
    early = new_page()
    login(early, waiting.user.username, PASSWORD)
    early.goto(f"/w/{slug}/interact/")
    expect(early.get_by_role("heading", name="Not open right now")).to_be_visible()
    expect(early.locator("html")).to_have_attribute("data-live", "connected")

    move_stage(fac, slug, Stage.INTERACT)
    workshop.refresh_from_db()
    assert workshop.stage == Stage.INTERACT

    # The readiness page moves on by itself to the workshop page, now in Interact.
    expect(p).to_have_url(f"{p.url.split('/w/')[0]}/w/{slug}/", timeout=20000)
    expect(p.get_by_role("heading", name="Now: Interact")).to_be_visible()
    expect(p.locator(".stage-bar [aria-current=step]")).to_have_text("Interact")
    p.screenshot(path="/tmp/live-stage-followed-phone.png", full_page=True)

    # The page that was not open yet opens by itself.
    expect(early.get_by_role("heading", name="Chat with the models")).to_be_visible(timeout=20000)

    # The page with unsaved typing stays, says what happened, and keeps the text.
    notice = q.locator("#stage-notice")
    expect(notice).to_be_visible(timeout=20000)
    expect(notice).to_contain_text("Interact")
    expect(q.get_by_label("Code")).to_have_value("half-written code")
    expect(q.locator(".stage-bar [aria-current=step]")).to_have_text("Interact")
    assert "/practice/" in q.url
    q.screenshot(path="/tmp/live-stage-notice.png", full_page=True)
    assert not p.js_errors and not q.js_errors and not early.js_errors and not fac.js_errors, (
        p.js_errors, q.js_errors, early.js_errors, fac.js_errors)


def test_board_client_offline_shows_it_and_resyncs_when_back(django_db_setup, new_page):
    d = build()
    goto(d, 4)
    card = discussion_services.axis_create(membership=d.people[1], name="Balance", definition="Several views")
    slug = d.workshop.slug

    a = new_page()
    login(a, d.people[0].user.username, PASSWORD)
    a.goto(f"/w/{slug}/discuss/")
    expect(a.locator(f"#card-{card.pk}")).to_contain_text("Several views")
    expect(a.locator("html")).to_have_attribute("data-board", "connected")  # no eval: the CSP forbids it
    status = a.locator("#live-status")
    expect(status).to_be_hidden()

    a.context.set_offline(True)
    expect(status).to_be_visible(timeout=10000)
    expect(status).to_contain_text("offline")
    assert a.evaluate("document.documentElement.dataset.board") == "offline"

    # An edit made while offline is kept and shown as waiting.
    a.locator(f"#card-{card.pk}").get_by_role("button", name="Edit").click()
    a.locator(f"#edit-def-{card.pk}").fill("Several views, fairly weighed")
    a.locator(f"#card-{card.pk}").get_by_role("button", name="Save").click()
    expect(status).to_contain_text("Changes waiting to be sent: 1")
    # Meanwhile someone else adds a card (this screen cannot hear of it).
    other = discussion_services.axis_create(membership=d.people[2], name="Accuracy", definition="Dates are right")
    a.screenshot(path="/tmp/live-board-offline.png", full_page=True)

    a.context.set_offline(False)
    # Back: the kept edit is sent and saved, and the board re-syncs (the other card appears).
    expect(a.locator(f"#card-{other.pk}")).to_contain_text("Dates are right", timeout=20000)
    expect(a.locator(f"#card-{card.pk} .card-definition")).to_have_text("Several views, fairly weighed", timeout=20000)
    expect(status).to_contain_text("Back online")
    card.refresh_from_db()
    assert card.definition == "Several views, fairly weighed"
    a.screenshot(path="/tmp/live-board-back.png", full_page=True)
    assert Axis.objects.filter(workshop=d.workshop, status="active").count() == 2
    assert not a.js_errors, a.js_errors


def test_a_page_that_was_frozen_keeps_its_sockets_and_a_silent_one_is_dropped(django_db_setup, new_page):
    """A page whose main thread stood still (a phone put the tab to sleep; a huge paste took long
    to lay out) comes back with its sockets as they were: the silence while it was frozen is not
    taken for a dead connection, so nothing is dropped and re-opened, and no reply in flight is
    lost. A socket with a one-second heartbeat is opened beside the page's own, the page is
    kept busy for eight seconds (more than the two beats and five seconds after which a silent
    socket counts as dead), and the socket must still be the one it opened. A connection that
    really goes silent (the server's frames stop reaching the page) is still dropped and re-opened."""
    d = build()
    goto(d, 4)
    page = new_page()
    login(page, d.people[0].user.username, PASSWORD)
    page.goto(f"/w/{d.workshop.slug}/discuss/")
    expect(page.locator("html")).to_have_attribute("data-board", "connected")
    silent = {"on": False}

    def relay(ws):
        server = ws.connect_to_server()
        server.on_message(lambda message: None if silent["on"] else ws.send(message))

    page.route_web_socket(re.compile(r"probe=1"), relay)
    # The page freezes as soon as the socket is open, before its first beat (the case of a page
    # that lays out a huge text while it loads).
    page.evaluate("""() => new Promise((resolve) => {
        window.__probe = { opens: 0, closes: 0 };
        window.CalmaSocket.open(document.querySelector("[data-live-url]").getAttribute("data-live-url") + "?probe=1", {
            name: "probe", every: 1000, ping: () => ({ action: "ping" }),
            onclose: () => { window.__probe.closes += 1; },
            onopen: () => {
                window.__probe.opens += 1;
                if (window.__probe.opens > 1) { return; }
                const end = Date.now() + 8000;
                while (Date.now() < end) { /* the page is frozen */ }
                resolve();
            } });
    })""")
    # Beats go on after the freeze; a dropped socket would show within a few of them.
    page.wait_for_timeout(4000)
    assert page.evaluate("window.__probe") == {"opens": 1, "closes": 0}
    expect(page.locator("html")).to_have_attribute("data-probe", "connected")

    silent["on"] = True
    for _ in range(120):  # found dead within two beats and five seconds; up to a minute on a loaded machine
        if page.evaluate("window.__probe.closes") >= 1:
            break
        page.wait_for_timeout(500)
    assert page.evaluate("window.__probe.closes") >= 1
    assert not page.js_errors, page.js_errors


@pytest.fixture
def chat_workshop(transactional_db, settings, fault_upstream):
    import json

    from llm_gateway import services as gateway_services

    endpoints = json.dumps([{"key": "alpha", "name": "Alpha", "base_url": fault_upstream.base_url,
                             "model": "fault:slow:12:150:live-chat", "provider": "vllm"}])
    settings.LLM_ENDPOINTS = endpoints
    settings.TEST_SERVER_ENV = {"LLM_ENDPOINTS": endpoints}
    workshop = make_workshop(stage=Stage.INTERACT)
    gateway_services.workshop_models_set(workshop=workshop, endpoint_keys=["alpha"])
    return workshop


def test_chat_status_heading_and_cut_off_answer_stay_true(chat_workshop, new_page):
    from llm_gateway import services as gateway_services
    from llm_gateway.models import Conversation

    workshop = chat_workshop
    participant = make_participant(workshop)
    page = open_new_chat(new_page, workshop, participant, "Model A")
    heading = page.locator("#chat-title")
    expect(heading).to_have_text("New conversation")
    status = page.locator("#chat-live")

    first = ("Why did the British East India Company become so powerful in Bengal after the battle of "
             "Plassey in 1757, and what did it mean for ordinary people?")
    page.get_by_label("Your message").fill(first)
    page.get_by_role("button", name="Send").click()
    # The heading follows the first message at once, cut at a word boundary.
    expect(heading).to_have_text("Why did the British East India Company become so powerful in Bengal after the…")
    page.locator(".msg-assistant[data-status=complete]").wait_for(timeout=30000)
    expect(status).to_have_text("Answer complete.")

    # The next answer streams: the status line says so, not "Answer complete.".
    page.get_by_label("Your message").fill("And after 1857?")
    page.get_by_role("button", name="Send").click()
    page.locator(".msg-assistant[data-status=streaming]").wait_for(timeout=30000)
    expect(status).to_have_text("Answering…")
    page.locator(".msg-assistant[data-status=streaming]").wait_for(state="detached", timeout=30000)
    expect(status).to_have_text("Answer complete.")

    # An answer cut off by the length limit says so, under the answer and in the status line.
    gateway_services.gateway_settings_update(workshop=workshop, token_budget=None, max_answer_tokens=5)
    page.get_by_label("Your message").fill("Tell me everything about the Mughals")
    page.get_by_role("button", name="Send").click()
    last = page.locator(".msg-assistant").last
    expect(last).to_have_attribute("data-finish", "length", timeout=30000)
    expect(last.locator(".cut-off")).to_contain_text("Cut off at the length limit")
    expect(status).to_have_text("Answer complete, but cut off at the length limit.")
    page.screenshot(path="/tmp/live-chat-cut-off-phone.png", full_page=True)

    # Offline: the page says so; a message that could not be sent stays in the box and is listed.
    page.context.set_offline(True)
    notice = page.locator("#live-status")
    expect(notice).to_contain_text("offline", timeout=10000)
    page.get_by_label("Your message").fill("Written on the train")
    page.get_by_role("button", name="Send").click()
    expect(notice).to_contain_text("Your message was not sent: it is kept in the box")
    expect(page.get_by_label("Your message")).to_have_value("Written on the train")
    page.screenshot(path="/tmp/live-chat-offline-phone.png", full_page=False)
    page.context.set_offline(False)
    expect(notice).to_contain_text("Back online", timeout=20000)
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".msg-user").last).to_contain_text("Written on the train", timeout=20000)
    expect(notice).to_be_hidden(timeout=20000)
    conversation = Conversation.objects.get(owner=participant)
    assert conversation.title.endswith("after the…")
    page.locator(".msg-assistant[data-status=streaming], .msg-assistant[data-status=pending]").first.wait_for(
        state="detached", timeout=30000)
    assert [m.finish_reason for m in conversation.messages.filter(role="assistant").order_by("position")] == [
        "stop", "stop", "length", "length"]
    assert not page.js_errors, page.js_errors


@pytest.fixture
def server_redis(settings):
    """A disposable redis-server of this test's own, used by the app server the test starts
    (requested before new_page, so the server is started with it)."""
    from tests.discussion.test_board_resync import DisposableRedis

    redis = DisposableRedis()
    redis.start()
    settings.TEST_SERVER_ENV = {**getattr(settings, "TEST_SERVER_ENV", {}),
                                "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0", "CHANNEL_PREFIX": "live-browser"}
    yield redis
    redis.stop()


def test_board_screens_resync_after_a_redis_restart(django_db_setup, server_redis, new_page):
    """The issue's scenario end to end: the server's Redis (a disposable one of this test) goes
    away under two board screens; the edit made meanwhile is saved and shown to its author at
    once, and the other screen catches up by itself once Redis is back (heartbeat: the board's
    sequence number is ahead of what it saw), without a reload."""
    redis = server_redis
    d = build()
    goto(d, 4)
    card = discussion_services.axis_create(membership=d.people[1], name="Balance", definition="Several views")
    slug = d.workshop.slug
    screens = []
    for member in d.people[:2]:
        page = new_page()
        login(page, member.user.username, PASSWORD)
        page.goto(f"/w/{slug}/discuss/")
        expect(page.locator(f"#card-{card.pk} .card-definition")).to_have_text("Several views")
        expect(page.locator("html")).to_have_attribute("data-board", "connected")
        screens.append(page)
    author, other = screens
    # Record the other screen's board socket states: it stays connected throughout, so what
    # brings it up to date is the sequence number, not a reconnect.
    other.evaluate("""() => { window.boardStates = []; new MutationObserver(() => window.boardStates.push(
        document.documentElement.dataset.board)).observe(document.documentElement, {attributes: true}); }""")

    redis.stop()
    author.locator(f"#card-{card.pk}").get_by_role("button", name="Edit").click()
    author.locator(f"#edit-def-{card.pk}").fill("Saved while Redis was down")
    author.locator(f"#card-{card.pk}").get_by_role("button", name="Save").click()
    # The author's own screen shows what was saved (the ack carries it).
    expect(author.locator(f"#card-{card.pk} .card-definition")).to_have_text("Saved while Redis was down")
    card.refresh_from_db()
    assert card.definition == "Saved while Redis was down"
    expect(other.locator(f"#card-{card.pk} .card-definition")).to_have_text("Several views")
    other.screenshot(path="/tmp/live-redis-down-other.png", full_page=True)

    redis.start()
    # The other screen learns it missed the edit and re-syncs (heartbeat every 15 s).
    expect(other.locator(f"#card-{card.pk} .card-definition")).to_have_text("Saved while Redis was down",
                                                                            timeout=60000)
    other.screenshot(path="/tmp/live-redis-back-other.png", full_page=True)
    assert set(other.evaluate("window.boardStates")) <= {"connected"}
    assert not author.js_errors and not other.js_errors, (author.js_errors, other.js_errors)


def test_a_chat_sends_and_shows_whole_answers_across_a_redis_restart(chat_workshop, server_redis, new_page):
    """Redis (the channel layer) restarts under an open chat: a Send over the socket still
    stores the message, and the answer ends on screen whole, whether its deltas came live or
    the page re-read it."""
    from llm_gateway.models import Conversation

    participant = make_participant(chat_workshop)
    page = open_new_chat(new_page, chat_workshop, participant, "Model A")
    page.locator("#chat[data-socket=open]").wait_for(timeout=20000)
    server_redis.stop()
    server_redis.start()
    page.get_by_label("Your message").fill("After the restart <script>alert(1)</script>")
    page.get_by_role("button", name="Send").click()
    page.locator(".msg-assistant[data-status=complete]").wait_for(timeout=60000)
    answer = Conversation.objects.get(owner=participant).messages.get(role="assistant")
    assert page.locator(".msg-assistant .msg-body").inner_text().strip() == answer.content.strip()
    assert page.locator(".msg-user .msg-body").inner_text() == "After the restart <script>alert(1)</script>"
    page.screenshot(path="/tmp/live-chat-after-redis-restart.png", full_page=True)
    assert not page.js_errors, page.js_errors
