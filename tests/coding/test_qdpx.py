"""The REFI-QDA exports: the project (.qdpx) and the codebook (.qdc), validated against the
published schemas (tests/vendor/refi-qda, see PROVENANCE.md there)."""

import io
import random
import re
import tracemalloc
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import xmlschema
from django.db import connections
from django.test import AsyncClient
from django.urls import reverse
from hypothesis import given, settings as hsettings, strategies as st
from lxml import etree

from coding import exports, services
from coding.models import Annotation
from llm_gateway.models import Conversation, Message
from tests.coding.conftest import MIXED
from tests.factories import make_member
from workshops import services as workshop_services

pytestmark = pytest.mark.django_db

VENDOR = Path(__file__).resolve().parents[1] / "vendor" / "refi-qda"
P = "{urn:QDA-XML:project:1.0}"
C = "{urn:QDA-XML:codebook:1.0}"


@pytest.fixture(scope="module")
def project_schema():
    return xmlschema.XMLSchema(str(VENDOR / "Project.xsd"))


@pytest.fixture(scope="module")
def codebook_schema():
    return xmlschema.XMLSchema(str(VENDOR / "Codebook.xsd"))


def _span(text: str, needle: str) -> tuple[int, int]:
    start = text.index(needle)
    return start, start + len(needle)


@pytest.fixture
def coded(reflect):
    """Spans in code points on a message of Devanagari, an emoji, Chinese, Arabic and a
    multi-code-point emoji, by two coders, on own and baseline conversations, with memos."""
    p1, p2 = reflect.p1, reflect.p2
    own = reflect.own_answer.content
    assert own == MIXED
    anns = [
        services.annotation_create(membership=p1, message_id=reflect.own_answer.id, start=0, end=6,
                                   codes=["greeting", "हिंदी"], memo="नमस्ते is a greeting"),
        services.annotation_create(membership=p1, message_id=reflect.own_answer.id,
                                   **dict(zip(("start", "end"), _span(own, "التاريخ مهم جدا"))), codes=["Arabic"]),
        services.annotation_create(membership=p1, message_id=reflect.own_answer.id,
                                   **dict(zip(("start", "end"), _span(own, "American holiday 👩🏽‍🏫 end."))),
                                   codes=["</Code><script>alert(1)</script>"], memo="bad \x01 control & <tags>"),
        services.annotation_create(membership=p1, message_id=reflect.own_answer2.id, start=4, end=17,
                                   codes=["empire"]),
        services.annotation_create(membership=p1, message_id=reflect.baseline_answer.id, start=0, end=12,
                                   codes=["factual"], memo="@cmd memo"),
        services.annotation_create(membership=p2, message_id=reflect.baseline_answer.id, start=5, end=40,
                                   codes=["American viewpoint", "factual"]),
        services.annotation_create(membership=p2, message_id=reflect.other_answer.id, start=0, end=6,
                                   codes=["festival"]),
    ]
    factual = anns[0].membership.codes.get(normalized="greeting")
    services.code_update(membership=p1, code=factual, memo="Says hello")
    attr = services.attribute_create(membership=p1, name="Language & <script>", definition="-Which language")
    services.attribute_add_code(membership=p1, attribute=attr, code_id=factual.id)
    return reflect, anns


def _download(client, name, slug):
    response = client.get(reverse(f"coding:{name}", args=[slug]))
    assert response.status_code == 200
    assert response.streaming
    return response, b"".join(response.streaming_content)


def _open(data: bytes):
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    return archive


def _selections(root):
    """{selection guid: (source element, selection element)}"""
    out = {}
    for source in root.iter(f"{P}TextSource"):
        for sel in source.findall(f"{P}PlainTextSelection"):
            out[sel.get("guid")] = (source, sel)
    return out


def _source_text(archive, source) -> str:
    path = source.get("plainTextPath")
    assert path.startswith("internal://")
    raw = archive.read(f"Sources/{path.removeprefix('internal://')}")
    assert not raw.startswith(b"\xef\xbb\xbf") and b"\r" not in raw  # offsets: no BOM, "\n" only
    return raw.decode("utf-8")


