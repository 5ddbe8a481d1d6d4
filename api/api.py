"""The read-only JSON API (django-ninja): every route is a GET, every workshop is checked with the
pages' own rule (workshops.permissions.access with the research roles), people who withdrew are
never returned, and large collections come by keyset pages or as one NDJSON stream."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Annotated, Optional

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import Http404
from ninja import NinjaAPI, Path, Query
from ninja.errors import AuthenticationError, HttpError
from ninja.security import HttpBearer
from pydantic import StringConstraints, WithJsonSchema

from api import schemas, selectors, services
from workshops import exports, permissions
from workshops.models import Workshop

MAX_LIMIT = 1000
SLUG = r"^[-a-zA-Z0-9_]{1,60}$"
CURSOR = r"^[0-9]{1,18}$"
# A time filter: published as an RFC 3339 date-time, read by _time (strict: a bare number is refused).
DateTimeText = Annotated[str, StringConstraints(max_length=64),
                         WithJsonSchema({"type": "string", "format": "date-time", "maxLength": 64})]


class RateLimited(Exception):
    def __init__(self, wait: int):
        self.wait = wait


def _rate(ident: str) -> None:
    from llm_gateway import limits

    wait = limits.hit("api", ident, settings.API_RATE_LIMIT)
    if wait:
        raise RateLimited(wait)


class TokenAuth(HttpBearer):
    """`Authorization: Bearer calma_…`: a personal token. A token that is wrong or revoked is
    refused even when the browser also has a session."""

    openapi_description = "A personal API token (Account → API tokens). Read-only."

    def authenticate(self, request, token):
        found = selectors.token_for(token)
        if found is None:
            raise AuthenticationError()
        _rate(f"t{found.pk}")
        services.token_used(token=found)
        return found.user

    def __call__(self, request):
        header = request.headers.get("Authorization")
        if header is not None and not header.lower().startswith("bearer "):
            raise AuthenticationError()
        return super().__call__(request)


def session_auth(request):
    """A logged-in browser (the docs page, a quick look); same limits as a token."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        _rate(f"u{user.pk}")
        return user
    return None


api = NinjaAPI(
    title="CALMA Workshops API",
    version="1",
    description="Read-only access to the research data of the workshops you may read as a facilitator or "
                "researcher. Pseudonyms only; people who withdrew are never returned. See docs/api.md.",
    auth=[TokenAuth(), session_auth],
    urls_namespace="api_v1",
    docs_url=None,
    openapi_url="/openapi.json",
)

User = get_user_model()


@api.exception_handler(RateLimited)
def _rate_limited(request, exc: RateLimited):
    response = api.create_response(request, {"detail": f"Too many requests: try again in {exc.wait} s."}, status=429)
    response["Retry-After"] = str(exc.wait)
    return response


@api.exception_handler(selectors.BadCursor)
def _bad_cursor(request, exc):
    return api.create_response(request, {"detail": "Malformed cursor: pass back next_cursor as it was given."},
                               status=400)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return api.create_response(request, {"detail": "Not found."}, status=404)


@api.exception_handler(AuthenticationError)
def _unauthorized(request, exc):
    response = api.create_response(request, {"detail": "Authentication required: a valid personal API token "
                                                        "(Authorization: Bearer …) or a logged-in session."},
                                   status=401)
    response["WWW-Authenticate"] = "Bearer"
    return response


ERRORS = {400: schemas.Error, 401: schemas.Error, 404: schemas.Error, 422: schemas.Error, 429: schemas.Error}


def _workshop(request, slug: str) -> Workshop:
    """The workshop, if the caller may read its research data (the pages' rule); else 404."""
    workshop = Workshop.objects.filter(slug=slug).first()
    if workshop is None:
        raise Http404
    _membership, refusal = permissions.access(request.auth, workshop, permissions.STAFF)
    if refusal is not None:
        raise Http404
    return workshop


