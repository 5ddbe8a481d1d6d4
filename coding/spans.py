"""Span arithmetic and highlight rendering.

Offsets are Python string indices: Unicode code points, not the UTF-16 code units a browser
selection reports (static/js/coding.js converts). Rendering splits a message at every span
boundary so overlapping highlights nest without breaking the text: the concatenated text
of the rendered segments is exactly the message content, which is what the browser counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from html import escape as _escape

from django.utils.safestring import SafeString, mark_safe


def escape(text: str) -> str:
    # The standard library's escape (same output as Django's for & < > " ') without the lazy-
    # string wrapper, which dominates when hundreds of highlights are rendered.
    return _escape(text, quote=True)


@dataclass(frozen=True)
class Span:
    id: int
    start: int
    end: int


def segments(length: int, spans: Iterable[Span]) -> list[tuple[int, int, tuple[int, ...]]]:
    """Split [0, length) at every span boundary: [(start, end, ids covering it), ...]."""
    spans = [s for s in spans if 0 <= s.start < s.end <= length]
    bounds = {0, length}
    for s in spans:
        bounds.add(s.start)
        bounds.add(s.end)
    points = sorted(bounds)
    starts: dict[int, list[int]] = {}
    ends: dict[int, list[int]] = {}
    for s in spans:
        starts.setdefault(s.start, []).append(s.id)
        ends.setdefault(s.end, []).append(s.id)
    active: dict[int, None] = {}
    out = []
    for a, b in zip(points, points[1:]):
        for i in ends.get(a, ()):
            active.pop(i, None)
        for i in starts.get(a, ()):
            active[i] = None
        if a < b:
            out.append((a, b, tuple(active)))
    return out


def render_highlights(content: str, spans: Sequence[Span], *, interactive: bool = True) -> SafeString:
    """The message text with <mark> elements for highlighted segments, escaped."""
    if not spans:
        return mark_safe(escape(content))  # noqa: S308 - escaped
    parts = []
    for a, b, ids in segments(len(content), spans):
        text = escape(content[a:b])
        if not ids:
            parts.append(text)
            continue
        depth = min(len(ids), 4)
        id_list = " ".join(str(i) for i in ids)
        parts.append(f'<mark class="hl hl-d{depth}" data-ann="{id_list}">{text}</mark>')
    return mark_safe("".join(parts))  # noqa: S308 - every text part is escaped above


def overlap_clusters(spans: Sequence[Span]) -> list[tuple[int, int, list[Span]]]:
    """Group spans into maximal runs of overlapping spans: [(start, end, spans), ...]."""
    clusters: list[tuple[int, int, list[Span]]] = []
    for s in sorted(spans, key=lambda s: (s.start, s.end)):
        if clusters and s.start < clusters[-1][1]:
            start, end, members = clusters[-1]
            members.append(s)
            clusters[-1] = (start, max(end, s.end), members)
        else:
            clusters.append((s.start, s.end, [s]))
    return clusters


def render_annotation_items(annotations, *, editable: bool) -> SafeString:
    """The <li> entries of a turn's highlight list (hot path of the transcript page: rendered
    here rather than in the template, which costs ~10x more for hundreds of highlights).
    Every participant-written string is escaped."""
    from django.utils.translation import gettext

    codes_label = escape(gettext("Codes"))
    memo_label = escape(gettext("Memo"))
    edit_label = escape(gettext("Edit"))
    this_label = escape(gettext("this highlight"))
    parts = []
    for a in annotations:
        chips = "".join(
            f'<li class="chip" data-code-id="{code_id}"><span class="user-text">{escape(text)}</span></li>'
            for code_id, text in a.codes
        )
        memo = (
            f'<p class="memo"><span class="sr-only">{memo_label}: </span><span class="user-text">{escape(a.memo)}</span></p>'
            if a.memo else ""
        )
        edit = (
            f'<button type="button" class="link" data-edit-ann="{a.id}">{edit_label}'
            f'<span class="sr-only"> {this_label}</span></button>'
            if editable else ""
        )
        parts.append(
            f'<li class="ann" id="ann-{a.id}" data-ann-id="{a.id}" data-start="{a.start}" data-end="{a.end}" '
            f'data-memo="{escape(a.memo)}"><q class="user-text excerpt">{escape(a.excerpt)}</q>'
            f'<ul class="chips" aria-label="{codes_label}">{chips}</ul>{memo}{edit}</li>'
        )
    return mark_safe("".join(parts))  # noqa: S308 - every participant string is escaped above