def test_qdpx_validates_and_every_coded_span_is_at_its_offsets(coded, client_for, project_schema):
    reflect, anns = coded
    response, data = _download(client_for(reflect.facilitator), "export_qdpx", reflect.workshop.slug)
    assert response["Content-Disposition"].endswith('-project.qdpx"')
    archive = _open(data)
    qde = archive.read("project.qde")
    project_schema.validate(io.BytesIO(qde))  # raises with the first violation
    # A second, independent validator (libxml2).
    assert etree.XMLSchema(etree.parse(str(VENDOR / "Project.xsd"))).validate(etree.fromstring(qde))

    root = etree.fromstring(qde)
    users = {u.get("guid"): u.get("name") for u in root.iter(f"{P}User")}
    assert sorted(users.values()) == sorted([reflect.p1.pseudonym, reflect.p2.pseudonym])
    codes = {c.get("guid"): c.get("name") for c in root.iter(f"{P}Code") if c.get("isCodable") == "true"}
    notes = {n.get("guid"): n.findtext(f"{P}PlainTextContent") for n in root.iter(f"{P}Note")}

    selections = _selections(root)
    assert len(selections) == len(anns)
    by_guid = {exports.guid("selection", reflect.workshop, a.pk): a for a in anns}
    assert set(selections) == set(by_guid)
    for sel_guid, (source, sel) in selections.items():
        a = Annotation.objects.get(pk=by_guid[sel_guid].pk)
        text = _source_text(archive, source)
        start, end = int(sel.get("startPosition")), int(sel.get("endPosition"))
        assert text[start:end] == a.excerpt == a.message.content[a.start:a.end]
        assert users[sel.get("creatingUser")] == a.membership.pseudonym
        codings = sel.findall(f"{P}Coding")
        assert {codes[c.find(f"{P}CodeRef").get("targetGUID")] for c in codings} == {c.text for c in a.codes.all()}
        assert all(users[c.get("creatingUser")] == a.membership.pseudonym for c in codings)
        refs = [r.get("targetGUID") for r in sel.findall(f"{P}NoteRef")]
        if a.memo:
            assert [notes[r] for r in refs] == [a.memo.replace("\x01", "")]
            assert sel.findtext(f"{P}Description") == a.memo.replace("\x01", "")  # QualCoder's coding memo
        else:
            assert refs == [] and sel.find(f"{P}Description") is None
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", sel.get("creationDateTime"))

    # Source names are unique and usable as file names (QDA programs save each source under it).
    names = [s.get("name") for s in root.iter(f"{P}TextSource")]
    assert len(set(names)) == len(names) and not any(c in n for n in names for c in '/\\:*?"<>|')

    # Hindi, Arabic, Chinese and emoji intact, with speaker turns labelled.
    own_source = next(s for s in root.iter(f"{P}TextSource") if s.get("creatingUser") and
                      MIXED in _source_text(archive, s) and users[s.get("creatingUser")] == reflect.p1.pseudonym)
    own_text = _source_text(archive, own_source)
    assert f"\n{reflect.p1.pseudonym}:\nTell me about Indian history\n" in own_text
    assert f"\nModel A:\n{MIXED}\n" in own_text
    # Baseline transcript included once, coded by both.
    baseline = [s for s in root.iter(f"{P}TextSource") if "What is Thanksgiving?" in _source_text(archive, s)]
    assert len(baseline) == 1 and len(baseline[0].findall(f"{P}PlainTextSelection")) == 2
    # The facilitator's non-baseline sandbox conversation is not a research transcript.
    assert not any("Sandbox only" in _source_text(archive, s) for s in root.iter(f"{P}TextSource"))
    # Memos and code definitions; attributes as sets.
    assert "Says hello" in {c.findtext(f"{P}Description") for c in root.iter(f"{P}Code")}
    sets = {s.get("name"): s for s in root.iter(f"{P}Set")}
    members = [m.get("targetGUID") for m in sets[f"{reflect.p1.pseudonym}: Language & <script>"].findall(f"{P}MemberCode")]
    assert [codes[g] for g in members] == ["greeting"]


def test_qdpx_codes_have_the_qdc_guids(coded, client_for):
    reflect, _ = coded
    client = client_for(reflect.facilitator)
    qde = etree.fromstring(_open(_download(client, "export_qdpx", reflect.workshop.slug)[1]).read("project.qde"))
    qdc = etree.fromstring(_download(client, "export_qdc", reflect.workshop.slug)[1])
    project_codes = {c.get("guid"): c.get("name") for c in qde.iter(f"{P}Code")}
    codebook_codes = {c.get("guid"): c.get("name") for c in qdc.iter(f"{C}Code")}
    assert project_codes == codebook_codes and len(project_codes) > 5


