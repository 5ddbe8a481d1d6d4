import re

from django import template
from django.utils.translation import gettext as _

register = template.Library()

_HTTP_STATUS = re.compile(r"HTTP (\d{3}) from ")


@register.filter
def utf16len(text) -> int:
    return len((text or "").encode("utf-16-le")) // 2


@register.filter
def calm_error(kind: str, detail: str = "") -> str:
    """What a participant reads when an answer did not finish: what happened, calmly, without
    configuration details. `detail` is the stored error (for the HTTP status of a server error)."""
    if kind in ("auth", "bad_request"):
        return _("The model is not available right now. The facilitator has been told.")
    if kind == "rate_limited":
        return _("The model is busy. Please try again in a moment.")
    if kind in ("timeout_first_token", "timeout_connect"):
        return _("The model did not answer in time. You can try again.")
    if kind == "server":
        status = http_status(detail)
        if status:
            return _("The model server returned an error (HTTP %(status)s). You can try again.") % {"status": status}
        return _("The model server returned an error. You can try again.")
    if kind == "connect":
        return _("The model server could not be reached. You can try again.")
    if kind == "upstream_error":
        return _("The model server reported an error while answering. You can try again.")
    if kind == "lost":
        return _("The answer stopped because the server restarted. You can try again.")
    return _("The answer was cut off. You can try again.")


def http_status(detail: str) -> int | None:
    """The HTTP status in an error stored by the client ("HTTP 503 from <endpoint>: ...")."""
    match = _HTTP_STATUS.match(detail or "")
    return int(match.group(1)) if match else None