_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})?$")


def _time(value: str | None, name: str) -> datetime | None:
    """A filter time: RFC 3339 (ISO 8601 date and time; no offset means UTC; a leap second is
    read as :59; digits past microseconds are dropped), as an aware UTC time. Anything else: 422."""
    if value is None:
        return None
    match = _RFC3339.match(value)
    try:
        if match is None:
            raise ValueError(value)
        year, month, day, hour, minute, second, fraction, offset = match.groups()
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        tz = dt_timezone.utc
        if offset and offset not in "Zz":
            sign = 1 if offset[0] == "+" else -1
            tz = dt_timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
        parsed = datetime(int(year), int(month), int(day), int(hour), int(minute), min(int(second), 59), micro,
                          tzinfo=tz)
    except ValueError:
        raise HttpError(422, f"`{name}` must be a date and time like 2026-05-01T09:00:00Z.") from None
    try:
        return parsed.astimezone(dt_timezone.utc)
    except OverflowError:  # at the ends of the calendar
        return (datetime.min if parsed.year < 5000 else datetime.max).replace(tzinfo=dt_timezone.utc)


def _workshop_out(workshop: Workshop) -> dict:
    from studies import selectors as study_selectors

    study = study_selectors.study_of(workshop)
    origin = study_selectors.origin_of(workshop)
    return {"slug": workshop.slug, "title": workshop.title, "deployment_context": workshop.deployment_context,
            "audience": workshop.audience, "language": workshop.language, "stage": workshop.stage,
            "study": study.slug if study else None,
            "template": origin.template.slug if origin and origin.template_id else None,
            "created_at": workshop.created_at}


@api.get("/workshops", url_name="list_workshops", operation_id="list_workshops", response={200: list[schemas.WorkshopOut], **ERRORS}, tags=["workshops"])
def list_workshops(request):
    """The workshops you may read (facilitator or researcher, not withdrawn)."""
    return [_workshop_out(w) for w in permissions.readable_workshops(request.auth, permissions.STAFF).order_by("id")]


@api.get("/workshops/{slug}", url_name="get_workshop", operation_id="get_workshop", response={200: schemas.WorkshopOut, **ERRORS}, tags=["workshops"])
def get_workshop(request, slug: str = Path(..., pattern=SLUG)):
    return _workshop_out(_workshop(request, slug))


def _study_out(study, user) -> dict:
    from studies import selectors as study_selectors

    return {"slug": study.slug, "title": study.title, "deployment_context": study.deployment_context,
            "workshops": [w.slug for w in study_selectors.study_workshops(study, user)], "created_at": study.created_at}


@api.get("/studies", url_name="list_studies", operation_id="list_studies", response={200: list[schemas.StudyOut], **ERRORS}, tags=["studies"])
def list_studies(request):
    """Studies with a workshop you may read; each lists only the workshops you may read."""
    from studies import selectors as study_selectors

    return [_study_out(s, request.auth) for s in study_selectors.visible_studies(request.auth).order_by("id")]


@api.get("/studies/{study_slug}", url_name="get_study", operation_id="get_study", response={200: schemas.StudyOut, **ERRORS}, tags=["studies"])
def get_study(request, study_slug: str = Path(..., pattern=SLUG)):
    from studies import selectors as study_selectors

    study = study_selectors.visible_studies(request.auth).filter(slug=study_slug).first()
    if study is None:
        raise Http404
    return _study_out(study, request.auth)


@api.get("/workshops/{slug}/axes", url_name="list_axes", operation_id="list_axes", response={200: list[schemas.AxisOut], **ERRORS}, tags=["discussion"])
def list_axes(request, slug: str = Path(..., pattern=SLUG)):
    """The group's final axes with provenance: the sources (picks, attributes, codes with their
    excerpts), examples, Likert summary, group rank and history."""
    from discussion import selectors as discussion_selectors

    return discussion_selectors.axis_provenance(_workshop(request, slug))