def test_qdpx_leaves_out_withdrawn_members_and_names(coded, client_for, project_schema):
    reflect, _ = coded
    workshop_services.membership_withdraw(membership=reflect.p2)
    researcher = make_member(reflect.workshop, role="researcher")
    archive = _open(_download(client_for(researcher), "export_qdpx", reflect.workshop.slug)[1])
    project_schema.validate(io.BytesIO(archive.read("project.qde")))
    everything = b"".join(archive.read(n) for n in archive.namelist()).decode("utf-8")
    assert "Diwali" not in everything  # the withdrawn member's conversation
    assert "American viewpoint" not in everything and "festival" not in everything  # their codes
    assert reflect.p2.pseudonym not in everything
    for m in (reflect.p1, reflect.facilitator, researcher):  # pseudonyms only, never usernames or names
        assert m.user.username not in everything
        assert m.display_name not in everything
    root = etree.fromstring(archive.read("project.qde"))
    assert len(_selections(root)) == 5  # p1's only


def test_qdpx_of_an_empty_workshop_is_valid(reflect, client_for, project_schema):
    archive = _open(_download(client_for(reflect.facilitator), "export_qdpx", reflect.workshop.slug)[1])
    project_schema.validate(io.BytesIO(archive.read("project.qde")))
    assert len([n for n in archive.namelist() if n.startswith("Sources/") and n.endswith(".txt")]) == 3
    # Two own conversations and the baseline one; with nothing at all, still a Sources folder.


def test_qdpx_is_for_staff_only(coded, client_for):
    reflect, _ = coded
    response = client_for(reflect.p1).get(reverse("coding:export_qdpx", args=[reflect.workshop.slug]))
    assert response.status_code in (403, 404)


def test_qdpx_is_listed_on_the_research_page(coded, client_for):
    reflect, _ = coded
    page = client_for(reflect.facilitator).get(reverse("workshops:research", args=[reflect.workshop.slug]))
    assert reverse("coding:export_qdpx", args=[reflect.workshop.slug]).encode() in page.content


def test_qdc_validates_against_the_codebook_schema(coded, client_for, codebook_schema):
    reflect, _ = coded
    data = _download(client_for(reflect.facilitator), "export_qdc", reflect.workshop.slug)[1]
    codebook_schema.validate(io.BytesIO(data))
    assert etree.XMLSchema(etree.parse(str(VENDOR / "Codebook.xsd"))).validate(etree.fromstring(data))


# --- Streaming ------------------------------------------------------------------------------------


def _big_workshop(reflect, conversations: int, answer_chars: int):
    """`conversations` more conversations of p1, each one question and one long answer, with a
    highlight on each answer."""
    owner = reflect.p1
    start = Conversation.objects.count()
    alphabet = [chr(c) for c in range(0x0905, 0x0939)] + [chr(c) for c in range(0x0627, 0x064A)] + [" "] * 8
    convs = Conversation.objects.bulk_create([
        Conversation(workshop=reflect.workshop, owner=owner, endpoint_key="test-endpoint", model_label="Model A",
                     title=f"Long {i}") for i in range(conversations)])
    messages = []
    for i, c in enumerate(convs):
        messages.append(Message(conversation=c, role="user", content=f"Question {i}", position=0, status="complete"))
        text = "".join(random.Random(start + i).choices(alphabet, k=answer_chars))  # does not compress away
        messages.append(Message(conversation=c, role="assistant", content=f"{i} {MIXED} {text}"[:answer_chars],
                                position=1, status="complete"))
    Message.objects.bulk_create(messages)
    for m in messages[1::2]:
        services.annotation_create(membership=owner, message_id=m.id, start=len(str(m.content.split()[0])) + 1,
                                   end=len(str(m.content.split()[0])) + 7, codes=["long"])


def _peak_while_writing(workshop) -> tuple[int, int, int]:
    """(peak traced memory, chunks, bytes written) while the archive is produced."""
    tracemalloc.start()
    try:
        chunks = written = 0
        for chunk in exports.qdpx_archive(workshop):
            chunks += 1
            written += len(chunk)
        return tracemalloc.get_traced_memory()[1], chunks, written
    finally:
        tracemalloc.stop()


