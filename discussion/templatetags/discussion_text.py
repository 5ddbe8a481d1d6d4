"""The board's text limits in its templates: the same numbers and the same message the services
enforce (discussion.models, services._common), so a form field, the page's own check
before sending, and the server's refusal never disagree."""

from django import template

from discussion.models import COMMENT_MAX, DEFINITION_MAX, NAME_MAX
from discussion.services._common import too_long_message

register = template.Library()

LIMITS = {"name": NAME_MAX, "definition": DEFINITION_MAX, "comment": COMMENT_MAX}


@register.simple_tag
def text_limit(field: str) -> int:
    return LIMITS[field]


@register.simple_tag
def text_limit_message(field: str) -> str:
    """The services' refusal of a too-long text, for `field` (escaped by the template)."""
    return too_long_message(LIMITS[field])
