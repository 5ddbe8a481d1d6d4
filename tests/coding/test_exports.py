import csv
import io
import xml.etree.ElementTree as ET

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from coding import services
from coding.exports import ANNOTATION_COLUMNS, CODEBOOK_COLUMNS, FOCUSED_COLUMNS, annotation_rows
from tests.factories import make_member
from workshops import services as workshop_services

pytestmark = pytest.mark.django_db
NS = "{urn:QDA-XML:codebook:1.0}"


def read_csv(response):
    assert response.streaming
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


@pytest.fixture
def coded(reflect):
    p1, p2 = reflect.p1, reflect.p2
    a1 = services.annotation_create(membership=p1, message_id=reflect.baseline_answer.id, start=0, end=12,
                                    codes=["factual", "=1+1"], memo="@cmd memo")
    a2 = services.annotation_create(membership=p2, message_id=reflect.baseline_answer.id, start=5, end=40,
                                    codes=["American viewpoint"])
    services.code_update(membership=p1, code=a1.codes.get(normalized="factual"), memo="States facts; no opinion")
    attr = services.attribute_create(membership=p1, name="Neutrality", definition="-Avoids taking sides")
    services.attribute_add_code(membership=p1, attribute=attr, code_id=a1.codes.get(normalized="factual").id)
    services.attribute_add_code(membership=p1, attribute=attr, code_id=a1.codes.get(normalized="=1+1").id)
    services.attribute_create(membership=p1, name="Tone & <style>")
    return reflect, a1, a2, attr


def test_annotations_csv(coded, client_for):
    reflect, a1, a2, _ = coded
    rows = read_csv(client_for(reflect.facilitator).get(reverse("coding:export_annotations", args=[reflect.workshop.slug])))
    assert rows[0] == ANNOTATION_COLUMNS
    body = [dict(zip(rows[0], r)) for r in rows[1:]]
    assert len(body) == 3  # one row per span x code
    mine = [r for r in body if r["participant"] == reflect.p1.pseudonym]
    assert {r["code"] for r in mine} == {"factual", "'=1+1"}  # formula neutralised
    r = mine[0]
    assert r["workshop"] == reflect.workshop.slug and r["is_baseline"] == "true"
    assert (int(r["start"]), int(r["end"]), r["excerpt"]) == (0, 12, reflect.baseline_answer.content[0:12])
    assert r["memo"] == "'@cmd memo" and r["message_id"] == str(reflect.baseline_answer.id)
    # pseudonyms only
    text = str(rows)
    assert reflect.p1.user.username not in text


def test_every_field_is_quoted(coded, client_for):
    reflect = coded[0]
    response = client_for(reflect.facilitator).get(reverse("coding:export_codebook", args=[reflect.workshop.slug]))
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    for line in text.strip().splitlines():
        assert line.startswith('"') and line.endswith('"')


def test_codebook_and_focused_csv(coded, client_for):
    reflect = coded[0]
    client = client_for(reflect.facilitator)
    rows = read_csv(client.get(reverse("coding:export_codebook", args=[reflect.workshop.slug])))
    assert rows[0] == CODEBOOK_COLUMNS
    book = {(r[1], r[2]): r for r in rows[1:]}
    assert book[(reflect.p1.pseudonym, "factual")][3] == "States facts; no opinion"
    assert book[(reflect.p1.pseudonym, "factual")][4] == "1"
    assert (reflect.p2.pseudonym, "American viewpoint") in book
    rows = read_csv(client.get(reverse("coding:export_focused", args=[reflect.workshop.slug])))
    assert rows[0] == FOCUSED_COLUMNS
    focused = {r[2]: r for r in rows[1:]}
    assert focused["Neutrality"][3] == "'-Avoids taking sides"
    assert focused["Neutrality"][4] == "'=1+1 | factual"
    assert focused["Tone & <style>"][4] == ""


def test_withdrawn_members_are_left_out(coded, client_for):
    reflect = coded[0]
    workshop_services.membership_withdraw(membership=reflect.p2)
    researcher = make_member(reflect.workshop, role="researcher")
    client = client_for(researcher)
    for name in ("export_annotations", "export_codebook", "export_focused"):
        rows = read_csv(client.get(reverse(f"coding:{name}", args=[reflect.workshop.slug])))
        assert all(r[1] != reflect.p2.pseudonym for r in rows[1:]), name
    qdc = b"".join(client.get(reverse("coding:export_qdc", args=[reflect.workshop.slug])).streaming_content)
    assert b"American viewpoint" not in qdc


def test_qdc_follows_refi_qda_codebook(coded, client_for):
    reflect, a1, _a2, attr = coded
    response = client_for(reflect.facilitator).get(reverse("coding:export_qdc", args=[reflect.workshop.slug]))
    assert response["Content-Disposition"].endswith('.qdc"')
    root = ET.fromstring(b"".join(response.streaming_content))
    assert root.tag == f"{NS}CodeBook"
    codes_el = root.find(f"{NS}Codes")
    parents = codes_el.findall(f"{NS}Code")
    assert {p.get("name") for p in parents} == {reflect.p1.pseudonym, reflect.p2.pseudonym}
    assert all(p.get("isCodable") == "false" for p in parents)
    guids = {}
    for code in codes_el.iter(f"{NS}Code"):
        assert code.get("guid") and len(code.get("guid")) == 36
        assert code.get("isCodable") in ("true", "false")
        guids[code.get("guid")] = code
    leaf = {c.get("name"): c for c in codes_el.iter(f"{NS}Code") if c.get("isCodable") == "true"}
    assert set(leaf) == {"factual", "=1+1", "American viewpoint"}
    assert leaf["factual"].find(f"{NS}Description").text == "States facts; no opinion"
    sets = {s.get("name"): s for s in root.find(f"{NS}Sets").findall(f"{NS}Set")}
    neutrality = sets[f"{reflect.p1.pseudonym}: Neutrality"]
    assert neutrality.find(f"{NS}Description").text == "-Avoids taking sides"
    members = [m.get("guid") for m in neutrality.findall(f"{NS}MemberCode")]  # Codebook.xsd: MemberCode/@guid
    assert {guids[g].get("name") for g in members} == {"factual", "=1+1"}
    assert f"{reflect.p1.pseudonym}: Tone & <style>" in sets
    # Stable identifiers: a second export gives the same GUIDs.
    again = ET.fromstring(b"".join(client_for(reflect.facilitator).get(
        reverse("coding:export_qdc", args=[reflect.workshop.slug])).streaming_content))
    assert {c.get("guid") for c in again.iter(f"{NS}Code")} == set(guids)


def test_annotation_rows_read_only_their_columns(reflect):
    """The annotations CSV does not load whole messages (or conversations) for each row."""
    services.annotation_create(membership=reflect.p1, message_id=reflect.baseline_answer.id, start=0, end=5,
                               codes=["short"])
    with CaptureQueriesContext(connection) as queries:
        rows = list(annotation_rows(reflect.workshop))
    assert len(rows) == 1
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert '"llm_gateway_message"."content"' not in sql
    assert '"llm_gateway_conversation"."title"' not in sql