def test_qdpx_is_written_in_bounded_memory(reflect):
    """Three times the transcripts do not take three times the memory: the archive is written a
    conversation at a time and handed on in chunks, never built whole."""
    _big_workshop(reflect, conversations=40, answer_chars=20_000)
    small_peak, small_chunks, _ = _peak_while_writing(reflect.workshop)
    _big_workshop(reflect, conversations=80, answer_chars=20_000)
    big_peak, big_chunks, big_written = _peak_while_writing(reflect.workshop)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(exports.qdpx_archive(reflect.workshop))))
    uncompressed = sum(i.file_size for i in archive.infolist())
    assert uncompressed > 6_000_000  # 120 answers of 20,000 characters (Devanagari, Chinese, Arabic, emoji)
    assert big_chunks > 3 * small_chunks / 2
    print(f"peak {small_peak} -> {big_peak} bytes, chunks {small_chunks} -> {big_chunks}, "
          f"{uncompressed} bytes uncompressed")
    assert big_peak < uncompressed / 3, (big_peak, uncompressed)
    assert big_peak < 2 * small_peak, (small_peak, big_peak)


def test_qdpx_leaves_no_reference_cycles_of_spans(coded):
    """The coded segments are read as plain rows, not model instances with their codings
    prefetched (each coding points back at its span: a cycle per span that only the garbage
    collector frees; they piled up with the workshop, 6.4 -> 11.2 MB in
    benchmarks/evaluation_export when other exports ran first)."""
    import gc

    from coding.models import AnnotationCode

    whole = b"".join(exports.qdpx_archive(coded[0].workshop))
    assert b"<Coding " in _open(whole).read("project.qde")
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds unreachable is kept in gc.garbage
    try:
        for _chunk in exports.qdpx_archive(coded[0].workshop):
            pass
        gc.collect()
        cyclic = [o for o in gc.garbage if isinstance(o, (Annotation, AnnotationCode))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert cyclic == []


@pytest.mark.django_db(transaction=True)
async def test_qdpx_streams_under_asgi(reflect):
    """Under ASGI the body is an asynchronous iterator fed a batch at a time (a synchronous one
    would be read to its end by Django before the first byte is sent)."""
    from asgiref.sync import sync_to_async

    await sync_to_async(_big_workshop)(reflect, conversations=30, answer_chars=20_000)
    client = AsyncClient()
    await client.aforce_login(await sync_to_async(lambda: reflect.facilitator.user)())
    response = await client.get(reverse("coding:export_qdpx", args=[reflect.workshop.slug]))
    assert response.status_code == 200 and response.is_async
    try:
        parts = [part async for part in response.streaming_content]
    finally:
        await sync_to_async(connections.close_all)()  # the export's connection, in the sync thread
    assert len(parts) > 3
    archive = _open(b"".join(parts))
    assert "project.qde" in archive.namelist()
    assert sum(1 for n in archive.namelist() if n.startswith("Sources/") and n.endswith(".txt")) == 33


# --- Offsets, for any text ------------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)


@hsettings(max_examples=200, deadline=None)
@given(title=_text, label=_text, contents=st.lists(_text | st.text("a\r\n", max_size=12), min_size=1, max_size=6),
       spans=st.lists(st.tuples(st.integers(0, 80), st.integers(0, 80)), max_size=6))
def test_transcript_offsets_locate_every_message(title, label, contents, spans):
    """Whatever the messages hold (line ends of any kind, combining marks, emoji, right-to-left
    text), a span of a message lands on exactly that text of the transcript file, whose line
    ends are all "\n"."""
    owner = SimpleNamespace(pseudonym="P07", role="participant", get_role_display=lambda: "Participant")
    conversation = SimpleNamespace(pk=1, title=title, model_label=label, is_baseline=False, owner=owner)
    messages = [SimpleNamespace(id=i, role="user" if i % 2 == 0 else "assistant", content=c, status="complete",
                                slot=0, is_candidate=False) for i, c in enumerate(contents)]
    text, places = "", {}
    for message_id, raw in exports.transcript_pieces(conversation, messages, set()):
        piece, pairs = exports._newlines(raw)
        if message_id is not None:
            places[message_id] = (len(text), pairs)
        text += piece
    assert "\r" not in text
    assert set(places) == {m.id for m in messages}

    def plain(t):
        return t.replace("\r\n", "\n").replace("\r", "\n")

    for m in messages:
        place = places[m.id]
        assert text[exports.source_position(place, 0):exports.source_position(place, len(m.content))] == plain(m.content)
        for a, b in spans:
            start, end = sorted((min(a, len(m.content)), min(b, len(m.content))))
            if m.content[start - 1:start + 1] == "\r\n" or m.content[end - 1:end + 1] == "\r\n":
                continue  # a span cannot start or end inside a line end that is written as one character
            got = text[exports.source_position(place, start):exports.source_position(place, end)]
            assert got == plain(m.content[start:end])
