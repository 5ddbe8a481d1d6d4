"""People's labels and short forms of their text: the one label key (`normalize`), the one
cleaned display form (`clean`), titles made from a first message (`shorten`)."""

from __future__ import annotations

import unicodedata

ELLIPSIS = "…"


def clean(text: str | None) -> str:
    """A label as shown and stored: Unicode NFC (an "é" typed as e + accent and one typed as é
    are the same text), on one line, runs of whitespace as one space, no space at either end."""
    return unicodedata.normalize("NFC", " ".join((text or "").split()))


def normalize(text: str | None) -> str:
    """The one key for comparing labels (codes, attributes, card names, picks, search): the
    cleaned text casefolded ("Straße", "STRASSE" and "strasse" are one key). Code.normalized
    stores exactly this (changing it would need a data migration)."""
    return clean(text).casefold()


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


def contains(text: str | None, query: str | None) -> bool:
    """Whether `query` occurs in `text`, whatever their normalisation or case."""
    q = normalize(query)
    return bool(q) and q in normalize(text)