@api.get("/workshops/{slug}/group-ranking", url_name="list_group_ranking", operation_id="list_group_ranking", response={200: list[schemas.GroupRankOut], **ERRORS},
         tags=["discussion"])
def list_group_ranking(request, slug: str = Path(..., pattern=SLUG)):
    from discussion import selectors as discussion_selectors

    return [{"axis_id": r.axis_id, "rank": r.rank}
            for r in discussion_selectors.group_ranking(_workshop(request, slug))]


TAGS = {"members": "workshops", "conversations": "interact", "messages": "interact", "annotations": "reflect",
        "codes": "reflect", "attributes": "reflect", "likert-ratings": "discussion", "individual-ranks": "discussion",
        "evaluation-ratings": "evaluation", "judge-scores": "evaluation"}


def _register(name: str) -> None:
    item = schemas.ITEM_SCHEMAS[name]
    page_schema = schemas.page_of(item, item.__name__.replace("Out", "") + "Page")
    snake = name.replace("-", "_")

    def list_view(request, slug: str = Path(..., pattern=SLUG),
                  since: Optional[DateTimeText] = Query(None, description="Only rows from this time on (RFC 3339 / ISO 8601)."),
                  until: Optional[DateTimeText] = Query(None, description="Only rows before this time (RFC 3339 / ISO 8601)."),
                  cursor: Optional[str] = Query(None, pattern=CURSOR, description="next_cursor of the previous page."),
                  limit: int = Query(100, ge=1, le=MAX_LIMIT, description=f"Rows per page (1–{MAX_LIMIT}).")):
        workshop = _workshop(request, slug)
        rows, last = selectors.page(name, workshop, after=selectors.decode_cursor(cursor), limit=limit,
                                    since=_time(since, "since"), until=_time(until, "until"))
        return {"items": rows, "next_cursor": selectors.encode_cursor(last) if last else None}

    list_view.__name__ = f"list_{snake}"
    list_view.__doc__ = (f"{name.replace('-', ' ').capitalize()} of the workshop, oldest id first, a page at a time: "
                         "pass `next_cursor` back as `cursor` until it is null.")
    api.get(f"/workshops/{{slug}}/{name}", response={200: page_schema, **ERRORS}, tags=[TAGS[name]],
            operation_id=f"list_{snake}", url_name=f"list_{snake}")(list_view)

    def stream_view(request, slug: str = Path(..., pattern=SLUG),
                    since: Optional[DateTimeText] = Query(None, description="Only rows from this time on (RFC 3339 / ISO 8601)."),
                    until: Optional[DateTimeText] = Query(None, description="Only rows before this time (RFC 3339 / ISO 8601).")):
        workshop = _workshop(request, slug)
        rows = selectors.stream(name, workshop, since=_time(since, "since"), until=_time(until, "until"))

        def lines():
            for row in rows:
                yield json.dumps(item.model_validate(row).model_dump(mode="json"), ensure_ascii=False) + "\n"

        return exports.stream_download(request, lines(), content_type="application/x-ndjson",
                                       filename=f"{workshop.slug}-{name}.ndjson")

    stream_view.__name__ = f"stream_{snake}"
    stream_view.__doc__ = (f"Every row of {name.replace('-', ' ')} as newline-delimited JSON (one object per line, "
                           "same fields as the pages), streamed in constant server memory.")
    api.get(f"/workshops/{{slug}}/{name}/stream", response=ERRORS, tags=[TAGS[name]],
            operation_id=f"stream_{snake}", url_name=f"stream_{snake}",
            openapi_extra={"responses": {"200": {"description": "NDJSON: one object per line.", "content": {
                "application/x-ndjson": {"schema": {"$ref": f"#/components/schemas/{item.__name__}"}}}}}})(stream_view)


for _name in schemas.ITEM_SCHEMAS:
    _register(_name)
