"""Markdown for untrusted text (orientation, model output): rendered, then sanitized."""

from __future__ import annotations

import functools

import nh3
from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")
_md_breaks = MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True}).enable("table").enable("strikethrough")

_TAGS = {
    "p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "h1", "h2", "h3",
    "h4", "h5", "h6", "hr", "a", "table", "thead", "tbody", "tr", "th", "td", "s", "del",
}
_ATTRS = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}, "ol": {"start"}}


def render_markdown(text: str, *, breaks: bool = False) -> str:
    """Markdown to safe HTML: raw HTML in the source is escaped, then nh3 allow-lists the result.

    breaks=True turns single newlines into line breaks (chat answers); off for documents.
    A pure function of its input, so recent results are kept: a chat thread or a transcript
    re-renders the same answers many times (about 1 ms each to parse and sanitize).
    """
    return _render(text or "", breaks)


@functools.lru_cache(maxsize=2048)
def _render(text: str, breaks: bool) -> str:
    html = (_md_breaks if breaks else _md).render(text)
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRS,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
