from django import template
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def utf16len(text) -> int:
    return len((text or "").encode("utf-16-le")) // 2


@register.filter
def calm_error(kind: str) -> str:
    """What a participant reads when an answer did not finish: calm, no configuration details."""
    if kind in ("auth", "bad_request"):
        return _("The model is not available right now. The facilitator has been told.")
    if kind == "rate_limited":
        return _("The model is busy. Please try again in a moment.")
    if kind in ("timeout_first_token", "timeout_connect", "connect", "server"):
        return _("The model did not answer in time. You can try again.")
    if kind == "lost":
        return _("The answer stopped because the server restarted. You can try again.")
    return _("The answer was cut off. You can try again.")
