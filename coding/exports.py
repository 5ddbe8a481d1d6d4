"""Research exports of the Reflect stage: streamed CSV, a REFI-QDA codebook (.qdc) and a
REFI-QDA project (.qdpx: transcripts, coded segments with their coder, codes, memos).

Columns are stable and documented in docs/coding.md. Participants appear only by pseudonym;
withdrawn members are left out. The CSVs are written by workshops.exports.stream_csv (every
field quoted, formulas neutralised).
"""

from __future__ import annotations

import bisect
import datetime
import itertools
import operator
import re
import tempfile
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from django.db.models import Count, Prefetch
from django.utils import timezone

from coding.models import Annotation, AnnotationCode, Attribute, Code
from coding.selectors import CODABLE_STATUSES, research_conversations
from workshops.exports import ZipSink, zip_entry
from workshops.models import Membership, Role, Workshop

ANNOTATION_COLUMNS = [
    "workshop", "participant", "conversation_id", "message_id", "is_baseline",
    "start", "end", "excerpt", "code", "memo", "created",
]
CODEBOOK_COLUMNS = ["workshop", "participant", "code", "definition", "uses", "created"]
FOCUSED_COLUMNS = ["workshop", "participant", "attribute", "definition", "codes", "position"]

CODES_SEPARATOR = " | "

# Rows read from a server-side cursor per round trip: what an export holds at once.
EXPORT_PAGE = 500

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


def _participants(workshop: Workshop):
    return {"membership__workshop": workshop, "membership__withdrawn_at__isnull": True,
            "membership__role": Role.PARTICIPANT}


def annotation_rows(workshop: Workshop) -> Iterator[list]:
    """One row per span × code, read through a server-side cursor a page at a time, and only the
    columns written (not whole messages: memory stays flat however many rows there are)."""
    qs = (
        AnnotationCode.objects.filter(**{f"annotation__{k}": v for k, v in _participants(workshop).items()})
        .filter(annotation__message__conversation__owner__withdrawn_at__isnull=True)
        .order_by("annotation__membership__pseudonym", "annotation__message__conversation_id",
                  "annotation__message__position", "annotation__start", "annotation__end", "code__normalized")
        .values_list("annotation__membership__pseudonym", "annotation__message__conversation_id",
                     "annotation__message_id", "annotation__message__conversation__is_baseline",
                     "annotation__start", "annotation__end", "annotation__excerpt", "code__text",
                     "annotation__memo", "annotation__created_at")
    )
    for pseudonym, conversation_id, message_id, is_baseline, start, end, excerpt, code, memo, created in (
            qs.iterator(chunk_size=EXPORT_PAGE)):
        yield [workshop.slug, pseudonym, conversation_id, message_id, "true" if is_baseline else "false",
               start, end, excerpt, code, memo, created.isoformat()]


def codebook_rows(workshop: Workshop) -> Iterator[list]:
    qs = (
        Code.objects.filter(**_participants(workshop))
        .select_related("membership")
        .annotate(uses=Count("annotations", distinct=True))
        .order_by("membership__pseudonym", "normalized")
    )
    for c in qs.iterator(chunk_size=EXPORT_PAGE):
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


def _code_elements(workshop: Workshop, indent: str = "") -> Iterator[str]:
    """The <Code> tree shared by the codebook and the project: each participant is a non-codable
    parent code holding their codes (the same words from two people stay two codes:
    annotator-level data is kept). Nothing is yielded when nobody has a code."""
    codes = (
        Code.objects.filter(**_participants(workshop)).select_related("membership")
        .order_by("membership__pseudonym", "normalized")
    )
    current = None
    for c in codes.iterator(chunk_size=EXPORT_PAGE):
        if c.membership_id != current:
            if current is not None:
                yield f"{indent}  </Code>\n"
            current = c.membership_id
            yield (f'{indent}  <Code guid="{guid("member", workshop, c.membership_id)}" '
                   f'name={_xa(c.membership.pseudonym)} isCodable="false">\n'
                   f"{indent}    <Description>{_x('Codes of participant ' + c.membership.pseudonym)}</Description>\n")
        yield f'{indent}    <Code guid="{guid("code", workshop, c.pk)}" name={_xa(c.text)} isCodable="true"'
        if c.memo:
            yield f">\n{indent}      <Description>{_x(c.memo)}</Description>\n{indent}    </Code>\n"
        else:
            yield "/>\n"
    if current is not None:
        yield f"{indent}  </Code>\n"


