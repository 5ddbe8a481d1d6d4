"""The affinity map engine: cache reuse, stable layout when adding labels, determinism, fallbacks."""

import numpy as np
import pytest

from coding.models import Attribute
from discussion import mapping, selectors, services
from discussion.models import Embedding, MapVersion
from tests.discussion.conftest import add_code, build
from workshops.models import Job

pytestmark = pytest.mark.django_db

EXTRA = ["fair", "diplomatic", "nuanced", "biased", "partial account", "stereotype", "marginalisation",
         "violence", "controversy", "authority bias", "us bias", "helpful bias", "unhelpful bias",
         "bias to slavery", "bias to natives", "racially biased", "clear dates", "simple words"]


@pytest.fixture
def big(db):
    d = build()
    for i, text in enumerate(EXTRA):
        add_code(d.people[i % 3], text)
    return d


def positions(version):
    return {p.key: (p.x, p.y) for p in version.points.all()}


def test_labels_are_distinct_per_kind_with_users_and_excerpts(discuss):
    labels = {e["key"]: e for e in selectors.map_labels(discuss.workshop)}
    assert labels["attribute:bias"]["users"] == ["P01", "P03"]
    assert labels["code:colonial bias"]["excerpts"][0]["excerpt"] == "Many historians differ on this"
    assert labels["code:colonial bias"]["excerpts"][0]["message"] == discuss.answers[discuss.people[0].pk].pk
    assert len(labels) == 12 + 5


def test_embeddings_are_cached_and_reused(big):
    first = mapping.compute(big.workshop)
    n = Embedding.objects.count()
    assert first.embed.new == n == first.labels
    second = mapping.compute(big.workshop, full_layout=True)
    assert second.embed.new == 0 and Embedding.objects.count() == n
    # The same data gives the same map.
    a, b = positions(first.version), positions(second.version)
    assert a.keys() == b.keys()
    assert all(np.allclose(a[k], b[k], atol=1e-4) for k in a)
    assert first.version.method == MapVersion.Method.UMAP


def test_adding_a_few_labels_keeps_the_layout_and_places_new_points(big):
    first = mapping.compute(big.workshop)
    before = positions(first.version)
    add_code(big.people[0], "colonial perspective")
    add_code(big.people[1], "even-handed")
    second = mapping.compute(big.workshop)
    after = positions(second.version)
    assert second.version.method == MapVersion.Method.INCREMENTAL
    assert second.placed_new == 2 and second.embed.new == 2
    assert second.version.fitted_from_id == first.version.pk
    assert all(after[k] == before[k] for k in before)
    assert {"code:colonial perspective", "code:even-handed"} <= set(after)
    assert all(np.isfinite(after[k]).all() for k in after)
    # A full re-layout on request fits again.
    third = mapping.compute(big.workshop, full_layout=True)
    assert third.version.method == MapVersion.Method.UMAP and third.version.fitted_from_id == third.version.pk


def test_tiny_sets_fall_back_to_pca_and_empty_is_empty(db):
    d = build(participants=1)
    Attribute.objects.all().delete()
    from coding.models import Code

    Code.objects.exclude(normalized__in=["colonial bias", "western bias", "balanced"]).delete()
    result = mapping.compute(d.workshop)
    assert result.version.method == MapVersion.Method.PCA and result.labels == 3
    assert all(np.isfinite(v).all() for v in positions(result.version).values())
    Code.objects.all().delete()
    empty = mapping.compute(d.workshop, full_layout=True)
    assert empty.version.method == MapVersion.Method.EMPTY and empty.labels == 0


def test_umap_failure_falls_back_to_pca(big, monkeypatch):
    def broken(n):
        raise RuntimeError("boom")

    monkeypatch.setattr(mapping, "_umap", broken)
    result = mapping.compute(big.workshop)
    assert result.version.method == MapVersion.Method.PCA and result.labels > 10


def test_map_json_joins_points_with_current_labels(big, client_for):
    mapping.compute(big.workshop)
    services.session_set_segment(workshop=big.workshop, by=big.facilitator, segment=2)
    data = client_for(big.people[0]).get(f"/w/{big.workshop.slug}/discuss/map.json").json()
    keys = {p["key"] for p in data["points"]}
    assert "code:bias to slavery" in keys and "attribute:bias" in keys
    mine = [p for p in data["points"] if p["mine"]]
    assert mine and all("P01" in p["users"] for p in mine)
    assert set(data["participants"]) == {"P01", "P02", "P03"}


def test_map_request_runs_inline_when_eager_and_reuses_a_pending_job(big, django_capture_on_commit_callbacks):
    from calma.celery import app

    old = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            job = services.map_request(workshop=big.workshop, by=big.facilitator)
            again = services.map_request(workshop=big.workshop, by=big.facilitator)
        assert again.pk == job.pk  # a pending job is reused, not doubled
        assert Job.objects.filter(workshop=big.workshop).count() == 1
        for callback in callbacks:
            callback()
    finally:
        app.conf.task_always_eager = old
    job.refresh_from_db()
    assert job.status == Job.Status.DONE and job.progress == 100 and job.result is not None
    with pytest.raises(services.NotAllowed):
        services.map_request(workshop=big.workshop, by=big.people[0])
