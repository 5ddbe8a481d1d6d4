"""The model-answer block of the transcript, rendered in Python.

The transcript page shows up to hundreds of highlights; the Django template engine costs
several times more than string building for these repeated blocks (see
benchmarks/coding_render.py). The same function renders the block for the full page and
for the fragment a save returns, so the two never differ. Every participant- or model-written
string is escaped; UI strings go through gettext with the same messages as the templates.
"""

from __future__ import annotations

from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, ngettext

from coding.spans import escape


def render_turn_article(turn) -> SafeString:
    m = turn.message
    mid = m.id
    if turn.number:
        title = escape(gettext("Model answer %(n)s") % {"n": turn.number})
    else:
        title = escape(gettext("Model answer"))
    badge = ""
    if turn.annotations:
        n = len(turn.annotations)
        # Outside the f-string: xgettext does not read inside f-string expressions.
        label = ngettext("%(n)s highlight", "%(n)s highlights", n) % {"n": n}
        badge = f' <span class="badge ok" data-coded>{escape(label)}</span>'
    replaced = ""
    if turn.replaced:
        replaced = ('<p class="muted small">' + escape(ngettext(
            "An earlier answer to this question was replaced and is not shown.",
            "%(n)s earlier answers to this question were replaced and are not shown.", turn.replaced,
        ) % {"n": turn.replaced}) + "</p>")
    if turn.codable:
        label = escape(gettext("Model answer text: select words to code them"))
        body = (f'<div class="msg user-text" data-msg-text tabindex="0" role="document" aria-label="{label}">'
                f"{turn.html}</div>")
    else:
        status = escape(gettext("Not codable: %(s)s.") % {"s": m.get_status_display()})
        body = (f'<div class="msg user-text not-codable">{escape(m.content)}</div>'
                f'<p class="muted small">{status}</p>')
    list_label = escape(gettext("Highlights on this answer"))
    codable = " data-codable" if turn.codable else ""
    return mark_safe(  # noqa: S308 - every dynamic part above is escaped or already safe HTML
        f'<article class="turn turn-model" id="turn-{mid}" data-message-id="{mid}"{codable} '
        f'aria-labelledby="turn-h-{mid}"><h2 class="who" id="turn-h-{mid}">{title}{badge}</h2>{replaced}{body}'
        f'<ul class="ann-list" data-ann-list aria-label="{list_label}">{turn.items_html}</ul></article>'
    )
