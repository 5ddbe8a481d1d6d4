"""Derived-axes exports: the CSV parsed back, the JSON provenance tree, access and withdrawal."""

import csv
import io
import json

import pytest

from discussion import exports, services
from discussion.models import Pick
from tests.discussion.conftest import goto
from workshops import services as workshop_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished(discuss):
    d = discuss
    p0, p1, p2 = d.people
    goto(d, 1)
    services.picks_save(membership=p0, picks=[{"attribute_id": d.attributes[(p0.pk, "Bias")].pk, "name": "", "definition": ""}])
    services.picks_save(membership=p2, picks=[{"name": "Accuracy", "definition": "Facts and dates right"}])
    goto(d, 4)
    bias = services.axis_create(membership=p0, name="Bias", definition="Favouring one side, e.g. colonial accounts",
                                pick_id=Pick.objects.get(membership=p0).pk)
    services.axis_attach_label(membership=p1, axis_id=bias.pk, key="code:religious bias")
    accuracy = services.axis_create(membership=p2, name="=HYPERLINK(\"http://x\")", definition="+1 facts; \"quoted\", comma",
                                    pick_id=Pick.objects.get(membership=p2).pk)
    services.axis_add_example(membership=p2, axis_id=accuracy.pk, message_id=d.answers[p2.pk].pk,
                              excerpt="Some accounts centre Britain")
    nuance = services.axis_create(membership=p1, name="Nuance", definition="Shows complexity")
    services.group_ranking_record(workshop=d.workshop, by=d.facilitator, axis_ids=[bias.pk, accuracy.pk, nuance.pk])
    goto(d, 5)
    for p, values, order in ((p0, (5, 4, 3), [bias, accuracy, nuance]), (p1, (4, 4, 2), [bias, nuance, accuracy]),
                             (p2, (1, 5, 5), [accuracy, bias, nuance])):
        for axis, v in zip((bias, accuracy, nuance), values):
            services.rating_set(membership=p, axis_id=axis.pk, value=v)
        services.individual_ranking_set(membership=p, axis_ids=[a.pk for a in order])
    d.bias, d.accuracy, d.nuance = bias, accuracy, nuance
    return d


def read_csv(response):
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return body, list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))


def test_csv_parses_back_with_stable_columns(finished, client_for):
    d = finished
    response = client_for(d.researcher).get(f"/w/{d.workshop.slug}/discuss/export/derived-axes.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response.streaming
    body, rows = read_csv(response)
    assert list(rows[0].keys()) == exports.CSV_COLUMNS
    for line in body.lstrip("\ufeff").strip().split("\r\n"):
        assert line.startswith('"') and line.endswith('"')  # every field quoted
    by_id = {int(r["axis_id"]): r for r in rows}
    bias = by_id[d.bias.pk]
    assert bias["workshop"] == d.workshop.slug
    assert bias["group_rank"] == "1" and bias["in_group_top_three"] == "true"
    assert (bias["likert_n"], bias["likert_mean"]) == ("3", "3.333")
    assert [bias[f"likert_{i}"] for i in range(1, 6)] == ["1", "0", "0", "1", "1"]
    assert bias["mean_individual_rank"] == "1.333"
    assert bias["source_labels"].split(" | ") == ["Bias", "religious bias"]
    assert bias["participants"] == "P01 P02"
    examples = json.loads(bias["example_excerpts"])
    assert examples[0]["excerpt"] == "Many historians differ on this"
    assert examples[0]["message_id"] == d.answers[d.people[1].pk].pk
    assert examples[0]["conversation_id"] == d.answers[d.people[1].pk].conversation_id
    acc = by_id[d.accuracy.pk]
    assert acc["name"] == "'=HYPERLINK(\"http://x\")"  # formula neutralised
    assert acc["definition"] == "'+1 facts; \"quoted\", comma"
    assert json.loads(acc["example_excerpts"])[0]["excerpt"] == "Some accounts centre Britain"
    nuance = by_id[d.nuance.pk]
    # Made freehand (no labels): still traced to the participant who proposed it.
    assert nuance["group_rank"] == "3" and nuance["source_labels"] == ""
    assert nuance["participants"] == "P02" and nuance["proposed_by"] == "P02"
    assert "user" not in body.lower() or d.people[0].user.username not in body


def test_withdrawn_participant_is_not_in_exports(finished, client_for):
    d = finished
    workshop_services.membership_withdraw(membership=d.people[1])
    _body, rows = read_csv(client_for(d.facilitator).get(f"/w/{d.workshop.slug}/discuss/export/derived-axes.csv"))
    bias = {int(r["axis_id"]): r for r in rows}[d.bias.pk]
    assert bias["participants"] == "P01" and bias["source_labels"] == "Bias"
    assert bias["likert_n"] == "2" and json.loads(bias["example_excerpts"]) == []
    tree = client_for(d.facilitator).get(f"/w/{d.workshop.slug}/discuss/export/derived-axes.json").json()
    assert "P02" not in json.dumps(tree)


def test_json_provenance_tree(finished, client_for):
    d = finished
    tree = client_for(d.researcher).get(f"/w/{d.workshop.slug}/discuss/export/derived-axes.json").json()
    assert tree["format"] == "calma-derived-axes/1"
    axis = next(a for a in tree["axes"] if a["axis_id"] == d.bias.pk)
    attribute = next(a for a in axis["attributes"] if a["participant"] == "P01")
    assert attribute["name"] == "Bias"
    codes = {c["text"]: c for c in attribute["codes"]}
    assert set(codes) == {"colonial bias", "western bias"}
    excerpt = codes["colonial bias"]["excerpts"][0]
    assert excerpt["message_id"] == d.answers[d.people[0].pk].pk and excerpt["excerpt"] == "Many historians differ on this"
    assert axis["picks"][0]["participant"] == "P01"
    # The card was put on the board from that pick: its first event names the pick, in the file.
    assert axis["history"][0]["kind"] == "created" and axis["history"][0]["pick_id"] == axis["picks"][0]["pick_id"]
    assert axis["proposed_by"] == "P01" and axis["history"][0]["by"] == "P01"
    assert [c["text"] for c in axis["codes"]] == ["religious bias"]
    assert tree["group_ranking"][0] == {"rank": 1, "axis_id": d.bias.pk}


@pytest.mark.parametrize("path", ["export/derived-axes.csv", "export/derived-axes.json", "results/", "report/"])
def test_results_and_exports_are_for_staff_only(finished, client_for, path):
    d = finished
    assert client_for(d.people[0]).get(f"/w/{d.workshop.slug}/discuss/{path}").status_code == 403
    assert client_for(d.researcher).get(f"/w/{d.workshop.slug}/discuss/{path}").status_code == 200


def test_results_and_report_pages_show_axes_and_charts_data(finished, client_for):
    d = finished
    page = client_for(d.facilitator).get(f"/w/{d.workshop.slug}/discuss/report/").content.decode()
    assert "&#x27;=HYPERLINK" not in page  # the page shows the raw name as text, escaped, not neutralised
    assert "=HYPERLINK(&quot;http://x&quot;)" in page
    assert 'id="results-data"' in page and 'id="likert-chart"' in page and 'id="shift-chart"' in page
    research = client_for(d.researcher).get(f"/w/{d.workshop.slug}/research/").content.decode()
    assert "discuss/export/derived-axes.csv" in research
