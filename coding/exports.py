"""Research exports of the Reflect stage: streamed CSV and a REFI-QDA codebook (.qdc).

Columns are stable and documented in docs/coding.md. Participants appear only by pseudonym;
withdrawn members are left out; every field is quoted; text cells that a spreadsheet would
read as a formula (starting with = + - @, a tab or a carriage return) get a leading apostrophe.
"""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Iterable, Iterator
from xml.sax.saxutils import quoteattr
from xml.sax.saxutils import escape as xml_escape

from django.db.models import Count, Prefetch

from coding.models import AnnotationCode, Attribute, Code
from workshops.models import Role, Workshop

ANNOTATION_COLUMNS = [
    "workshop", "participant", "conversation_id", "message_id", "is_baseline",
    "start", "end", "excerpt", "code", "memo", "created",
]
CODEBOOK_COLUMNS = ["workshop", "participant", "code", "definition", "uses", "created"]
FOCUSED_COLUMNS = ["workshop", "participant", "attribute", "definition", "codes", "position"]

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CODES_SEPARATOR = " | "

# GUIDs in the .qdc are derived from this namespace, the workshop and the row id, so that
# exporting twice gives the same identifiers (QDA software can then merge re-imports).
GUID_NAMESPACE = uuid.UUID("6f1c8f0e-3b7a-5b7e-9a39-1d2c6a4e0c11")


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(text: str) -> str:
    """Text safe in XML 1.0 element content."""
    return xml_escape(_XML_INVALID.sub("", text))


def _xa(text: str) -> str:
    """Text safe as a quoted XML attribute value."""
    return quoteattr(_XML_INVALID.sub("", text))


def neutralize(value):
    """Make a cell safe to open in a spreadsheet; non-strings pass through."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class _Echo:
    def write(self, value):
        return value


def stream_csv(columns: list[str], rows: Iterable[list]) -> Iterator[str]:
    writer = csv.writer(_Echo(), quoting=csv.QUOTE_ALL)
    yield "\ufeff" + writer.writerow(columns)  # BOM: Excel reads UTF-8 (Devanagari, Arabic) correctly
    for row in rows:
        yield writer.writerow([neutralize(v) for v in row])


def _participants(workshop: Workshop):
    return {"membership__workshop": workshop, "membership__withdrawn_at__isnull": True,
            "membership__role": Role.PARTICIPANT}


def annotation_rows(workshop: Workshop) -> Iterator[list]:
    """One row per span × code."""
    qs = (
        AnnotationCode.objects.filter(**{f"annotation__{k}": v for k, v in _participants(workshop).items()})
        .filter(annotation__message__conversation__owner__withdrawn_at__isnull=True)
        .select_related("annotation__membership", "annotation__message__conversation", "code")
        .order_by("annotation__membership__pseudonym", "annotation__message__conversation_id",
                  "annotation__message__position", "annotation__start", "annotation__end", "code__normalized")
    )
    for link in qs.iterator(chunk_size=2000):
        a = link.annotation
        yield [
            workshop.slug, a.membership.pseudonym, a.message.conversation_id, a.message_id,
            "true" if a.message.conversation.is_baseline else "false",
            a.start, a.end, a.excerpt, link.code.text, a.memo, a.created_at.isoformat(),
        ]


def codebook_rows(workshop: Workshop) -> Iterator[list]:
    qs = (
        Code.objects.filter(**_participants(workshop))
        .select_related("membership")
        .annotate(uses=Count("annotations", distinct=True))
        .order_by("membership__pseudonym", "normalized")
    )
    for c in qs.iterator(chunk_size=2000):
        yield [workshop.slug, c.membership.pseudonym, c.text, c.memo, c.uses, c.created_at.isoformat()]


def focused_rows(workshop: Workshop) -> Iterator[list]:
    qs = (
        Attribute.objects.filter(**_participants(workshop))
        .select_related("membership")
        .prefetch_related(Prefetch("codes", queryset=Code.objects.order_by("normalized")))
        .order_by("membership__pseudonym", "position", "id")
    )
    for a in qs.iterator(chunk_size=500):
        yield [workshop.slug, a.membership.pseudonym, a.name, a.definition,
               CODES_SEPARATOR.join(c.text for c in a.codes.all()), a.position]


def guid(kind: str, workshop: Workshop, pk) -> str:
    return str(uuid.uuid5(GUID_NAMESPACE, f"{kind}:{workshop.pk}:{pk}"))


def qdc_document(workshop: Workshop) -> Iterator[str]:
    """REFI-QDA codebook 1.0: each participant is a non-codable parent code holding their codes
    (the same words from two people stay two codes: annotator-level data is kept); each
    attribute is a Set whose members are its codes."""
    yield '<?xml version="1.0" encoding="utf-8"?>\n'
    yield (f'<CodeBook xmlns="urn:QDA-XML:codebook:1.0" origin={quoteattr("CALMA Workshops")}>\n<Codes>\n')
    codes = (
        Code.objects.filter(**_participants(workshop)).select_related("membership")
        .order_by("membership__pseudonym", "normalized")
    )
    current = None
    for c in codes.iterator(chunk_size=2000):
        if c.membership_id != current:
            if current is not None:
                yield "  </Code>\n"
            current = c.membership_id
            yield (f'  <Code guid="{guid("member", workshop, c.membership_id)}" '
                   f'name={_xa(c.membership.pseudonym)} isCodable="false">\n'
                   f"    <Description>{_x('Codes of participant ' + c.membership.pseudonym)}</Description>\n")
        yield f'    <Code guid="{guid("code", workshop, c.pk)}" name={_xa(c.text)} isCodable="true"'
        if c.memo:
            yield f">\n      <Description>{_x(c.memo)}</Description>\n    </Code>\n"
        else:
            yield "/>\n"
    if current is not None:
        yield "  </Code>\n"
    yield "</Codes>\n"
    attributes = (
        Attribute.objects.filter(**_participants(workshop)).select_related("membership")
        .prefetch_related(Prefetch("codes", queryset=Code.objects.order_by("normalized")))
        .order_by("membership__pseudonym", "position", "id")
    )
    opened = False
    for a in attributes:
        if not opened:
            yield "<Sets>\n"
            opened = True
        yield f'  <Set guid="{guid("attribute", workshop, a.pk)}" name={_xa(a.membership.pseudonym + ": " + a.name)}>\n'
        if a.definition:
            yield f"    <Description>{_x(a.definition)}</Description>\n"
        for c in a.codes.all():
            yield f'    <MemberCode targetGUID="{guid("code", workshop, c.pk)}"/>\n'
        yield "  </Set>\n"
    if opened:
        yield "</Sets>\n"
    yield "</CodeBook>\n"
