"""The affinity map engine: cache reuse, stable layout when adding labels, determinism, fallbacks."""

from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.db.models import Count

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


def test_a_worker_keeps_the_vectors_it_used_and_reads_only_new_ones(big):
    """The warm map reads from the Embedding table only the labels this process has not seen
    (it read back every vector on every refresh); a new process reads them from the table."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    first = mapping.compute(big.workshop)
    add_code(big.people[0], "even-handed")
    with CaptureQueriesContext(connection) as queries:
        second = mapping.compute(big.workshop)
    reads = [q["sql"] for q in queries if q["sql"].startswith("SELECT") and "discussion_embedding" in q["sql"]]
    assert second.embed.new == 1 and second.labels == first.labels + 1
    new_hash, old_hash = (mapping.text_hash(mapping.normalise_text(t)) for t in ("even-handed", "diplomatic"))
    assert len(reads) == 1 and new_hash in reads[0] and old_hash not in reads[0]
    mapping.forget_vectors()  # as a fresh worker
    third = mapping.compute(big.workshop, full_layout=True)
    assert third.embed.new == 0
    assert np.allclose(mapping.embed(["even-handed"])[0], mapping.embed(["even-handed"])[0])


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


# --- determinism, exact distances, embeddings by language, warm-up cache, fallbacks -----------

MIXED = [  # same meaning in English, Arabic, Hindi, Swahili; and unrelated labels
    "medical safety", "السلامة الطبية", "चिकित्सा सुरक्षा", "usalama wa kimatibabu",
    "colonial bias", "تحيز استعماري", "औपनिवेशिक पूर्वाग्रह", "football scores", "simple words for children",
    "كلمات بسيطة للأطفال", "बच्चों के लिए सरल शब्द", "gender stereotypes",
]


def _cos(a, b):
    return float(np.dot(a, b))


def test_layout_is_deterministic_for_the_same_vectors():
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(60, 16)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    a, _pa, ma = mapping.fit_layout(matrix)
    b, _pb, mb = mapping.fit_layout(matrix.copy())
    assert ma == mb == MapVersion.Method.UMAP
    assert np.array_equal(a, b)


def test_fast_cosine_distances_equal_umaps_per_pair_metric():
    from sklearn.metrics import pairwise_distances
    import umap.distances

    mapping.umap_module()
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 12)).astype(np.float32)
    x[3] = 0.0  # a zero vector: umap's cosine says 1 against others, 0 against itself
    y = rng.normal(size=(7, 12)).astype(np.float32)
    ours = mapping._cosine_distances(x, x, same=True)
    theirs = pairwise_distances(x, metric=umap.distances.cosine)
    assert ours.dtype == np.float32 and np.allclose(ours, np.maximum(theirs, 0), atol=2e-6)
    assert np.allclose(mapping._cosine_distances(y, x, same=False),
                       np.maximum(pairwise_distances(y, x, metric=umap.distances.cosine), 0), atol=2e-6)
    import umap.umap_ as umap_

    # The neighbour selection equals UMAP's full stable argsort, ties (duplicates) included.
    d = mapping._cosine_distances(np.vstack([x, x[:5]]), None, same=True)
    assert np.array_equal(mapping._knn_indices(d, 15), umap_.fast_knn_indices.__wrapped__(d, 15))
    # UMAP's own call sites get the fast path; any other metric still goes to sklearn.
    assert umap_.pairwise_distances._calma_fast
    assert np.allclose(umap_.pairwise_distances(x, metric=umap.distances.euclidean),
                       pairwise_distances(x, metric=umap.distances.euclidean), atol=1e-5)


def test_numpy_encoder_gives_sentence_transformers_vectors():
    from sentence_transformers import SentenceTransformer

    from discussion import conf
    from discussion.bert_numpy import BertEncoder

    texts = ["colonial bias", "balanced and nuanced", "the answer repeats a stereotype about rural people", "x"]
    ours = BertEncoder(conf.embedding_model_path()).encode(texts, batch_size=2)
    theirs = SentenceTransformer(conf.embedding_model_path(), device="cpu").encode(texts, normalize_embeddings=True)
    assert ours.shape == theirs.shape and np.abs(ours - theirs).max() < 1e-5
    # Batches in parallel threads give the same vectors to the bit.
    parallel = BertEncoder(conf.embedding_model_path(), parallel=3).encode(texts, batch_size=1)
    assert np.array_equal(parallel, BertEncoder(conf.embedding_model_path()).encode(texts, batch_size=1))


def test_multilingual_embedding_groups_meaning_across_languages():
    v = dict(zip(MIXED, mapping.encode(mapping.E5, MIXED)))
    for other in ("السلامة الطبية", "चिकित्सा सुरक्षा"):
        same = _cos(v["medical safety"], v[other])
        for unrelated in ("football scores", "colonial bias", "gender stereotypes", "تحيز استعماري"):
            assert same > _cos(v[other], v[unrelated]), (other, unrelated)
            assert same > _cos(v["medical safety"], v[unrelated]), (other, unrelated)
    # The English model does not: the Arabic label is nearer an unrelated Arabic label than its English twin.
    en = dict(zip(MIXED, mapping.encode(mapping.MINILM, MIXED)))
    assert _cos(en["medical safety"], en["السلامة الطبية"]) < _cos(en["السلامة الطبية"], en["تحيز استعماري"])


def test_language_detection_chooses_the_embedding():
    english = ["colonial bias", "balanced", "western perspective", "nuanced tone", "accurate dates"] * 4
    chosen, info = mapping.choose_backend(english)
    assert chosen.key == mapping.MINILM and info["reason"] == "english" and not info["mixed"]
    chosen, info = mapping.choose_backend(MIXED)
    assert chosen.key == mapping.E5 and info["reason"] == "languages"
    assert info["scripts"] == {"Latin": 6, "Arabic": 3, "Devanagari": 3}
    swahili = english + ["usalama wa kimatibabu", "ushauri salama wa afya", "hulinda wagonjwa dhidi ya madhara"]
    assert mapping.choose_backend(swahili)[0].key == mapping.E5  # Latin script, not English words
    assert mapping.choose_backend(english, "hi")[1]["reason"] == "workshop_language"


def _mixed_workshop():
    d = build()
    for i, text in enumerate(MIXED):
        add_code(d.people[i % 3], text)
    return d


def test_mixed_language_map_uses_the_multilingual_model_and_says_so(db, client_for):
    d = _mixed_workshop()
    result = mapping.compute(d.workshop)
    info = result.version.params["embedding"]
    assert info["backend"] == "e5" and info["multilingual"] and info["mixed"]
    assert result.version.params["model"] == mapping.backend(mapping.E5).cache_name
    names = set(Embedding.objects.values_list("model_name", flat=True))
    assert names == {mapping.backend(mapping.E5).cache_name}
    services.session_set_segment(workshop=d.workshop, by=d.facilitator, segment=2)
    note = client_for(d.facilitator).get(f"/w/{d.workshop.slug}/discuss/map.json").json()["embedding"]
    assert note["multilingual"] and note["several_languages"] and "multilingual-e5" in note["title"]
    page = client_for(d.facilitator).get(f"/w/{d.workshop.slug}/discuss/").content.decode()
    assert 'id="map-embedding"' in page and "data-multi=" in page
    assert 'id="map-embedding"' not in client_for(d.people[0]).get(f"/w/{d.workshop.slug}/discuss/").content.decode()


def test_cache_keys_never_mix_models_and_a_new_model_means_a_full_layout(big, settings):
    first = mapping.compute(big.workshop)
    assert first.version.params["embedding"]["backend"] == "minilm"
    settings.DISCUSSION_EMBEDDING = "e5"
    add_code(big.people[0], "even-handed")
    second = mapping.compute(big.workshop)
    # Another model: every label is embedded again under its own key, and the old projector
    # (fitted on the other model's vectors) is not used to place anything.
    assert second.embed.new == second.labels and second.version.method == MapVersion.Method.UMAP
    by_model = dict(Embedding.objects.values_list("model_name").annotate(n=Count("id")))
    assert set(by_model) == {mapping.backend("minilm").cache_name, mapping.backend("e5").cache_name}
    assert by_model[mapping.backend("e5").cache_name] == second.labels


def test_multilingual_model_unavailable_falls_back_to_the_english_model(db, monkeypatch):
    d = _mixed_workshop()
    monkeypatch.setattr(mapping, "_e5_available", lambda: False)
    result = mapping.compute(d.workshop)
    assert result.version.params["embedding"]["backend"] == "minilm"
    assert result.version.params["embedding"]["reason"] == "multilingual_unavailable"
    assert result.version.method == MapVersion.Method.UMAP and result.labels == len(selectors.map_labels(d.workshop))


def test_failing_gateway_embedding_falls_back_to_the_english_model(db, settings):
    d = _mixed_workshop()
    settings.DISCUSSION_EMBEDDING = "gateway"
    settings.DISCUSSION_EMBEDDING_GATEWAY_URL = "http://127.0.0.1:9/v1"  # nothing listens there
    result = mapping.compute(d.workshop)
    info = result.version.params["embedding"]
    assert info["backend"] == "minilm" and info["reason"] == "multilingual_failed"
    assert all(np.isfinite(v).all() for v in positions(result.version).values())


def test_numpy_encoder_failure_uses_sentence_transformers(monkeypatch):
    from discussion import bert_numpy

    def broken(*a, **k):
        raise ValueError("not a BERT")

    monkeypatch.setattr(bert_numpy, "BertEncoder", broken)
    monkeypatch.setattr(mapping, "_model", None)
    vectors = mapping.encode(mapping.MINILM, ["colonial bias", "balanced"])
    assert isinstance(mapping._model, mapping._SentenceTransformer)
    assert vectors.shape == (2, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


def test_worker_warm_up_loads_umap_from_numbas_disk_cache():
    """A second worker process compiles nothing: every UMAP/pynndescent function it runs comes
    from the on-disk cache the first one filled (no timing asserted: times are in the benchmark)."""
    import os
    import subprocess
    import sys

    from discussion import conf

    script = (
        "import os, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'calma.settings'); django.setup()\n"
        "from discussion import mapping; mapping.warm_up()\n"
        "import sys, umap\n"
        "from numba.core.dispatcher import Dispatcher\n"
        "hits = misses = 0\n"
        "for name in [m for m in list(sys.modules) if m.split('.')[0] in ('umap', 'pynndescent')]:\n"
        "    for v in vars(sys.modules[name]).values():\n"
        "        if isinstance(v, Dispatcher) and v.signatures:\n"
        "            hits += sum(v.stats.cache_hits.values()); misses += sum(v.stats.cache_misses.values())\n"
        "print('RESULT', hits, misses, mapping._warm)\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": conf.numba_cache_dir()}
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=900,
                             cwd=str(settings.BASE_DIR))
        assert out.returncode == 0, out.stderr[-3000:]
        line = [x for x in out.stdout.splitlines() if x.startswith("RESULT")][-1].split()
        runs.append((int(line[1]), int(line[2]), line[3]))
    hits, misses, warm = runs[1]
    assert warm == "True" and hits > 10 and misses == 0
    assert any(f.suffix == ".nbi" for f in Path(conf.numba_cache_dir()).rglob("*"))
