from django import template
from django.utils.safestring import mark_safe

from workshops.markdown import render_markdown
from workshops.text import shorten

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text):
    return mark_safe(render_markdown(text))  # noqa: S308 - sanitized by nh3


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter(name="shorten")
def shorten_filter(text, limit):
    """{{ title|shorten:40 }}: cut at a word boundary with an ellipsis (workshops.text.shorten)."""
    return shorten(str(text or ""), int(limit))


@register.filter(name="wtext")
def workshop_text_filter(workshop, field):
    """The workshop's content in the active language (falls back to the workshop's own text)."""
    from workshops.i18n import workshop_text

    return workshop_text(workshop, field)
