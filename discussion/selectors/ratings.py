"""Reads of votes, rankings and Likert ratings, and the consensus shift between them."""

from __future__ import annotations

import math
from collections import defaultdict

from discussion.models import AxisStatus, GroupRank, GroupVote, IndividualRank, LikertRating, Pick
from discussion.selectors.members import active, participants
from discussion.selectors.session import active_axes
from workshops.models import Role


def vote_tally(workshop) -> list[dict]:
    """Live vote result: Borda points (5 for first .. 1 for fifth), votes in top three and top five."""
    tally: dict[int, dict] = {}
    votes = GroupVote.objects.filter(
        active(), axis__workshop=workshop, axis__status=AxisStatus.ACTIVE
    ).select_related("axis")
    voters = set()
    for vote in votes:
        voters.add(vote.membership_id)
        entry = tally.setdefault(vote.axis_id, {"id": vote.axis_id, "name": vote.axis.name, "points": 0, "top3": 0, "top5": 0})
        entry["points"] += 6 - vote.rank
        entry["top5"] += 1
        entry["top3"] += 1 if vote.rank <= 3 else 0
    result = sorted(tally.values(), key=lambda e: (-e["points"], -e["top3"], e["name"].casefold()))
    for entry in result:
        entry["voters"] = len(voters)
    return result


def my_votes(membership) -> list[int]:
    return list(GroupVote.objects.filter(membership=membership).order_by("rank").values_list("axis_id", flat=True))


def group_ranking(workshop) -> list[GroupRank]:
    return list(GroupRank.objects.filter(workshop=workshop).select_related("axis").order_by("rank"))


# --- results -------------------------------------------------------------------------------------


def likert_distribution(workshop) -> list[dict]:
    axes = list(active_axes(workshop))
    counts = {a.pk: [0, 0, 0, 0, 0] for a in axes}
    for axis_id, value in LikertRating.objects.filter(
        active(), axis__in=axes, membership__role=Role.PARTICIPANT
    ).values_list("axis_id", "value"):
        counts[axis_id][value - 1] += 1
    result = []
    for a in axes:
        c = counts[a.pk]
        n = sum(c)
        result.append({"id": a.pk, "name": a.name, "counts": c, "n": n,
                       "mean": round(sum((i + 1) * k for i, k in enumerate(c)) / n, 3) if n else None})
    return result


def _rank_vector(order: dict[int, float], axis_ids: list[int]) -> list[float]:
    """Ranks over all axes; unranked axes share the place after the last ranked one."""
    worst = (max(order.values()) if order else 0) + 1
    return [order.get(a, worst) for a in axis_ids]


def _corr(a: list[float], b: list[float], method: str):
    from scipy import stats

    if len(a) < 2 or len(set(a)) < 2 or len(set(b)) < 2:
        return None
    value = (stats.spearmanr(a, b) if method == "spearman" else stats.kendalltau(a, b))[0]
    return None if value is None or math.isnan(value) else round(float(value), 3)


def pick_axes(workshop) -> dict[int, set[int]]:
    """For each pick, the active axes it fed (directly, through its attribute, or the attribute's codes)."""
    axes = list(active_axes(workshop).prefetch_related("sources"))
    picks = list(Pick.objects.filter(membership__workshop=workshop).select_related("attribute").prefetch_related("attribute__codes"))
    result: dict[int, set[int]] = defaultdict(set)
    for axis in axes:
        src = list(axis.sources.all())
        pick_ids = {s.pick_id for s in src if s.pick_id}
        attr_ids = {s.attribute_id for s in src if s.attribute_id}
        code_ids = {s.code_id for s in src if s.code_id}
        for pick in picks:
            if pick.pk in pick_ids or (pick.attribute_id and pick.attribute_id in attr_ids):
                result[pick.pk].add(axis.pk)
            elif pick.attribute_id and code_ids & {c.pk for c in pick.attribute.codes.all()}:
                result[pick.pk].add(axis.pk)
    return result


def consensus_shift(workshop) -> dict:
    """Segment 1 picks versus segment 5 rankings, per participant and for the group.

    Each participant's picks induce a ranking of the final axes (an axis fed by their first
    pick is ranked 1, ... unfed axes share the last place). Both that ranking ("before") and
    their segment 5 ranking ("after") are compared with the group's final ranking (Spearman
    rho and Kendall tau). A participant converged if their agreement with the group rose.
    """
    axes = list(active_axes(workshop))
    axis_ids = [a.pk for a in axes]
    group = {r.axis_id: r.rank for r in group_ranking(workshop) if r.axis_id in set(axis_ids)}
    group_vec = _rank_vector(group, axis_ids)
    fed = pick_axes(workshop)
    rows = []
    picks = defaultdict(list)
    for pick in Pick.objects.filter(membership__workshop=workshop).order_by("position"):
        picks[pick.membership_id].append(pick)
    after_ranks = defaultdict(dict)
    for r in IndividualRank.objects.filter(axis__in=axes):
        after_ranks[r.membership_id][r.axis_id] = r.rank
    for m in participants(workshop):
        before: dict[int, float] = {}
        for pick in picks.get(m.pk, []):
            for axis_id in fed.get(pick.pk, ()):
                before[axis_id] = min(before.get(axis_id, 99), pick.position)
        after = after_ranks.get(m.pk, {})
        b = _rank_vector(before, axis_ids)
        a = _rank_vector(after, axis_ids)
        row = {
            "participant": m.pseudonym,
            "picks": [p.name for p in picks.get(m.pk, [])],
            "picks_on_board": len(before),
            "ranked": len(after),
            "before_rho": _corr(b, group_vec, "spearman") if before and group else None,
            "after_rho": _corr(a, group_vec, "spearman") if after and group else None,
            "before_tau": _corr(b, group_vec, "kendall") if before and group else None,
            "after_tau": _corr(a, group_vec, "kendall") if after and group else None,
            "self_tau": _corr(b, a, "kendall") if before and after else None,
        }
        if row["before_rho"] is not None and row["after_rho"] is not None:
            row["shift"] = round(row["after_rho"] - row["before_rho"], 3)
            row["converged"] = row["after_rho"] > row["before_rho"]
        else:
            row["shift"] = None
            row["converged"] = None
        rows.append(row)

    def mean(key):
        values = [r[key] for r in rows if r[key] is not None]
        return round(sum(values) / len(values), 3) if values else None

    comparable = [r for r in rows if r["converged"] is not None]
    return {
        "rows": rows,
        "group": {
            "before_rho": mean("before_rho"), "after_rho": mean("after_rho"),
            "before_tau": mean("before_tau"), "after_tau": mean("after_tau"),
            "converged": sum(1 for r in comparable if r["converged"]), "comparable": len(comparable),
            "participants": len(rows),
        },
        "has_group_ranking": bool(group),
    }


def rating_state(membership) -> dict:
    ratings = dict(LikertRating.objects.filter(membership=membership).values_list("axis_id", "value"))
    ranks = dict(IndividualRank.objects.filter(membership=membership).values_list("axis_id", "rank"))
    return {"ratings": ratings, "ranks": ranks}
