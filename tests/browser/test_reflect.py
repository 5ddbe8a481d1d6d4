"""Reflect in a real browser: a participant codes two excerpts of their own conversation (one
with the keyboard only, one with a selection in mixed scripts) and one of the baseline,
reloads and finds them, groups codes into two attributes, renames a code and finds the new
name on the highlights; the facilitator opens the baseline comparison and generates the group
summary."""

import pytest
from playwright.sync_api import expect

from coding import services
from coding.models import Annotation, Attribute, Code
from tests.browser.conftest import login
from tests.factories import PASSWORD, facilitator_of, make_conversation, make_participant, make_workshop

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OWN_ANSWER = "नमस्ते! 🎉 Akbar ruled the Mughal Empire; 中国历史 is long. التاريخ مهم for students."
BASELINE_ANSWER = "Thanksgiving is a national holiday in the United States, celebrated in November."


def select_text(page, message_id, needle):
    """Select `needle` inside a model answer the way a mouse does, then release the button."""
    page.evaluate(
        """([id, needle]) => {
            const el = document.querySelector(`#turn-${id} [data-msg-text]`);
            const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
            let node, text = '', nodes = [];
            while ((node = walker.nextNode())) { nodes.push([node, text.length]); text += node.textContent; }
            const at = text.indexOf(needle);
            const find = (pos) => { for (const [n, s] of nodes) { if (pos <= s + n.textContent.length) return [n, pos - s]; } };
            const [sn, so] = find(at), [en, eo] = find(at + needle.length);
            const range = document.createRange(); range.setStart(sn, so); range.setEnd(en, eo);
            const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
            el.dispatchEvent(new MouseEvent('mouseup', {bubbles: true}));
        }""",
        [message_id, needle],
    )


@pytest.fixture
def inline_tasks(django_db_setup, settings):
    """The server runs the summary task inline (requested before new_page starts the server;
    the test database is set up first, before Playwright's event loop starts)."""
    settings.TEST_SERVER_ENV = {"CELERY_TASK_ALWAYS_EAGER": "1"}


