"""Agreement statistics for the rating activity.

Krippendorff's alpha comes from the `krippendorff` package (well kept, vectorised); this module
only shapes the data and adds a bootstrap interval over items, which the package does not offer.

Ratings are held as three numpy arrays (rater, item, score: a few bytes per rating, never a
Python object per rating) and handed to the package as value counts (items × scale points: how
many raters gave each point to each item), the form it computes from anyway, so the results are
those of the raters × items matrix (`reliability_matrix`, NaN where a rater did not rate an item
or said "does not apply") without building that matrix, whose size is raters × items.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass

import krippendorff
import numpy as np

ALPHA_THRESHOLD = 0.667  # Krippendorff's lowest acceptable value for tentative conclusions
MIN_ITEMS_FOR_INTERVAL = 5  # fewer answers: resampling them says nothing useful about the spread
ORDINAL_DOMAIN = [1, 2, 3, 4, 5]  # the rubrics' scale points


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


@dataclass(frozen=True)
class Ratings:
    """(rater, item, score) triples as arrays, in the order given. Items are integer ids; a rater
    is any hashable (a membership id, "judge-3"), stored as its index in `rater_keys`; a score of
    None ("does not apply") is NaN."""

    raters: np.ndarray  # int32: index in rater_keys
    items: np.ndarray  # int64
    scores: np.ndarray  # float64, NaN for no score
    rater_keys: tuple = ()

    @classmethod
    def of(cls, triples: Iterable[tuple[object, int, float | None]]) -> Ratings:
        """From any iterable of triples (e.g. a values_list iterator), read once."""
        if isinstance(triples, Ratings):
            return triples
        codes: dict[object, int] = {}
        raters, items, scores = array("i"), array("q"), array("d")
        nan = float("nan")
        for rater, item, score in triples:
            code = codes.get(rater)
            if code is None:
                code = codes[rater] = len(codes)
            raters.append(code)
            items.append(item)
            scores.append(nan if score is None else score)
        return cls(np.array(raters, dtype=np.int32), np.array(items, dtype=np.int64),
                   np.array(scores, dtype=np.float64), tuple(codes))

    def __len__(self) -> int:
        return len(self.items)

    def __add__(self, other: Ratings) -> Ratings:
        """These ratings, then `other`'s (the same rater in both stays one rater)."""
        codes = {key: i for i, key in enumerate(self.rater_keys)}
        for key in other.rater_keys:
            codes.setdefault(key, len(codes))
        remap = np.array([codes[key] for key in other.rater_keys], dtype=np.int32)
        return Ratings(np.concatenate([self.raters, remap[other.raters] if len(other) else other.raters]),
                       np.concatenate([self.items, other.items]), np.concatenate([self.scores, other.scores]),
                       tuple(codes))

    @property
    def scored(self) -> np.ndarray:
        """Mask of the ratings with a score."""
        return ~np.isnan(self.scores)


@dataclass(frozen=True)
class Units:
    """What alpha is computed from: per item (with at least two scores, in the order the items
    first come), how many raters gave each value of `domain`."""

    counts: np.ndarray  # items × len(domain), int64
    domain: np.ndarray


