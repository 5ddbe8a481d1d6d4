"""A data statement (Markdown) for a dataset built from the workshop: deployment context, who took
part (counts and roles, never identities), the process and dates of each stage, the rubric
versions, agreement figures and known limitations. Rendered from
templates/evaluation/exports/data_statement.md; every text a person wrote is escaped for Markdown
and HTML first, so a payload shows as text wherever the statement is published."""

from __future__ import annotations

import re
from collections.abc import Iterator

from django.db.models import Count, Max, Min
from django.template.loader import render_to_string
from django.utils import timezone

from evaluation import selectors
from evaluation.exports import common
from evaluation.models import JudgeRun, PairRating, Rating
from llm_gateway.models import Message
from workshops.models import Membership, Role, Stage, StageChange, Workshop

SMALL_GROUP = 10
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def md(text) -> str:
    """Text as inert Markdown: HTML characters as entities, Markdown punctuation escaped,
    line breaks kept as Markdown hard breaks."""
    text = str(text if text is not None else "")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    lines = [line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "  \n".join(line for line in lines if line) or "—"


def _figure(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _roles(workshop: Workshop) -> dict:
    rows = (Membership.objects.filter(workshop=workshop).values("role")
            .annotate(active=Count("id", filter=None), withdrawn=Count("withdrawn_at")))
    out = {r.value: {"label": str(r.label), "active": 0, "withdrawn": 0} for r in Role}
    for row in rows:
        out[row["role"]]["withdrawn"] = row["withdrawn"]
        out[row["role"]]["active"] = row["active"] - row["withdrawn"]
    return out


def _stages(workshop: Workshop) -> list[dict]:
    entered: dict[str, list] = {}
    for change in StageChange.objects.filter(workshop=workshop).order_by("changed_at", "id"):
        entered.setdefault(change.to_stage, []).append(change.changed_at)
    rows = []
    changes = list(StageChange.objects.filter(workshop=workshop).order_by("changed_at", "id")
                   .values_list("to_stage", "changed_at"))
    for stage in Stage:
        times = entered.get(stage.value)
        if not times:
            continue
        start = times[0]
        later = [t for s, t in changes if t > start and s != stage.value]
        rows.append({"stage": str(stage.label), "start": start, "end": later[0] if later else None,
                     "reentered": len(times) - 1})
    return rows


def context(workshop: Workshop) -> dict:
    roles = _roles(workshop)
    live = {"membership__withdrawn_at__isnull": True, "item__workshop": workshop}
    rating_span = Rating.objects.filter(**live).aggregate(first=Min("updated_at"), last=Max("updated_at"),
                                                          n=Count("id"), raters=Count("membership", distinct=True))
    pair_n = PairRating.objects.filter(**live).count()
    conversations = common.research_conversations(workshop)
    messages = Message.objects.filter(conversation__in=conversations)
    agreement = selectors.agreement(workshop)
    judges = selectors.judge_agreement(workshop)
    versions = []
    drafted = []
    for rubric in selectors.rubric_versions_for_export(workshop):
        for v in rubric.versions.all():
            versions.append({"axis_id": rubric.axis_id, "rubric_id": rubric.id, "number": v.number, "name": md(v.name),
                             "created_at": v.created_at, "complete": v.is_complete,
                             "drafted": ", ".join(md(f) for f in v.drafted) or "—"})
            if v.drafted:
                drafted.append({"axis_id": rubric.axis_id, "number": v.number, "fields": ", ".join(md(f) for f in v.drafted)})
    alpha_rows = [{"axis_id": r["axis"].id, "name": md(r["axis"].name), "alpha": _figure(r["result"].alpha),
                   "low": _figure(r["result"].low), "high": _figure(r["result"].high),
                   "items": r["result"].items, "ratings": r["ratings_total"],
                   "raters": r["raters"], "flag": r["result"].flagged}
                  for r in agreement]
    judge_rows = []
    for a in judges["axes"]:
        for j in a["judges"]:
            w = j["with_judge"]
            judge_rows.append({"axis_id": a["axis"].id, "name": md(a["axis"].name), "run_id": j["run"].id,
                               "endpoint": md(j["run"].endpoint_key), "model": md(j["run"].model_id or "—"),
                               "alpha": _figure(w.alpha if w else None), "rho": _figure(j["rho"]), "rho_n": j["rho_n"],
                               "scored": j["outcomes"].get("scored", 0),
                               "unscored": sum(n for k, n in j["outcomes"].items() if k != "scored"),
                               "flag": j["flagged"]})
    stages = _stages(workshop)
    participants = roles[Role.PARTICIPANT]["active"]
    limitations = []
    if participants < SMALL_GROUP:
        limitations.append(f"Small group: {participants} participant(s). Agreement figures and any average carry "
                           "wide uncertainty; the intervals above show how wide.")
    if stages:
        span = (stages[-1]["end"] or timezone.now()) - stages[0]["start"]
        limitations.append(f"Time: the stages recorded here span {span.days} day(s) "
                           f"({stages[0]['start']:%Y-%m-%d} to {(stages[-1]['end'] or timezone.now()):%Y-%m-%d}); "
                           "participants rated a sample of answers, not all of them.")
    limitations.append(f"Language: the workshop ran in '{md(workshop.language)}'; axes, rubrics and ratings reflect "
                       "this group's reading in that language and context and do not transfer to others unexamined.")
    if drafted:
        limitations.append("Model-drafted text: some rubric parts were proposed by a model and not yet edited or "
                           "approved by a person (listed under Rubric versions, column 'drafted').")
    if judges["runs"]:
        limitations.append("Judge scores come from models; they are reported beside, never instead of, the "
                           "participants' ratings.")
    if any(roles[r]["withdrawn"] for r in roles):
        limitations.append("Withdrawn participants' data is left out of every file; counts above say how many.")
    return {
        "workshop": workshop, "title": md(workshop.title), "slug": workshop.slug,
        "deployment_context": md(workshop.deployment_context), "audience": md(workshop.audience),
        "language": md(workshop.language), "generated_at": timezone.now(), "roles": roles.values(),
        "participants": participants, "stages": stages, "rating_span": rating_span, "pair_ratings": pair_n,
        "conversations": conversations.count(), "baseline_conversations": conversations.filter(is_baseline=True).count(),
        "messages": messages.count(), "versions": versions, "alpha_rows": alpha_rows, "judge_rows": judge_rows,
        "judge_runs": [{"id": r.id, "endpoint": md(r.endpoint_key), "model": md(r.model_id or "—"),
                        "created_at": r.created_at} for r in JudgeRun.objects.filter(workshop=workshop).order_by("id")],
        "limitations": limitations, "drafted": drafted,
    }


def statement(workshop: Workshop) -> Iterator[str]:
    yield render_to_string("evaluation/exports/data_statement.md", context(workshop))