def _set_elements(workshop: Workshop, member_attribute: str) -> Iterator[str]:
    """Each attribute (focused coding) as a Set whose members are its codes. The codebook schema
    names the member by `guid`, the project schema by `targetGUID`."""
    attributes = (
        Attribute.objects.filter(**_participants(workshop)).select_related("membership")
        .prefetch_related(Prefetch("codes", queryset=Code.objects.order_by("normalized")))
        .order_by("membership__pseudonym", "position", "id")
    )
    for a in attributes.iterator(chunk_size=500):
        yield f'  <Set guid="{guid("attribute", workshop, a.pk)}" name={_xa(a.membership.pseudonym + ": " + a.name)}>\n'
        if a.definition:
            yield f"    <Description>{_x(a.definition)}</Description>\n"
        for c in a.codes.all():
            yield f'    <MemberCode {member_attribute}="{guid("code", workshop, c.pk)}"/>\n'
        yield "  </Set>\n"


def _wrapped(open_tag: str, close_tag: str, elements: Iterable[str]) -> Iterator[str]:
    """`elements` inside open/close tags, or nothing at all when there are none (the schemas
    require at least one child in Codes, Users, Sources, Notes and Sets)."""
    opened = False
    for element in elements:
        if not opened:
            yield open_tag
            opened = True
        yield element
    if opened:
        yield close_tag


def qdc_document(workshop: Workshop) -> Iterator[str]:
    """REFI-QDA codebook 1.0 (Codebook.xsd, urn:QDA-XML:codebook:1.0): the participants' codes
    and each attribute as a Set."""
    yield '<?xml version="1.0" encoding="utf-8"?>\n'
    yield f'<CodeBook xmlns="urn:QDA-XML:codebook:1.0" origin={quoteattr("CALMA Workshops")}>\n<Codes>\n'
    yield from _code_elements(workshop)
    yield "</Codes>\n"
    yield from _wrapped("<Sets>\n", "</Sets>\n", _set_elements(workshop, "guid"))
    yield "</CodeBook>\n"


# --- REFI-QDA project (.qdpx) ----------------------------------------------------------------------
#
# A zip holding `project.qde` (Project.xsd, urn:QDA-XML:project:1.0) and one plain-text file per
# transcript in `Sources/`. Offsets of coded segments (`startPosition`, `endPosition`, end
# exclusive) count Unicode characters (code points) of that text file, which is UTF-8 without a
# byte order mark and uses "\n" line ends only. Our spans are code points of one message, so a
# segment's position is the span plus the offset of the message inside its transcript (less one
# for each "\r\n" of the message before it: line ends are written as "\n", a lone "\r" too).

QDPX_SOURCES = "Sources"
QDPX_CHUNK_BYTES = 64 * 1024
QDPX_CONVERSATIONS_PAGE = 20  # conversations (with their owner) read per round trip
QDPX_SPOOL_BYTES = 256 * 1024  # <TextSource> XML kept in memory before the spool goes to disk (about
# twice this at the peak: rolling over copies the buffer once)
QDPX_MESSAGE_FIELDS = ("id", "role", "content", "status", "position", "slot", "is_candidate", "conversation_id")


@dataclass
class _Source:
    conversation_id: int
    guid: str
    name: str
    description: str
    owner_guid: str | None
    created: str
    places: dict[int, tuple[int, tuple[int, ...]]]  # message id -> (offset in the transcript, "\r\n" indices)
    # (one conversation's: a _Source lives only while its transcript is written)


def _newlines(text: str) -> tuple[str, tuple[int, ...]]:
    """`text` with "\r\n" and a lone "\r" written as "\n", and the indices of the "\r" of each
    "\r\n" (whose removal shifts what follows)."""
    if "\r" not in text:
        return text, ()
    pairs = tuple(i for i in range(len(text) - 1) if text[i] == "\r" and text[i + 1] == "\n")
    return text.replace("\r\n", "\n").replace("\r", "\n"), pairs


