import pytest

from coding import selectors, services, summary
from workshops.models import Job

pytestmark = pytest.mark.django_db


def test_tokenizer_handles_scripts():
    tokens = summary.tokenize("The Mughal empire! मुग़ल साम्राज्य 中国历史 التاريخ", frozenset({"the"}))
    assert "mughal" in tokens and "साम्राज्य" in tokens and "中国" in tokens and "التاريخ" in tokens
    assert "the" not in tokens


def test_label_frequencies_count_people_and_uses():
    rows = summary.label_frequencies([(1, "Dry", "dry"), (2, "dry", "dry"), (2, "dry", "dry"), (1, "<b>x</b>", "<b>x</b>")])
    assert rows[0] == {"label": "dry", "count": 3, "participants": 2, "size": 2.6}
    assert rows[1]["label"] == "<b>x</b>" and rows[1]["size"] < rows[0]["size"]


def test_task_builds_summary_and_is_idempotent(reflect, celery_eager, django_capture_on_commit_callbacks):
    from workshops.tasks import run_job

    services.annotation_create(membership=reflect.p1, message_id=reflect.own_answer.id, start=0, end=5,
                               codes=["greeting"])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = services.summary_request(membership=reflect.facilitator)
        job.refresh_from_db()
        assert job.status == "queued"  # queued on commit, not before
    assert callbacks
    job.refresh_from_db()
    assert job.status == "done"
    result = job.result
    p1 = next(p for p in result["participants"] if p["pseudonym"] == reflect.p1.pseudonym)
    assert p1["conversations"] == 1 and p1["turns"] == 2 and p1["annotations"] == 1
    assert p1["labels"] == [{"text": "greeting", "uses": 1}]
    assert p1["highlights"] == [{"excerpt": reflect.own_answer.content[0:5], "codes": ["greeting"], "memo": "",
                                 "conversation": reflect.own.id}]
    baseline_row = next(c for c in result["conversations"] if c["is_baseline"])
    assert "thanksgiving" in baseline_row["keywords"]
    run_job(job.id)  # running it again leaves the finished job alone
    job.refresh_from_db()
    assert job.result == result
    assert job.fingerprint == selectors.summary_fingerprint(reflect.workshop)


def test_job_progress_is_broadcast(reflect, celery_eager, monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr("coding.services.broadcast", lambda wid, kind, payload=None: sent.append((kind, payload)))
    with django_capture_on_commit_callbacks(execute=True):
        services.summary_request(membership=reflect.facilitator)
    kinds = [k for k, _ in sent]
    assert kinds.count("reflect-summary") >= 3
    assert Job.objects.get().progress == 100
