"""Short forms of people's text (titles made from a first message, labels in buttons)."""

from __future__ import annotations

ELLIPSIS = "…"


def shorten(text: str | None, limit: int) -> str:
    """`text` on one line, at most `limit` characters: cut at the last word boundary that fits,
    with an ellipsis; a single word longer than the limit (or a script written without spaces)
    is cut at the limit. The one helper for every title made from someone's text."""
    line = " ".join((text or "").split())
    if len(line) <= limit:
        return line
    if limit <= 1:
        return ELLIPSIS[:limit]
    room = line[: limit - 1]
    cut = room.rstrip()
    if cut == room and not line[limit - 1].isspace():  # the room ends inside a word: drop it
        boundary = cut.rfind(" ")
        if boundary >= max(1, (limit - 1) // 3):  # unless that loses more than two thirds
            cut = cut[:boundary]
    return cut.rstrip(" ,;:.-–—") + ELLIPSIS


def normalize(text: str | None) -> str:
    """The one comparison key for people's text (search, labels that must match): Unicode
    compatibility-composed (NFKC: a decomposed "é" or "क़" equals the composed one, full-width
    letters equal ASCII), case-folded where the script has case (ß -> ss), whitespace collapsed.
    Scripts without case (Devanagari, Arabic) are only normalised."""
    import unicodedata

    folded = unicodedata.normalize("NFKC", text or "").casefold()
    return unicodedata.normalize("NFC", " ".join(folded.split()))


def contains(text: str | None, query: str | None) -> bool:
    """Whether `query` occurs in `text`, whatever their normalisation or case."""
    q = normalize(query)
    return bool(q) and q in normalize(text)