def source_position(place: tuple[int, tuple[int, ...]], index: int) -> int:
    """Where code point `index` of a message lands in its transcript."""
    offset, pairs = place
    return offset + index - bisect.bisect_left(pairs, index)


def _one_line(text: str) -> str:
    return " ".join(text.split())


_UNSAFE_IN_FILE_NAMES = re.compile(r'[\\/:*?"<>|]+')


def _when(moment) -> str:
    """xsd:dateTime in UTC to the second, as the REFI-QDA examples write it (QualCoder, for one,
    reads only that form)."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _source_name(conversation, asker: str) -> str:
    """Unique and usable as a file name: QDA programs save each source under its name (QualCoder
    refuses a second source of the same name, and cannot copy one whose name has a slash)."""
    title = _one_line(_UNSAFE_IN_FILE_NAMES.sub(" ", conversation.title)) or "Conversation"
    owner = "Baseline" if conversation.is_baseline else asker
    return f"{owner} · {title} ({conversation.pk})"


def _speaker_labels(conversation) -> tuple[str, str]:
    owner = conversation.owner
    asker = owner.pseudonym if owner.role == Role.PARTICIPANT else str(owner.get_role_display())
    return asker, _one_line(conversation.model_label) or "Model"


def transcript_pieces(conversation, messages, annotated: set[int]) -> Iterator[tuple[int | None, str]]:
    """The plain-text transcript of a conversation as (message id, text) pieces: the piece that
    carries a message id is exactly that message's content (line ends still as stored), so its
    offset is where the message starts in the file. Turns are labelled with the speaker (the
    participant's pseudonym, the model's blinded label). Answers that cannot be coded (failed,
    superseded) are left out unless someone coded them before they were replaced."""
    title = _one_line(conversation.title) or f"Conversation {conversation.pk}"
    asker, model = _speaker_labels(conversation)
    if conversation.is_baseline:
        about = "Baseline conversation, shared with every participant for coding"
    else:
        about = f"Conversation of {asker} with {model}"
    yield None, f"{title}\n{about}\n"
    for m in messages:
        if m.role == "user":
            label = asker
        else:
            if m.status not in CODABLE_STATUSES and m.id not in annotated:
                continue
            label = model + (f", answer {m.slot + 1}" if m.is_candidate else "")
            if m.status == "interrupted":
                label += " (interrupted)"
            elif m.status not in CODABLE_STATUSES:
                label += " (replaced answer)"
        yield None, f"\n{label}:\n"
        yield m.id, m.content
        yield None, "\n"


def qdpx_archive(workshop: Workshop) -> Iterator[bytes]:
    """The .qdpx zip, written while it is read, in one pass over the conversations: each
    transcript is written to the zip a chunk at a time while the places of its messages are noted,
    then its <TextSource> (the coded segments placed in that transcript) is written to a spooled
    file, and the place notes are dropped. project.qde is written last, the spooled sources copied
    into it. Memory holds one conversation's notes and at most QDPX_SPOOL_BYTES of sources (the
    rest is on disk); what grows with the workshop is only the zip's central directory (one small
    record per transcript)."""
    sink = ZipSink()
    with (zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive,
          tempfile.SpooledTemporaryFile(max_size=QDPX_SPOOL_BYTES) as spool):
        archive.mkdir(QDPX_SOURCES)  # there even when no conversation is (importers list the folder)
        for conversation in research_conversations(workshop).iterator(chunk_size=QDPX_CONVERSATIONS_PAGE):
            source_guid = guid("source", workshop, conversation.pk)
            places: dict[int, tuple[int, tuple[int, ...]]] = {}
            with archive.open(zip_entry(f"{QDPX_SOURCES}/{source_guid}.txt"), "w") as entry:
                for message_id, text, position, pairs in _transcript(workshop, conversation):
                    if message_id is not None:
                        places[message_id] = (position, pairs)
                    entry.write(text.encode("utf-8"))
                    if sink.size >= QDPX_CHUNK_BYTES:
                        yield sink.drain()
            for text in _text_source(workshop, _source(workshop, conversation, source_guid, places)):
                spool.write(text.encode("utf-8"))
        spool.seek(0)
        with archive.open(zip_entry("project.qde"), "w") as entry:
            for text in project_document(workshop, _spooled(spool)):
                entry.write(text if isinstance(text, bytes) else text.encode("utf-8"))
                if sink.size >= QDPX_CHUNK_BYTES:
                    yield sink.drain()
    yield sink.drain()


def _spooled(spool) -> Iterator[bytes]:
    while chunk := spool.read(QDPX_CHUNK_BYTES):
        yield chunk


def _transcript(workshop: Workshop, conversation) -> Iterator[tuple[int | None, str, int, tuple[int, ...]]]:
    """The transcript file of `conversation` as pieces (message id or None, text as written, offset
    of the piece in the file, indices of the "\r\n" the message had), its messages read a page at
    a time. Answers that cannot be coded are kept when someone coded them: that is looked up for
    this conversation only."""
    from llm_gateway.models import Message

    annotated = set(
        Annotation.objects.filter(**_participants(workshop), message__conversation_id=conversation.pk)
        .values_list("message_id", flat=True).distinct()
    )
    messages = (Message.objects.filter(conversation=conversation).only(*QDPX_MESSAGE_FIELDS)
                .order_by("position", "id"))
    position = 0
    for message_id, raw in transcript_pieces(conversation, messages.iterator(chunk_size=100), annotated):
        text, pairs = _newlines(raw)
        yield message_id, text, position, pairs
        position += len(text)


def _source(workshop: Workshop, conversation, source_guid: str, places) -> _Source:
    asker, model = _speaker_labels(conversation)
    owner = conversation.owner
    title = _one_line(conversation.title) or f"Conversation {conversation.pk}"
    return _Source(
        conversation_id=conversation.pk, guid=source_guid,
        name=_source_name(conversation, asker),
        description=(f"Baseline conversation with {model}" if conversation.is_baseline
                     else f"{asker}'s conversation with {model}") + f": “{title}” (conversation {conversation.pk})",
        owner_guid=guid("user", workshop, owner.pk) if owner.role == Role.PARTICIPANT else None,
        created=_when(conversation.created_at), places=places,
    )


SEGMENT_FIELDS = ("id", "message_id", "membership_id", "start", "end", "excerpt", "memo", "created_at", "updated_at")
CODING_FIELDS = ("annotationcode__id", "annotationcode__created_at", "annotationcode__code_id")


@dataclass(frozen=True)
class _Segment:
    id: int
    message_id: int
    membership_id: int
    start: int
    end: int
    excerpt: str
    memo: str
    created_at: datetime.datetime
    updated_at: datetime.datetime
    codings: list[tuple[int, datetime.datetime, int]]  # (link id, created, code id), by code


def _coded_segments(workshop: Workshop, conversation_id: int) -> Iterator[_Segment]:
    """The coded spans of one conversation in transcript order, each with its codings in code
    order: one row per (span, code) (a span without a code: one row, its coding columns None),
    read through a server-side cursor a page at a time as plain tuples. Not model instances with
    their codings prefetched: each prefetched coding points back at its span, a reference cycle
    that only the garbage collector frees, and those cycles piled up with the workshop (the heap
    peak of the .qdpx grew with it when other exports ran before)."""
    rows = (
        Annotation.objects.filter(**_participants(workshop), message__conversation_id=conversation_id)
        .order_by("message__position", "start", "end", "membership__pseudonym", "id",
                  "annotationcode__code__normalized", "annotationcode__id")
        .values_list(*SEGMENT_FIELDS, *CODING_FIELDS)
    )
    fields = len(SEGMENT_FIELDS)
    for _pk, group in itertools.groupby(rows.iterator(chunk_size=EXPORT_PAGE), key=operator.itemgetter(0)):
        group = list(group)  # one span's codings
        yield _Segment(*group[0][:fields], codings=[row[fields:] for row in group if row[fields] is not None])


def _segment_name(excerpt: str, limit: int = 80) -> str:
    text = _one_line(excerpt)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def project_document(workshop: Workshop, sources: Iterable[str | bytes]) -> Iterator[str | bytes]:
    """project.qde: Users (the coders, by pseudonym), CodeBook (the same codes and GUIDs as the
    .qdc), Sources (a TextSource per transcript with a PlainTextSelection per coded span and a
    Coding per code, made by its coder), Notes (highlight memos, referenced by NoteRef), Sets.
    `sources`: the <TextSource> elements, already written (see qdpx_archive)."""
    yield '<?xml version="1.0" encoding="utf-8"?>\n'
    yield (f'<Project xmlns="urn:QDA-XML:project:1.0" name={_xa(workshop.title)} '
           f'origin={quoteattr("CALMA Workshops")} creationDateTime="{_when(timezone.now())}">\n')
    coders = Membership.objects.filter(workshop=workshop, role=Role.PARTICIPANT).active().order_by("pseudonym")
    yield from _wrapped("<Users>\n", "</Users>\n", (
        f'  <User guid="{guid("user", workshop, m.pk)}" name={_xa(m.pseudonym)} id={_xa(m.pseudonym)}/>\n'
        for m in coders.iterator(chunk_size=500)
    ))
    yield from _wrapped("<CodeBook>\n<Codes>\n", "</Codes>\n</CodeBook>\n", _code_elements(workshop))
    yield from _wrapped("<Sources>\n", "</Sources>\n", sources)
    yield from _wrapped("<Notes>\n", "</Notes>\n", _memo_notes(workshop))
    yield from _wrapped("<Sets>\n", "</Sets>\n", _set_elements(workshop, "targetGUID"))
    description = f"CALMA workshop “{workshop.title}”. Deployment context: {workshop.deployment_context}"
    if workshop.audience:
        description += f"\nAudience: {workshop.audience}"
    yield f"<Description>{_x(description)}</Description>\n"
    yield "</Project>\n"


def _text_source(workshop: Workshop, s: _Source) -> Iterator[str]:
    """One transcript's <TextSource>: a PlainTextSelection per coded span, placed in the file."""
    creator = f' creatingUser="{s.owner_guid}"' if s.owner_guid else ""
    yield (f'  <TextSource guid="{s.guid}" name={_xa(s.name)} '
           f'plainTextPath="internal://{s.guid}.txt"{creator} creationDateTime="{s.created}">\n'
           f"    <Description>{_x(s.description)}</Description>\n")
    for a in _coded_segments(workshop, s.conversation_id):
        place = s.places.get(a.message_id)
        if place is None:  # not in the transcript (cannot happen for a codable answer)
            continue
        coder = guid("user", workshop, a.membership_id)
        start, end = source_position(place, a.start), source_position(place, a.end)
        yield (f'    <PlainTextSelection guid="{guid("selection", workshop, a.id)}" '
               f'name={_xa(_segment_name(a.excerpt))} startPosition="{start}" endPosition="{end}" '
               f'creatingUser="{coder}" creationDateTime="{_when(a.created_at)}" '
               f'modifyingUser="{coder}" modifiedDateTime="{_when(a.updated_at)}">\n')
        if a.memo:  # QDA programs that do not follow NoteRef (QualCoder) read this as the coding memo
            yield f"      <Description>{_x(a.memo)}</Description>\n"
        for link_id, created_at, code_id in a.codings:
            yield (f'      <Coding guid="{guid("coding", workshop, link_id)}" creatingUser="{coder}" '
                   f'creationDateTime="{_when(created_at)}">'
                   f'<CodeRef targetGUID="{guid("code", workshop, code_id)}"/></Coding>\n')
        if a.memo:
            yield f'      <NoteRef targetGUID="{guid("note", workshop, a.id)}"/>\n'
        yield "    </PlainTextSelection>\n"
    yield "  </TextSource>\n"


def _memo_notes(workshop: Workshop) -> Iterator[str]:
    """A highlight's memo as a Note (a text source of its own) by the coder."""
    memos = (
        Annotation.objects.filter(**_participants(workshop)).exclude(memo="")
        .filter(message__conversation__in=research_conversations(workshop).values("id"))
        .select_related("membership").order_by("membership__pseudonym", "id")
    )
    for a in memos.iterator(chunk_size=500):
        yield (f'  <Note guid="{guid("note", workshop, a.pk)}" '
               f'name={_xa(f"Memo by {a.membership.pseudonym} on “{_segment_name(a.excerpt, 40)}”")} '
               f'creatingUser="{guid("user", workshop, a.membership_id)}" '
               f'creationDateTime="{_when(a.created_at)}">\n'
               f"    <PlainTextContent>{_x(a.memo)}</PlainTextContent>\n  </Note>\n")
