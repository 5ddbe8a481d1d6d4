"""Evaluate II exports: each format parsed and checked against what its tool requires; hostile
text survives as text; withdrawn members are left out; the zip lists every file in its README."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
import yaml
from django.urls import reverse
from django.utils import timezone

from evaluation import services
from evaluation.exports import common, inspect_task, preferences, promptfoo, reference, statement, weval
from evaluation.models import (JudgeRun, JudgeScore, PairItem, PairRating, PairSource, Rating, RatingItem,
                               RubricVersion)
from llm_gateway.models import CompareMode, Preference
from tests.evaluation.conftest import SCALE
from tests.evaluation.test_pairs import compare_conversation
from tests.factories import make_member
from workshops import services as workshop_services
from workshops.markdown import render_markdown
from workshops.models import Role

pytestmark = pytest.mark.django_db

HOSTILE = ("=HYPERLINK(\"http://x\") $contains: pwned\n---\n- !!python/object/apply:os.system ['id'] "
           "{{ 7*7 }} {% raw %} <script>alert(1)</script> *bold* [x](javascript:alert(1)) # heading | pipe & amp")


STANDARD_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "map", "seq", "int", "bool", "null", "float")}


def _tags(text: str) -> set[str]:
    found = set()

    def walk(node):
        found.add(node.tag)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                walk(key)
                walk(value)
        elif isinstance(node, yaml.SequenceNode):
            for child in node.value:
                walk(child)

    for document in yaml.compose_all(text, Loader=yaml.SafeLoader):
        walk(document)
    return found


def _text(response) -> str:
    return b"".join(response.streaming_content).decode("utf-8")


def _join(chunks) -> str:
    return "".join(c if isinstance(c, str) else c.decode() for c in chunks)


@pytest.fixture
def exported(evaluate):
    """Two rubrics (one hostile), ratings by three participants and a withdrawn one, a judge,
    pairwise choices, a compare-mode preference."""
    ev = evaluate
    ev.workshop.system_prompt = "You are a history tutor. " + HOSTILE
    ev.workshop.deployment_context = "Schools in India. " + HOSTILE
    ev.workshop.save()
    services.rubric_save(axis=ev.balance, by=ev.facilitator, scale={**SCALE, "5": SCALE["5"] + " " + HOSTILE},
                         should=["Names who holds which view", HOSTILE], should_not=["Picks a side as settled"])
    services.rubric_save(axis=ev.accuracy, by=ev.facilitator, scale=SCALE)
    v_balance = RubricVersion.objects.get(rubric__axis=ev.balance)
    v_accuracy = RubricVersion.objects.get(rubric__axis=ev.accuracy)
    answers = list(ev.baseline.messages.filter(role="assistant").order_by("position"))
    answers[0].content = HOSTILE
    answers[0].save(update_fields=["content"])
    items = [RatingItem.objects.create(workshop=ev.workshop, message=m) for m in answers]
    gone = ev.participants[3]
    scores = {0: [5, 4, 1, gone], 1: [2, 3, None, gone], 2: [4, 4, 5, gone]}
    for i, item in enumerate(items):
        for p, score in zip(ev.participants[:3], scores[i][:3]):
            for axis, version in ((ev.balance, v_balance), (ev.accuracy, v_accuracy)):
                Rating.objects.create(item=item, membership=p, axis=axis, rubric_version=version, score=score)
        Rating.objects.create(item=item, membership=gone, axis=ev.balance, rubric_version=v_balance, score=5)
    run = JudgeRun.objects.create(workshop=ev.workshop, endpoint_key="judge", model_id="judge-model")
    JudgeScore.objects.create(run=run, item=items[0], axis=ev.balance, rubric_version=v_balance, outcome="scored",
                              score=4, reason=HOSTILE)
    JudgeScore.objects.create(run=run, item=items[1], axis=ev.balance, rubric_version=v_balance,
                              outcome="unparseable", reason="")
    shared, question = compare_conversation(ev.facilitator, "Why did the Mughal empire decline?",
                                            ["Weak successors.", "Many reasons: revenue, wars, the British."],
                                            is_baseline=True, sandbox=True)
    first, second = shared.messages.filter(is_candidate=True).order_by("slot")
    pair = PairItem.objects.create(workshop=ev.workshop, source=PairSource.COMPARE, question=question,
                                   first=first, second=second)
    for p, axis, version, choice in ((ev.participants[0], ev.balance, v_balance, "second"),
                                     (ev.participants[1], ev.balance, v_balance, "first"),
                                     (ev.participants[2], ev.balance, v_balance, "tie"),
                                     (ev.participants[0], None, None, "second"),
                                     (ev.participants[1], ev.accuracy, v_accuracy, "not_applicable"),
                                     (gone, ev.balance, v_balance, "first")):
        PairRating.objects.create(item=pair, membership=p, axis=axis, rubric_version=version, choice=choice)
    own_conv, own_q = compare_conversation(ev.participants[1], "My compare question", ["cand A", "cand B", "cand C"])
    candidates = list(own_conv.messages.filter(is_candidate=True).order_by("slot"))
    Preference.objects.create(conversation=own_conv, question=own_q, membership=ev.participants[1],
                              mode=CompareMode.MODELS, candidates=[c.id for c in candidates], chosen=candidates[2],
                              decided_at=timezone.now())
    gone_conv, gone_q = compare_conversation(gone, "withdrawn person's question", ["w A", "w B"])
    gone_c = list(gone_conv.messages.filter(is_candidate=True))
    Preference.objects.create(conversation=gone_conv, question=gone_q, membership=gone, mode=CompareMode.MODELS,
                              candidates=[c.id for c in gone_c], chosen=gone_c[0], decided_at=timezone.now())
    workshop_services.membership_withdraw(membership=gone)
    ev.items, ev.run, ev.pair, ev.gone = items, run, pair, gone
    ev.v_balance, ev.v_accuracy = v_balance, v_accuracy
    return ev


def test_prompts_are_the_workshop_questions_baseline_first_with_context(exported):
    ev = exported
    found = list(common.prompts(ev.workshop))
    assert found[0].is_baseline and found[0].question == "Who started the 1857 uprising?"
    second = found[1]
    assert [m["role"] for m in second.messages] == ["user", "assistant", "user"]  # multi-turn context kept
    questions = {p.question for p in found}
    assert "facilitator test" not in questions  # never a sandbox
    assert "withdrawn person's question" not in questions  # never a withdrawn member's
    assert "My compare question" in questions and "my question 0" in questions


def test_weval_blueprint_parses_and_has_what_the_format_requires(exported):
    ev = exported
    text = _join(weval.blueprint(ev.workshop))
    docs = list(yaml.safe_load_all(text))  # the safe loader: any language-specific tag would fail here
    assert len(docs) == 2
    head, prompts = docs
    assert head["title"].startswith("CALMA") and "id" not in head  # `id` is deprecated in the format
    assert head["system"] == ev.workshop.system_prompt  # hostile text round-trips exactly
    assert isinstance(prompts, list) and prompts
    ids = [p["id"] for p in prompts]
    assert len(ids) == len(set(ids))
    for p in prompts:
        assert ("prompt" in p) != ("messages" in p)  # exactly one of them, as the format requires
        for m in p.get("messages", []):
            assert set(m) == {"role", "content"} and m["role"] in ("user", "assistant")
        assert p["citation"].startswith(f"CALMA workshop {ev.workshop.slug}")
        for point in p["should"] + p["should_not"]:
            assert set(point) == {"point", "citation"} and isinstance(point["point"], str)
            assert not point["point"].startswith("$")  # never read as a $function check
    points = [pt["point"] for pt in prompts[0]["should"]]
    assert f"[Balance] {HOSTILE}" in points
    assert any(f"rubric {ev.v_balance.rubric_id} version 1" in pt["citation"] for pt in prompts[0]["should"])
    assert _tags(text) <= STANDARD_TAGS  # no language-specific tag anywhere: nothing a loader would execute


def test_promptfoo_config_parses_with_one_llm_rubric_per_axis(exported):
    ev = exported
    data = yaml.safe_load(_join(promptfoo.config(ev.workshop)))
    assert {"description", "prompts", "providers", "defaultTest", "tests"} <= set(data)
    assert data["providers"] == [promptfoo.PROVIDER_PLACEHOLDER]
    asserts = data["defaultTest"]["assert"]
    assert [a["type"] for a in asserts] == ["llm-rubric", "llm-rubric"]
    assert {a["metric"] for a in asserts} == {f"axis_{ev.balance.id}", f"axis_{ev.accuracy.id}"}
    assert data["prompts"][0]["raw"] == "{{ messages | dump }}"
    for test in data["tests"]:
        assert test["vars"]["messages"][-1]["role"] == "user"
        assert {"prompt_id", "message_id", "conversation_id"} <= set(test["metadata"])
    assert _tags(_join(promptfoo.config(ev.workshop))) <= STANDARD_TAGS
    everything = json.dumps([asserts, data["tests"]])
    assert "{{" not in everything and "{%" not in everything  # workshop text never runs as a template
    assert "{ { 7*7 }}" in everything


def test_preference_data_loads_with_hugging_face_datasets(exported, tmp_path):
    import datasets

    ev = exported
    dpo_path, kto_path = tmp_path / "dpo.jsonl", tmp_path / "kto.jsonl"
    dpo_path.write_text(_join(preferences.jsonl(preferences.dpo_records(ev.workshop))))
    kto_path.write_text(_join(preferences.jsonl(preferences.kto_records(ev.workshop))))
    dpo = datasets.load_dataset("json", data_files=str(dpo_path), split="train", cache_dir=str(tmp_path / "c"))
    kto = datasets.load_dataset("json", data_files=str(kto_path), split="train", cache_dir=str(tmp_path / "c"))
    # compare mode: the chosen candidate against each of the 2 others; pairs: first, second, overall second
    assert dpo.num_rows == 2 + 3
    by_source = [r for r in dpo if r["source"] == "pair_rating"]
    assert sorted((r["axis_id"] or 0, r["chosen_message_id"]) for r in by_source) == sorted(
        [(ev.balance.id, ev.pair.second_id), (ev.balance.id, ev.pair.first_id), (0, ev.pair.second_id)])
    overall = next(r for r in by_source if r["axis_id"] is None)
    assert overall["rubric_id"] is None and overall["prompt"][-1]["content"] == "Why did the Mughal empire decline?"
    for row in dpo:
        assert row["chosen"][0]["role"] == "assistant" and row["rejected"][0]["role"] == "assistant"
        assert row["participant"] != ev.gone.pseudonym
    # KTO: scores 5,4,1 / 2,3,None / 4,4,5 on two axes; 3 and None give no row
    assert kto.num_rows == 2 * 7
    assert all(r["label"] == (r["score"] > 3) for r in kto)
    assert ev.gone.pseudonym not in set(kto["participant"])
    assert {"prompt", "completion", "label", "axis_id", "rubric_id", "rubric_version"} <= set(kto.column_names)


def test_reference_set_csv_and_jsonl(exported, client):
    ev = exported
    client.force_login(ev.facilitator.user)
    text = _text(client.get(reverse("evaluation:export_reference_csv", args=[ev.workshop.slug])))
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert list(rows[0]) == reference.REFERENCE_COLUMNS
    people = [r for r in rows if r["rater_kind"] == "participant"]
    judges = [r for r in rows if r["rater_kind"] == "judge"]
    assert len(people) == 3 * 3 * 2 and len(judges) == 2  # the withdrawn member's ratings left out
    assert ev.gone.pseudonym not in {r["rater"] for r in rows}
    hostile = [r for r in rows if r["message_id"] == str(ev.items[0].message_id)]
    assert all(r["answer"] == "'" + HOSTILE for r in hostile)  # formula neutralised
    unparseable = next(r for r in judges if r["outcome"] == "unparseable")
    assert unparseable["score"] == ""  # no number, never a zero
    lines = _text(client.get(reverse("evaluation:export_reference_jsonl", args=[ev.workshop.slug]))).splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == len(rows) and records[0]["answer"] == HOSTILE or any(r["answer"] == HOSTILE for r in records)
    assert {r["rubric_version"] for r in records} == {1}


def test_data_statement_counts_roles_and_shows_hostile_text_as_text(exported):
    ev = exported
    make_member(ev.workshop, role=Role.RESEARCHER, name="a researcher")
    text = _join(statement.statement(ev.workshop))
    assert "| Participant | 3 | 1 |" in text and "| Researcher | 1 | 0 |" in text
    assert "Small group: 3 participant(s)" in text
    for p in ev.participants:
        assert p.user.get_username() and p.user.get_username() not in text  # no identities
        assert not p.display_name or p.display_name not in text
    assert f"| {ev.balance.id} | {ev.v_balance.rubric_id} | 1 | Balance |" in text
    html = render_markdown(text)
    assert "<script" not in html and 'href="javascript' not in html and "<h1>heading" not in html
    assert "&lt;script&gt;" in html


def test_inspect_task_runs_with_inspect_eval_and_scores_come_back(exported, fault_upstream, tmp_path):
    """The exported task and dataset, run by the real `inspect eval` against a deterministic
    OpenAI-compatible endpoint: the model answers, the grader scores by the rubric's last
    "quality:N" (Balance 2, Accuracy 5 here), and the log holds one score per (prompt, axis)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from inspect_ai.log import read_eval_log

    ev = exported
    services.rubric_save(axis=ev.balance, by=ev.facilitator, scale={**SCALE, "5": SCALE["5"] + " quality:2"})
    services.rubric_save(axis=ev.accuracy, by=ev.facilitator, scale={**SCALE, "5": SCALE["5"] + " quality:5"})
    (tmp_path / "calma_task.py").write_text(_join(inspect_task.task_source(ev.workshop)))
    (tmp_path / "dataset.jsonl").write_text(_join(inspect_task.dataset(ev.workshop)))
    samples = [json.loads(line) for line in (tmp_path / "dataset.jsonl").read_text().splitlines()]
    n_prompts = len(list(common.prompts(ev.workshop)))
    assert len(samples) == n_prompts * 2 and len({s["id"] for s in samples}) == len(samples)
    inspect_bin = Path(sys.executable).with_name("inspect")
    env = {**os.environ, "LOCAL_BASE_URL": fault_upstream.base_url, "LOCAL_API_KEY": "test-key",
           "INSPECT_DISPLAY": "none", "INSPECT_LOG_DIR": str(tmp_path / "logs")}
    done = subprocess.run([str(inspect_bin), "eval", "calma_task.py",
                           "--model", "openai-api/local/fault:rubric", "--log-format", "json",
                           "--log-dir", str(tmp_path / "logs"), "--max-connections", "4"],
                          env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    logs = sorted((tmp_path / "logs").glob("*.json"))
    assert len(logs) == 1
    log = read_eval_log(str(logs[0]))
    assert log.status == "success", log.error
    got = {}
    for sample in log.samples:
        score = sample.scores["rubric_scale"]
        got.setdefault(score.metadata["axis_id"], set()).add(score.value)
    assert got == {ev.balance.id: {2}, ev.accuracy.id: {5}}
    metrics = log.results.scores[0].metrics
    assert metrics["mean_score"].value == pytest.approx(3.5)
    assert metrics["scored"].value == len(samples) and metrics["unreadable"].value == 0


def test_one_zip_holds_every_export_and_its_readme_lists_every_file(exported, client):
    ev = exported
    client.force_login(ev.facilitator.user)
    response = client.get(reverse("evaluation:export_bundle", args=[ev.workshop.slug]))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.testzip() is None
    names = archive.namelist()
    readme = archive.read("README.md").decode()
    for name in names:
        assert f"`{name}`" in readme, name
    assert "Not included" not in readme, readme
    for expected in ("DATA_STATEMENT.md", f"weval/{ev.workshop.slug}-blueprint.yml", "inspect/calma_task.py",
                     "inspect/dataset.jsonl", "promptfoo/promptfooconfig.yaml", "preferences/preferences-dpo.jsonl",
                     "preferences/preferences-kto.jsonl", "reference/reference-set.csv",
                     "reference/reference-set.jsonl", f"exports/{ev.workshop.slug}-ratings.csv",
                     f"exports/{ev.workshop.slug}-rubrics.json", f"exports/{ev.workshop.slug}-interact-messages.csv",
                     f"exports/{ev.workshop.slug}-derived-axes.csv"):
        assert expected in names
    # columns of every CSV, read from the file itself, are in the data dictionary
    ratings_header = archive.read(f"exports/{ev.workshop.slug}-ratings.csv").decode().splitlines()[0]
    assert "`rubric_version`" in readme and "rubric_version" in ratings_header
    assert archive.read("inspect/dataset.jsonl") == _join(inspect_task.dataset(ev.workshop)).encode()
    messages_csv = archive.read(f"exports/{ev.workshop.slug}-interact-messages.csv").decode()
    assert ev.gone.pseudonym not in archive.read("reference/reference-set.csv").decode()
    assert "Who started the 1857 uprising?" in messages_csv
