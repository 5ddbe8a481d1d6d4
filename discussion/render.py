"""The board's HTML, rendered by the server from the partials of templates/discussion/board.html.

One change is rendered ONCE, here, and the same text goes to every socket of the board (the
broadcast carries it beside the JSON of the change). Nothing in it depends on who receives it:
withdrawn members' text is already masked by the selectors, and per-viewer parts (an
observer's missing controls, who else is editing, one's own draft) are applied by the browser.
Rendered in the workshop's language; the page itself is rendered in the viewer's.
"""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation

BOARD = "discussion/board.html"


def _render(partial: str, context: dict, language: str | None) -> str:
    with translation.override(language or settings.LANGUAGE_CODE):
        return render_to_string(f"{BOARD}#{partial}", context)


def card_html(card: dict, language: str | None) -> str:
    """A whole card (a new card, or any change but a text edit)."""
    return _render("card", {"card": card}, language)


def card_text_html(card: dict, language: str | None) -> str:
    """A text edit: the name, definition and meta line, each an element with its own id
    that the browser swaps out of band (the rest of the card is unchanged)."""
    context = {"card": card}
    return "".join(_render(p, context, language) for p in ("card-text", "card-body", "card-meta"))


def cards_html(cards: list[dict], language: str | None) -> str:
    return _render("cards", {"cards": cards}, language)


def tally_html(tally: list[dict], language: str | None) -> str:
    return _render("tally", {"tally": tally}, language)


def ranking_html(ranking: list[dict], language: str | None) -> str:
    return _render("ranking", {"ranking": ranking}, language)