def test_participant_codes_groups_and_facilitator_compares(inline_tasks, new_page):
    workshop = make_workshop(stage="reflect", slug="history")
    facilitator = facilitator_of(workshop)
    p1 = make_participant(workshop)
    p2 = make_participant(workshop)
    own = make_conversation(p1, turns=[("Tell me about the Mughals", OWN_ANSWER),
                                       ("Who came after Akbar?", "Jahangir, his son, ruled after him.")])
    # The facilitator's conversations are sandbox ones; this one is shared.
    baseline = make_conversation(facilitator, turns=[("What is Thanksgiving?", BASELINE_ANSWER)], is_baseline=True,
                                 is_sandbox=True)
    own_answer = own.messages.filter(role="assistant").order_by("position").first()
    baseline_answer = baseline.messages.get(role="assistant")
    # Another participant coded the same baseline excerpt differently.
    services.annotation_create(membership=p2, message_id=baseline_answer.id, start=0, end=40,
                               codes=["American viewpoint"])

    page = new_page(viewport={"width": 390, "height": 844})  # a phone
    login(page, p1.user.username, PASSWORD)
    page.goto(f"/w/{workshop.slug}/")
    page.get_by_role("link", name="Initial coding: highlight excerpts and write codes").click()
    expect(page.get_by_role("heading", name="Reflect: coding")).to_be_visible()
    page.get_by_role("link", name="Tell me about the Mughals").click()

    # 1. Keyboard only: focus the answer, extend a selection by words, Enter, type, Enter.
    msg = page.locator(f"#turn-{own_answer.id} [data-msg-text]")
    msg.focus()
    for _ in range(2):
        page.keyboard.press("Control+Shift+ArrowRight")
    page.keyboard.press("Enter")
    code = page.get_by_label("Code (Enter saves it)")
    expect(code).to_be_focused()
    code.type("greets in Hindi")
    page.keyboard.press("Enter")
    expect(page.locator(f"#turn-{own_answer.id} [data-ann-list]")).to_contain_text("greets in Hindi")
    code.type("friendly")  # a second code on the same excerpt
    page.keyboard.press("Enter")
    expect(page.locator(f"#turn-{own_answer.id} [data-ann-list] .chip")).to_have_count(2)
    page.keyboard.press("Escape")
    expect(msg).to_be_focused()
    own_answer2 = own.messages.filter(role="assistant").order_by("position").last()
    page.keyboard.press("j")  # next model answer
    expect(page.locator(f"#turn-{own_answer2.id} [data-msg-text]")).to_be_focused()
    page.keyboard.press("k")
    expect(msg).to_be_focused()

    # The page's UTF-16 → code point conversion agrees with Python for every script here.
    for needle in ["नमस्ते", "🎉", "Akbar", "中国历史", "التاريخ مهم", "students"]:
        js = page.evaluate("([t, n]) => window.calmaSpans.codePoints(t, t.indexOf(n))", [OWN_ANSWER, needle])
        assert js == OWN_ANSWER.index(needle), needle
        back = page.evaluate("([t, n]) => window.calmaSpans.utf16Units(t, n)", [OWN_ANSWER, js])
        assert back == len(OWN_ANSWER[:js].encode("utf-16-le")) // 2, needle

    # A selection dragged past the end of an answer is clamped to the answer.
    page.evaluate("""(id) => {
        const el = document.querySelector(`#turn-${id} [data-msg-text]`);
        const after = document.querySelector('nav.pager a');
        const range = document.createRange();
        range.setStart(el.firstChild, 0); range.setEnd(after.firstChild, 3);
        const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
        el.dispatchEvent(new MouseEvent('mouseup', {bubbles: true}));
    }""", own_answer2.id)
    expect(page.locator("[data-coder-excerpt]")).to_have_text("Jahangir, his son, ruled after him.")
    page.keyboard.press("Escape")  # focus is still on the first answer: Escape closes the panel
    expect(page.locator("#coder")).to_be_hidden()

    # 2. A mouse selection after an emoji, in Chinese: offsets are code points on the server.
    select_text(page, own_answer.id, "中国历史")
    expect(page.locator("[data-coder-excerpt]")).to_have_text("中国历史")
    code.fill("mentions China")
    page.get_by_label("Memo (optional, saved when you leave the field)").fill("Off-topic for Indian history?")
    page.keyboard.press("Tab")
    code.press("Enter")
    expect(page.locator(f"#turn-{own_answer.id} mark.hl")).to_have_count(2)
    page.screenshot(path="/tmp/shot-reflect-transcript.png", full_page=True)

    # 3. The baseline conversation.
    page.keyboard.press("Escape")  # done with this excerpt (also closes the suggestion list)
    expect(page.locator("#coder")).to_be_hidden()
    page.get_by_role("link", name="All conversations").click()
    page.get_by_role("link", name="What is Thanksgiving?").click()
    select_text(page, baseline_answer.id, "national holiday in the United States")
    expect(page.locator("[data-coder-excerpt]")).to_have_text("national holiday in the United States")
    code.fill("American viewpoint")
    page.get_by_role("button", name="Done").click()  # saves the typed code, then closes
    expect(page.locator(f"#turn-{baseline_answer.id} [data-ann-list]")).to_contain_text("American viewpoint")
    expect(page.locator("#coder")).to_be_hidden()
    # p2's codes are not visible to p1.
    expect(page.locator(f"#turn-{baseline_answer.id} mark.hl")).to_have_count(1)

    # Reload: everything is still there.
    page.goto(f"/w/{workshop.slug}/reflect/c/{own.id}/")
    expect(page.locator(f"#turn-{own_answer.id} mark.hl")).to_have_count(2)
    ann_list = page.locator(f"#turn-{own_answer.id} [data-ann-list]")
    expect(ann_list).to_contain_text("greets in Hindi")
    expect(ann_list).to_contain_text("friendly")
    expect(ann_list).to_contain_text("mentions China")
    expect(ann_list).to_contain_text("Off-topic for Indian history?")
    mine = {a.excerpt: a for a in Annotation.objects.filter(membership=p1)}
    assert len(mine) == 3 and "national holiday in the United States" in mine, list(mine)
    china = mine["中国历史"]
    assert OWN_ANSWER[china.start:china.end] == "中国历史"

    # Clicking a highlight opens it for editing.
    page.locator(f"#turn-{own_answer.id} mark.hl").last.click()
    expect(page.get_by_role("heading", name="Edit this highlight")).to_be_visible()
    page.keyboard.press("Escape")

    # 4. Focused coding (on a larger screen, where dragging makes sense): two attributes, one code in both.
    page.screenshot(path="/tmp/shot-reflect-phone.png", full_page=True)
    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto(f"/w/{workshop.slug}/reflect/attributes/")
    page.get_by_label("Name of the new attribute").fill("Cultural framing")
    page.get_by_label("Its definition").fill("Whose point of view the answer takes")
    page.get_by_role("button", name="Create attribute").click()
    expect(page.locator("[data-attribute-id]")).to_have_count(1)
    page.get_by_label("Name of the new attribute").fill("Warmth")
    page.get_by_label("Its definition").fill("How kindly the model speaks to a student")
    page.get_by_role("button", name="Create attribute").click()
    expect(page.locator("[data-attribute-id]")).to_have_count(2)
    cultural = Attribute.objects.get(name="Cultural framing")
    warmth = Attribute.objects.get(name="Warmth")
    # Keyboard alternative: choose a code and press Add.
    page.locator(f"#attr-add-{cultural.id}").select_option(label="American viewpoint")
    page.locator(f"#attribute-{cultural.id}").get_by_role("button", name="Add", exact=True).click()
    expect(page.locator(f"#attribute-{cultural.id} [data-attr-codes]")).to_contain_text("American viewpoint")
    page.locator(f"#attr-add-{cultural.id}").select_option(label="greets in Hindi")
    page.locator(f"#attribute-{cultural.id}").get_by_role("button", name="Add", exact=True).click()
    expect(page.locator(f"#attribute-{cultural.id} [data-attr-codes]")).to_contain_text("greets in Hindi")
    # Drag and drop from the pool, and the same code into a second attribute.
    page.locator("[data-pool-list] .chip", has_text="friendly").drag_to(page.locator(f"#attribute-{warmth.id}"))
    expect(page.locator(f"#attribute-{warmth.id} [data-attr-codes]")).to_contain_text("friendly")
    page.locator(f"#attr-add-{warmth.id}").select_option(label="greets in Hindi")
    page.locator(f"#attribute-{warmth.id}").get_by_role("button", name="Add", exact=True).click()
    expect(page.locator(f"#attribute-{warmth.id} [data-attr-codes]")).to_contain_text("greets in Hindi")
    expect(page.locator("[data-pool-list]")).to_contain_text("mentions China")  # still ungrouped
    # Edit a definition: saved when the field is left.
    definition = page.locator(f"#attr-def-{warmth.id}")
    definition.fill("How kindly and encouragingly the model speaks to a student")
    definition.press("Tab")
    expect(page.locator(f"#attribute-{warmth.id} [data-save-status]")).to_have_text("Saved.")
    page.locator(f"#attribute-{warmth.id} summary").click()
    expect(page.locator(f"#attribute-{warmth.id} .excerpts")).to_contain_text("नमस्ते")
    page.screenshot(path="/tmp/shot-reflect-focus.png", full_page=True)
    page.reload()
    expect(page.locator(f"#attribute-{warmth.id} [data-attr-codes] .chip")).to_have_count(2)
    assert set(warmth.codes.values_list("text", flat=True)) == {"friendly", "greets in Hindi"}
    assert Attribute.objects.get(pk=warmth.pk).definition.startswith("How kindly and encouragingly")
    assert not page.js_errors

    # Rename a code from the codebook (htmx): a name already in the codebook is refused next to
    # the field, keeping what was typed; a new name shows on the board and on the highlights.
    china = Code.objects.get(membership=p1, normalized="mentions china")
    row = page.locator(f"#code-row-{china.id}")
    row.locator("summary", has_text="Rename").click()  # a disclosure: the field opens on demand
    field = row.get_by_label("New name for “mentions China”")
    expect(field).to_be_visible()
    field.fill("Greets in HINDI")
    field.press("Enter")
    expect(row.locator("[data-rename-error]")).to_have_text("You already have the code “Greets in HINDI”.")
    expect(field).to_have_value("Greets in HINDI")
    expect(field).to_have_attribute("aria-invalid", "true")
    field.fill("mentions China, off-topic")
    page.screenshot(path="/tmp/shot-reflect-rename.png", full_page=True)
    row.get_by_role("button", name="Rename code").click()
    expect(page.locator("[data-focus-status]")).to_have_text("Renamed.")
    expect(page.locator(f"#code-row-{china.id} th")).to_contain_text("mentions China, off-topic")
    expect(page.locator("[data-pool-list]")).to_contain_text("mentions China, off-topic")
    expect(page.locator(f"#code-row-{china.id} summary")).to_be_focused()
    assert Code.objects.get(pk=china.pk).text == "mentions China, off-topic"
    page.goto(f"/w/{workshop.slug}/reflect/c/{own.id}/")
    ann_list = page.locator(f"#turn-{own_answer.id} [data-ann-list]")
    expect(ann_list.locator(f'.chip[data-code-id="{china.id}"]')).to_have_text("mentions China, off-topic")
    expect(ann_list.get_by_text("mentions China", exact=True)).to_have_count(0)  # the old name is gone
    assert not page.js_errors

    # 5. The facilitator: baseline comparison and group summary.
    fac = new_page()
    login(fac, workshop.created_by.username, PASSWORD)
    fac.goto(f"/w/{workshop.slug}/")
    fac.get_by_role("link", name="Reflect: baseline comparison across coders").click()
    cluster = fac.locator("[data-cluster]").first
    expect(cluster.locator(f'tr[data-coder="{p1.pseudonym}"]')).to_contain_text("American viewpoint")
    expect(cluster.locator(f'tr[data-coder="{p2.pseudonym}"]')).to_contain_text("American viewpoint")
    expect(cluster).to_contain_text("Highlighted by 2 participants")
    fac.screenshot(path="/tmp/shot-reflect-compare.png", full_page=True)
    fac.goto(f"/w/{workshop.slug}/")
    fac.get_by_role("link", name="Reflect: group summary").click()
    fac.get_by_role("button", name="Generate the summary").click()
    expect(fac.get_by_text("Up to date")).to_be_visible()
    expect(fac.locator("[data-word-cloud]")).to_contain_text("American viewpoint")
    table = fac.locator("#label-table")
    expect(table.locator("tbody tr").first).to_contain_text("American viewpoint")  # used twice
    table.get_by_role("button", name="Label").click()
    expect(table.locator("thead th").first).to_have_attribute("aria-sort", "ascending")
    expect(fac.locator(f'[data-participant="{p1.pseudonym}"]')).to_contain_text("mentions China")
    fac.screenshot(path="/tmp/shot-reflect-summary.png", full_page=True)
    assert not fac.js_errors

    # The participant can open the summary too, and sees only their own section.
    page.goto(f"/w/{workshop.slug}/reflect/summary/")
    expect(page.locator(f'[data-participant="{p1.pseudonym}"]')).to_be_visible()
    expect(page.locator(f'[data-participant="{p2.pseudonym}"]')).to_have_count(0)
