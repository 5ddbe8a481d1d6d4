"""Agreement statistics: the shaping of ratings for the `krippendorff` package, checked against
published worked examples, and the bootstrap interval."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pytest

from evaluation.agreement import Ratings, _alpha, alpha_with_interval, reliability_matrix

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the worked example with
# missing data: 3 coders (A, B, C) × 15 units; "*" = not coded. Published: nominal 0.691,
# interval 0.811.
EXAMPLE = [
    "*    *    *    *    *    3    4    1    2    1    1    3    3    *    3",
    "1    *    2    1    3    3    4    3    *    *    *    *    *    *    *",
    "*    *    2    1    3    4    4    *    2    1    1    3    3    *    4",
]


def _triples():
    for coder, line in zip("ABC", EXAMPLE):
        for unit, value in enumerate(line.split()):
            yield coder, unit, None if value == "*" else int(value)


def test_published_example_nominal_and_interval():
    matrix = reliability_matrix(_triples())
    # Units coded by fewer than two coders carry no pairable values and are left out.
    assert matrix.shape == (3, 12)
    assert _alpha(matrix, "nominal") == pytest.approx(0.691, abs=5e-4)
    assert _alpha(matrix, "interval") == pytest.approx(0.811, abs=5e-4)


def test_ordinal_alpha_depends_only_on_the_order_of_scores():
    base = list(_triples())
    stretched = [(c, u, None if v is None else {1: 1, 2: 2, 3: 4, 4: 5}[v]) for c, u, v in base]
    a = _alpha(reliability_matrix(base), "ordinal")
    b = _alpha(reliability_matrix(stretched), "ordinal")
    assert a == pytest.approx(b, abs=1e-9)
    # …whereas the interval metric sees the stretched distances.
    assert _alpha(reliability_matrix(base), "interval") != pytest.approx(
        _alpha(reliability_matrix(stretched), "interval"), abs=1e-3)


def test_interval_brackets_the_point_and_counts_items_and_ratings():
    result = alpha_with_interval(_triples(), resamples=300)
    assert result.items == 12 and result.ratings == 26  # 27 values, less the unit only B coded
    assert result.low is not None and result.low <= result.alpha <= result.high
    assert -1 <= result.low < result.high <= 1


def test_perfect_agreement_is_one_and_no_variation_is_undefined():
    perfect = [(r, i, (i % 5) + 1) for r in range(3) for i in range(10)]
    assert alpha_with_interval(perfect, resamples=50).alpha == pytest.approx(1.0)
    constant = [(r, i, 4) for r in range(3) for i in range(10)]
    result = alpha_with_interval(constant, resamples=50)
    assert result.alpha is None and not result.flagged


def test_does_not_apply_is_missing_not_a_score_and_low_agreement_is_flagged():
    rng = np.random.default_rng(1)
    noisy = [(r, i, int(rng.integers(1, 6))) for r in range(4) for i in range(30)]
    noisy += [(9, i, None) for i in range(30)]  # a rater who found the axis never applied
    result = alpha_with_interval(noisy, resamples=100)
    assert result.ratings == 120
    assert result.alpha is not None and not math.isnan(result.alpha)
    assert result.flagged


# --- The shape handed to the package: value counts, not a raters × items matrix ------------------


def _random_triples(seed: int, raters: int = 12, items: int = 40, n: int = 300):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        rater = int(rng.integers(0, raters)) if rng.random() < 0.9 else f"judge-{int(rng.integers(0, 2))}"
        score = None if rng.random() < 0.1 else int(rng.integers(1, 6))
        yield rater, int(rng.integers(0, items)) * 1000003, score  # repeats: the last score counts


def _matrix_alpha(matrix: np.ndarray, level: str) -> float | None:
    """What the package computes from the raters × items matrix itself."""
    values = matrix[~np.isnan(matrix)]
    if matrix.shape[1] < 1 or np.unique(values).size < 2:
        return None
    return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement=level,
                                    value_domain=[1, 2, 3, 4, 5] if level == "ordinal" else None))


@pytest.mark.parametrize("level", ["ordinal", "interval", "nominal"])
def test_value_counts_give_the_matrix_figures_bit_for_bit(level):
    """Alpha and its bootstrap interval from value counts are exactly those of the raters × items
    matrix (the items resampled the same way), duplicates and "does not apply" included."""
    for seed in range(12):
        triples = list(_random_triples(seed))
        matrix = reliability_matrix(triples)
        result = alpha_with_interval(triples, level=level, resamples=40, seed=seed)
        assert result.alpha == _matrix_alpha(matrix, level)
        assert (result.items, result.ratings) == (matrix.shape[1], int((~np.isnan(matrix)).sum()))
        rng = np.random.default_rng(seed)
        draws = [_matrix_alpha(matrix[:, rng.integers(0, matrix.shape[1], matrix.shape[1])], level)
                 for _ in range(40)]
        draws = [d for d in draws if d is not None and np.isfinite(d)]
        assert (result.low, result.high) == tuple(float(x) for x in np.percentile(draws, [2.5, 97.5]))


def test_the_package_gets_value_counts_never_a_raters_by_items_matrix(monkeypatch):
    """Memory is a few bytes per rating and a few per item: the ratings are three arrays, and the
    package is handed items × scale points, never raters × items (which grows with both)."""
    import evaluation.agreement as agreement

    calls, original = [], krippendorff.alpha

    def recording(**kwargs):
        calls.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(agreement.krippendorff, "alpha", recording)
    triples = [(r, i, (i * r) % 5 + 1) for i in range(50) for r in range(40) if (i + r) % 13 == 0]
    result = alpha_with_interval(iter(triples), resamples=20)
    assert result.items == 50 and len(calls) == 21
    assert all(c.get("reliability_data") is None and c["value_counts"].shape == (50, 5) for c in calls)
    ratings = Ratings.of(iter(triples * 100))
    assert len(ratings) == 100 * len(triples)
    assert ratings.raters.nbytes + ratings.items.nbytes + ratings.scores.nbytes <= 20 * len(ratings)
