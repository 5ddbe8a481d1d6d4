"""The card cap as a participant meets it: the refusal is shown on the board as a message, and
goes once a later change of theirs goes through."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login
from tests.discussion.conftest import build, goto
from tests.factories import PASSWORD


@pytest.fixture
def capped_server_env(settings):
    settings.TEST_SERVER_ENV = {"DISCUSSION_CARDS_PER_MEMBER": "2"}


@pytest.mark.timeout(300)
def test_a_participant_at_the_card_cap_sees_why_their_card_was_refused(django_db_setup, capped_server_env,
                                                                        new_page, transactional_db):
    d = build()
    goto(d, 4)
    page = new_page()
    login(page, d.people[0].user.username, PASSWORD)
    page.goto(f"/w/{d.workshop.slug}/discuss/")
    for name in ("Fairness", "Accuracy", "One too many"):
        page.get_by_label("Name", exact=True).first.fill(name)
        page.get_by_role("button", name="Add card").click()
        if name != "One too many":
            expect(page.locator(".axis-card", has_text=name)).to_be_visible()
    status = page.locator("#board-status")
    expect(status).to_contain_text("You have 2 cards on the board, the most one person may add")
    expect(page.locator(".axis-card", has_text="One too many")).to_have_count(0)
    expect(page.get_by_label("Name", exact=True).first).to_have_value("One too many")  # what was typed is kept
    page.screenshot(path="/tmp/robust-board-cap.png", full_page=False)
    # Once one of their cards is off the board the kept text goes through, and the refusal,
    # no longer true, leaves the screen.
    page.on("dialog", lambda dialog: dialog.accept())
    mine = page.locator(".axis-card", has=page.get_by_role("heading", name="Fairness", exact=True))
    mine.get_by_role("button", name="Remove from board").click()
    expect(mine).to_have_count(0)
    expect(status).to_have_text("")
    page.get_by_role("button", name="Add card").click()
    expect(page.locator(".axis-card", has_text="One too many")).to_be_visible()
    expect(status).not_to_have_class(re.compile(r"\berror\b"))
    assert not page.js_errors


ACK = re.compile(r'"kind":\s*"ack"')

# Counts what the page sends over its sockets (an init script: it runs before the page's own
# scripts, outside the page's Content-Security-Policy).
COUNT_SENDS = """(() => {
  const send = WebSocket.prototype.send;
  window.__sent = [];
  window.__received = 0;
  WebSocket.prototype.send = function (data) { window.__sent.push(String(data).slice(0, 200)); return send.call(this, data); };
  const handler = Object.getOwnPropertyDescriptor(WebSocket.prototype, "onmessage");
  Object.defineProperty(WebSocket.prototype, "onmessage", {
    get() { return handler.get.call(this); },
    set(fn) { handler.set.call(this, fn && function (ev) { window.__received += 1; return fn.call(this, ev); }); },
  });
})();"""


def test_a_text_over_its_limit_is_not_sent_and_stays_where_it_was_typed(django_db_setup, new_page, transactional_db):
    """The fields' maxlength stops typing and pasting; with it taken off (a script, an old
    browser), the page itself refuses the text in the services' words, sends nothing (a huge
    frame once froze the page long enough for its sockets to be dropped, and the refusal with
    them), and keeps the text for shortening."""
    from discussion import services as discussion_services
    from discussion.models import Axis

    d = build()
    goto(d, 4)
    card = discussion_services.axis_create(membership=d.people[1], name="Balance", definition="Several views")
    page = new_page(viewport={"width": 390, "height": 844})
    page.context.add_init_script(COUNT_SENDS)
    # The board's plain acks are held back until the test lets them go: the ack of "I am
    # editing" (sent when the editor opens) then arrives after the refusal, as it may on a slow
    # connection, and must not wipe it off the screen.
    held, hold = [], {"on": True}

    def relay(ws):
        server = ws.connect_to_server()
        server.on_message(lambda m: held.append((ws, m)) if hold["on"] and ACK.search(str(m)) else ws.send(m))

    page.route_web_socket(re.compile(r"/board/"), relay)
    login(page, d.people[0].user.username, PASSWORD)
    page.goto(f"/w/{d.workshop.slug}/discuss/")
    expect(page.locator("html")).to_have_attribute("data-board", "connected")
    # The board's snapshot (loaded at start and again when the socket opens) re-renders the
    # cards: the text below is set by script, so it must go into the editor that stays.
    page.wait_for_load_state("networkidle")
    node = page.locator(f"#card-{card.pk}")
    node.get_by_role("button", name="Edit").click()
    field = page.locator(f"#edit-def-{card.pk}")
    assert field.get_attribute("maxlength") == "2000"  # the services' DEFINITION_MAX, not a copy of it
    too_long = "स" * 2001
    field.evaluate("(t, text) => { t.removeAttribute('maxlength'); t.value = text; t.dispatchEvent(new Event('input', {bubbles: true})); }",
                   too_long)
    node.get_by_role("button", name="Save").click()
    status = page.locator("#board-status")
    expect(status).to_have_text("Definition: At most 2000 characters.")
    expect(status).to_have_class(re.compile(r"\berror\b"))
    for _ in range(60):  # the editing notice's ack is on its way (bounded: 30 s)
        if held:
            break
        page.wait_for_timeout(500)
    assert held, "the ack of the editing notice never came"
    received = page.evaluate("window.__received")
    hold["on"] = False
    for ws, message in held:
        ws.send(message)
    for _ in range(60):
        if page.evaluate("window.__received") >= received + len(held):
            break
        page.wait_for_timeout(500)
    assert page.evaluate("window.__received") >= received + len(held)
    expect(status).to_have_text("Definition: At most 2000 characters.")  # an earlier command's ack leaves it
    assert field.input_value() == too_long  # still in the open editor
    assert not [f for f in page.evaluate("window.__sent") if "card.update" in f]
    card.refresh_from_db()
    assert card.definition == "Several views"
    page.screenshot(path="/tmp/robust-board-too-long.png", full_page=False)

    # A comment likewise; the new-card form's name too.
    node.locator("summary", has_text="Comments").click()
    comment = page.locator(f"#comment-{card.pk}")
    comment.evaluate("(c) => { c.removeAttribute('maxlength'); c.value = 'x'.repeat(2001); }")
    comment.press("Enter")
    expect(status).to_have_text("Comment: At most 2000 characters.")
    assert len(comment.input_value()) == 2001
    name = page.locator("#card-new-name")
    name.evaluate("(n) => { n.removeAttribute('maxlength'); n.value = 'N'.repeat(121); }")
    page.get_by_role("button", name="Add card").click()
    expect(status).to_have_text("Name: At most 120 characters.")
    assert not [f for f in page.evaluate("window.__sent") if "card.comment" in f or "card.create" in f]

    # Shortened, the same edit goes through and the refusal leaves the screen.
    field.fill("स" * 2000)
    node.get_by_role("button", name="Save").click()
    expect(node.locator(".card-definition")).to_have_text("स" * 2000)
    expect(status).to_have_text("")
    card.refresh_from_db()
    assert card.definition == "स" * 2000
    assert Axis.objects.filter(workshop=d.workshop, status="active").count() == 1
    assert not page.js_errors, page.js_errors