def _pairable(ratings: Ratings) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(rater, column, score) of the scores alpha uses, and the item id of each column: one score
    per rater and item (the last given), items with at least two scores only, the columns in the
    order the items first come (with a score)."""
    scored = ratings.scored
    raters, items, scores = ratings.raters[scored], ratings.items[scored], ratings.scores[scored]
    ids, first_seen = np.unique(items, return_index=True)
    if len(ids) < len(items):  # the last score of each (item, rater); lexsort is stable
        order = np.lexsort((raters, items))
        last = np.ones(len(order), dtype=bool)
        last[:-1] = (items[order][1:] != items[order][:-1]) | (raters[order][1:] != raters[order][:-1])
        keep = np.sort(order[last])
        raters, items, scores = raters[keep], items[keep], scores[keep]
    index = np.searchsorted(ids, items)  # each score's item among ids
    pairable = np.bincount(index, minlength=len(ids)) >= 2
    by_arrival = np.argsort(first_seen)  # ids indices in the order the items first came
    columns = by_arrival[pairable[by_arrival]]
    column_of = np.full(len(ids), -1, dtype=np.int64)
    column_of[columns] = np.arange(len(columns))
    mask = pairable[index]
    return raters[mask], column_of[index[mask]], scores[mask], ids[columns]


def units(ratings: Iterable[tuple[object, int, float | None]] | Ratings, *, level: str = "ordinal") -> Units:
    """The value counts alpha is computed from (see Units). For the ordinal level the domain is
    the scale (1–5); otherwise, as the package does, the values that occur."""
    _raters, column, scores, column_ids = _pairable(Ratings.of(ratings))
    found = np.unique(scores)
    if level == "ordinal":
        domain = np.asarray(ORDINAL_DOMAIN)
        if not np.isin(found, domain).all():  # as the package says of such a matrix
            raise ValueError("The reliability data contains out-of-domain values.")
    else:
        domain = found
    value = np.searchsorted(domain, scores)
    counts = np.bincount(column * len(domain) + value, minlength=len(column_ids) * len(domain))
    return Units(counts.reshape(len(column_ids), len(domain)).astype(np.int64), domain)


def reliability_matrix(ratings: Iterable[tuple[object, int, float | None]] | Ratings) -> np.ndarray:
    """(rater, item, score) triples → a raters × items array with NaN for missing scores (the
    raters in the order they first gave a score).

    Items with fewer than two scores carry no information about agreement and are left out."""
    ratings = Ratings.of(ratings)
    raters, column, scores, column_ids = _pairable(ratings)
    codes, first = np.unique(ratings.raters[ratings.scored], return_index=True)
    row_of = np.zeros(len(ratings.rater_keys), dtype=np.int64)
    row_of[codes[np.argsort(first)]] = np.arange(len(codes))
    matrix = np.full((max(len(codes), 2), len(column_ids)), np.nan)
    matrix[row_of[raters], column] = scores
    return matrix


def _matrix_units(matrix: np.ndarray, level: str) -> Units:
    present = ~np.isnan(matrix)
    items, raters = np.nonzero(present.T)
    return units(Ratings(raters.astype(np.int32), items.astype(np.int64), matrix.T[present.T],
                         tuple(range(matrix.shape[0]))), level=level)


def _alpha(data: Units | np.ndarray, level: str) -> float | None:
    """Alpha of value counts (or of a raters × items matrix), None when undefined."""
    u = data if isinstance(data, Units) else _matrix_units(data, level)
    if u.counts.shape[0] < 1:
        return None
    present = u.counts.sum(axis=0) > 0
    if present.sum() < 2:
        # Every rating the same value: no variation to disagree about; alpha is undefined.
        return None
    counts, domain = u.counts, u.domain
    if level != "ordinal":  # the package's own domain for a matrix: the values that occur
        counts, domain = np.ascontiguousarray(counts[:, present]), domain[present]  # (its layout: the same sums)
    return float(krippendorff.alpha(value_counts=counts, value_domain=domain, level_of_measurement=level))


def alpha_with_interval(ratings: Iterable[tuple[object, int, float | None]] | Ratings, *, level: str = "ordinal",
                        resamples: int = 1000, seed: int = 42) -> AlphaResult:
    """Alpha with a percentile bootstrap 95% interval (items resampled with replacement)."""
    u = units(ratings, level=level)
    n_items = u.counts.shape[0]
    n_ratings = int(u.counts.sum())
    point = _alpha(u, level)
    if point is None or n_items < MIN_ITEMS_FOR_INTERVAL:
        return AlphaResult(point, None, None, n_items, n_ratings)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        value = _alpha(Units(u.counts[rng.integers(0, n_items, n_items)], u.domain), level)
        if value is not None and np.isfinite(value):
            draws.append(value)
    if len(draws) < resamples // 2:
        return AlphaResult(point, None, None, n_items, n_ratings)
    low, high = np.percentile(draws, [2.5, 97.5])
    return AlphaResult(point, float(low), float(high), n_items, n_ratings)
