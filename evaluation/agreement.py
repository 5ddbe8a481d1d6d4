"""Agreement statistics for the rating activity.

Krippendorff's alpha comes from the `krippendorff` package (well kept, vectorised); this module
only shapes the data (raters × items, NaN where a rater did not rate an item or said "does not
apply") and adds a bootstrap interval over items, which the package does not offer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import krippendorff
import numpy as np

ALPHA_THRESHOLD = 0.667  # Krippendorff's lowest acceptable value for tentative conclusions
MIN_ITEMS_FOR_INTERVAL = 5  # fewer answers: resampling them says nothing useful about the spread


@dataclass(frozen=True)
class AlphaResult:
    alpha: float | None
    low: float | None
    high: float | None
    items: int  # items with at least two ratings (the only ones alpha can use)
    ratings: int  # ratings on those items

    @property
    def flagged(self) -> bool:
        return self.alpha is not None and self.alpha < ALPHA_THRESHOLD


def reliability_matrix(ratings: Iterable[tuple[object, object, float | None]]) -> np.ndarray:
    """(rater, item, score) triples → a raters × items array with NaN for missing scores.

    Items with fewer than two scores carry no information about agreement and are left out."""
    by_item: dict[object, dict[object, float]] = {}
    raters: dict[object, int] = {}
    for rater, item, score in ratings:
        if score is None:
            continue
        by_item.setdefault(item, {})[rater] = float(score)
        raters.setdefault(rater, len(raters))
    items = [i for i, scores in by_item.items() if len(scores) >= 2]
    matrix = np.full((max(len(raters), 2), len(items)), np.nan)
    for col, item in enumerate(items):
        for rater, score in by_item[item].items():
            matrix[raters[rater], col] = score
    return matrix


def _alpha(matrix: np.ndarray, level: str) -> float | None:
    if matrix.shape[1] < 1:
        return None
    values = matrix[~np.isnan(matrix)]
    if np.unique(values).size < 2:
        # Every rating the same value: no variation to disagree about; alpha is undefined.
        return None
    return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement=level,
                                    value_domain=[1, 2, 3, 4, 5] if level == "ordinal" else None))


def alpha_with_interval(ratings: Iterable[tuple[object, object, float | None]], *, level: str = "ordinal",
                        resamples: int = 1000, seed: int = 42) -> AlphaResult:
    """Alpha with a percentile bootstrap 95% interval (items resampled with replacement)."""
    matrix = reliability_matrix(ratings)
    n_items = matrix.shape[1]
    n_ratings = int((~np.isnan(matrix)).sum())
    point = _alpha(matrix, level)
    if point is None or n_items < MIN_ITEMS_FOR_INTERVAL:
        return AlphaResult(point, None, None, n_items, n_ratings)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        sample = matrix[:, rng.integers(0, n_items, n_items)]
        value = _alpha(sample, level)
        if value is not None and np.isfinite(value):
            draws.append(value)
    if len(draws) < resamples // 2:
        return AlphaResult(point, None, None, n_items, n_ratings)
    low, high = np.percentile(draws, [2.5, 97.5])
    return AlphaResult(point, float(low), float(high), n_items, n_ratings)
