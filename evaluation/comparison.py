"""Model comparison on the workshop's own prompts (Evaluate II, section 1).

The facilitator picks two or more models and a prompt set — the questions participants asked in
Interact (all, the baseline set, or a chosen subset; each with its conversation's turns before it
as context) and prompts they add — and the chosen judges. The workshop's `compare` job (the
shared job mechanism, workshops.jobs) then

1. collects a fresh answer from every model to every prompt through the gateway client, with the
   workshop's system prompt (llm_gateway.services.history_for_model builds it, as for every
   answer in Interact), at most `concurrency` calls in flight per model. Each answer is stored as
   it arrives as an llm_gateway Message in the model's own sandbox conversation (usage recorded
   on the message, as everywhere); a failed call is stored as a failed message with its reason,
   shown as a missing cell, and asked again when the job runs again;
2. scores every complete answer along every axis with a complete rubric, with each chosen judge
   run, through the Evaluate I machinery (judging.score_run: RatingItem -> Message, JudgeScore).

A worker killed at any point loses nothing stored: on resume, answers already complete are not
asked again and (answer, axis) pairs already judged are not judged again.

Blind A/B: the facilitator puts a comparison's answer pairs up for the participants. That is one
PairItem (source "comparison") per prompt and pair of models, handed out and rated by the
Evaluate I pairwise machinery (services.pair_assignments_ensure, the rate_pair page: blinded, a
random side per rater, per axis and overall).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from itertools import combinations

import numpy as np
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connections, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from evaluation import selectors
from evaluation.agreement import MIN_ITEMS_FOR_INTERVAL
from evaluation.models import (
    FINAL_OUTCOMES, Comparison, ComparisonAnswer, ComparisonModel, ComparisonPrompt, JudgeOutcome, JudgeRun,
    JudgeScore, PairItem, PairRating, PairSource, PromptKind, RatingItem,
)
from llm_gateway.models import Conversation, Message, MessageRole, MessageStatus
from workshops.models import Membership, Workshop

JOB_KIND = "compare"
EXTRA_PROMPTS_MAX = 500
PROMPTS_MAX = 2000
ANSWER_SHARE = 60  # percent of the job's progress bar for collecting answers; the rest is judging
TITLE_MAX = 200


# --- the prompt set ---------------------------------------------------------------------------------


def workshop_questions(workshop: Workshop):
    """Questions participants asked in Interact that a comparison may use: participants' messages
    in the baseline conversations and in participants' own conversations — never a withdrawn
    member's, never a facilitator's sandbox conversation that is not baseline."""
    return (Message.objects.filter(conversation__workshop=workshop, role=MessageRole.USER,
                                   status=MessageStatus.COMPLETE, conversation__owner__withdrawn_at__isnull=True)
            .filter(Q(conversation__is_baseline=True)
                    | Q(conversation__is_sandbox=False, conversation__owner__role="participant"))
            .exclude(content="").select_related("conversation")
            .order_by("-conversation__is_baseline", "conversation_id", "position"))


def question_choices(workshop: Workshop) -> list[tuple[int, str]]:
    from django.utils.text import Truncator

    return [(m.id, ("★ " if m.conversation.is_baseline else "") + Truncator(m.content).chars(120))
            for m in workshop_questions(workshop)]


def parse_extra(text: str) -> list[str]:
    """Extra prompts: one per line (blank lines ignored)."""
    from django.conf import settings

    prompts = [line.strip() for line in (text or "").replace("\x00", "").splitlines() if line.strip()]
    if len(prompts) > EXTRA_PROMPTS_MAX:
        raise ValidationError(_("At most %(n)d extra prompts.") % {"n": EXTRA_PROMPTS_MAX})
    limit = settings.CHAT_MESSAGE_MAX_CHARS
    for prompt in prompts:
        if len(prompt) > limit:
            raise ValidationError(_("An extra prompt is longer than %(n)d characters.") % {"n": limit})
    return prompts


# --- starting a comparison --------------------------------------------------------------------------


@transaction.atomic
def comparison_create(*, workshop: Workshop, by: Membership, endpoint_keys: list[str], judge_keys: list[str],
                      prompt_set: str = "all", question_ids=(), extra: str = "", concurrency: int = 4,
                      title: str = "") -> tuple[Comparison, object]:
    """Check the request, store the comparison (models, prompts, judges) and queue the job.

    Refused with a message: fewer than two models, a model or judge that is not configured, no
    axis with a complete rubric, no judge, no prompt."""
    from llm_gateway import registry
    from workshops import jobs

    if not by.is_facilitator:
        raise ValidationError(_("Only facilitators start a model comparison."))
    keys = list(dict.fromkeys(k for k in endpoint_keys if k))
    if len(keys) < 2:
        raise ValidationError(_("Choose at least two models to compare."))
    endpoints = {}
    for key in keys + list(judge_keys):
        endpoint = registry.get(key)
        if endpoint is None:
            raise ValidationError(_("%(key)s is not a configured model endpoint.") % {"key": key})
        endpoints[key] = endpoint
    if not selectors.ratable_axes(workshop):
        raise ValidationError(_("No axis has a complete rubric: the answers could not be scored along any axis. "
                                "Describe every point of an axis' scale first."))
    judge_keys = list(dict.fromkeys(k for k in judge_keys if k))
    if not judge_keys:
        raise ValidationError(_("Choose at least one judge model."))
    if not 1 <= int(concurrency) <= 32:
        raise ValidationError(_("Concurrency is between 1 and 32."))
    questions = workshop_questions(workshop)
    if prompt_set == "baseline":
        questions = questions.filter(conversation__is_baseline=True)
    elif prompt_set == "chosen":
        ids = {int(i) for i in question_ids}
        questions = questions.filter(id__in=ids)
        if len(questions) != len(ids):
            raise ValidationError(_("One of the chosen questions is not in this workshop's prompt set."))
    elif prompt_set == "none":
        questions = questions.none()
    elif prompt_set != "all":
        raise ValidationError(_("Unknown prompt set."))
    questions = list(questions)
    extras = parse_extra(extra)
    if not questions and not extras:
        raise ValidationError(_("There is no prompt to ask: choose questions from the workshop or add prompts."))
    if len(questions) + len(extras) > PROMPTS_MAX:
        raise ValidationError(_("At most %(n)d prompts in one comparison.") % {"n": PROMPTS_MAX})

    comparison = Comparison.objects.create(workshop=workshop, created_by=by, concurrency=int(concurrency),
                                           title=(title or "").strip()[:TITLE_MAX])
    if not comparison.title:
        comparison.title = _("Comparison %(n)d") % {"n": comparison.id}
        comparison.save(update_fields=["title"])
    for i, key in enumerate(keys):
        conversation = Conversation.objects.create(
            workshop=workshop, owner=by, endpoint_key=key, is_sandbox=True,
            title=f"{comparison.title} · {key}"[:200])
        ComparisonModel.objects.create(comparison=comparison, endpoint_key=key, model_id=endpoints[key].model,
                                       position=i, conversation=conversation)
    prompts = [ComparisonPrompt(comparison=comparison, position=i, source=q, text=q.content,
                                kind=PromptKind.BASELINE if q.conversation.is_baseline else PromptKind.PARTICIPANT)
               for i, q in enumerate(questions)]
    prompts += [ComparisonPrompt(comparison=comparison, position=len(questions) + i, kind=PromptKind.EXTRA, text=t)
                for i, t in enumerate(extras)]
    ComparisonPrompt.objects.bulk_create(prompts)
    for key in judge_keys:  # a judge already checked against the participants is reused as it is
        run = JudgeRun.objects.filter(workshop=workshop, endpoint_key=key).order_by("-id").first()
        if run is None:
            run = JudgeRun.objects.create(workshop=workshop, endpoint_key=key, model_id=endpoints[key].model,
                                          concurrency=int(concurrency), created_by=by)
        comparison.judges.add(run)
    job = jobs.job_request(workshop=workshop, kind=JOB_KIND, by=by)
    return comparison, job


@transaction.atomic
def comparison_resume(*, comparison: Comparison, by: Membership):
    """Ask again what failed, judge what is left (a stopped worker, an endpoint that failed)."""
    from workshops import jobs

    return jobs.job_request(workshop=comparison.workshop, kind=JOB_KIND, by=by)


# --- the job ------------------------------------------------------------------------------------------


def live_prompts(comparison: Comparison):
    """The comparison's prompts, less those from a member who has withdrawn since."""
    return comparison.prompts.filter(Q(source__isnull=True) | Q(source__conversation__owner__withdrawn_at__isnull=True))


def answers_to_collect(comparison: Comparison) -> list[tuple[ComparisonPrompt, ComparisonModel]]:
    complete = set(ComparisonAnswer.objects.filter(prompt__comparison=comparison, message__status=MessageStatus.COMPLETE)
                   .values_list("prompt_id", "model_id"))
    models = list(comparison.compared.order_by("position"))
    return [(p, m) for p in live_prompts(comparison).select_related("source__conversation__workshop")
            for m in models if (p.id, m.id) not in complete]


def pairs_to_judge(comparison: Comparison, run: JudgeRun) -> list[tuple[int, int, int]]:
    """(rating item, axis, rubric version) of the comparison's complete answers that `run` has not
    judged yet, on every axis with a complete rubric."""
    axes = [(row["axis"].id, row["version"].id) for row in selectors.ratable_axes(comparison.workshop)]
    messages = (ComparisonAnswer.objects.filter(prompt__in=live_prompts(comparison),
                                                message__status=MessageStatus.COMPLETE).values("message_id"))
    items = list(RatingItem.objects.filter(workshop=comparison.workshop, message_id__in=messages)
                 .order_by("id").values_list("id", flat=True))
    done = set(JudgeScore.objects.filter(run=run, item_id__in=items, outcome__in=FINAL_OUTCOMES)
               .values_list("item_id", "axis_id"))
    return [(i, a, v) for i in items for a, v in axes if (i, a) not in done]


def _history(prompt: ComparisonPrompt, model: ComparisonModel) -> list[dict]:
    """What the model is sent: the workshop's system prompt and, for a question from Interact,
    its conversation's turns up to the question (llm_gateway's own history builder)."""
    from llm_gateway.services import history_for_model

    if prompt.source_id:
        return history_for_model(prompt.source.conversation, upto_position=prompt.source.position + 1)
    return [*history_for_model(model.conversation, upto_position=0), {"role": "user", "content": prompt.text}]


def _ensure_questions(comparison: Comparison, todo) -> None:
    """The question copies in each model's conversation (position 2i), so every answer replies to
    its question where the judge, the A/B page and Interact read it."""
    Message.objects.bulk_create(
        [Message(conversation_id=m.conversation_id, role=MessageRole.USER, content=p.text, position=2 * p.position,
                 status=MessageStatus.COMPLETE, completed_at=timezone.now()) for p, m in todo],
        ignore_conflicts=True)


ANSWER_FIELDS = ("status", "content", "prompt_tokens", "completion_tokens", "ttft_ms", "total_ms", "attempts",
                 "stream_chunks", "error", "error_kind", "finish_reason", "endpoint_key", "model_id")


def _store_answers(batch: list[tuple[ComparisonModel, ComparisonPrompt, dict]]) -> None:
    """Answers that arrived since the last write, in one transaction: each message (complete, or
    failed with its reason), its link to the prompt and, when complete, its rating item for the
    judges. A failed answer asked again replaces the failed message in place."""
    now = timezone.now()
    with transaction.atomic():
        wanted = Q()
        for model, prompt, _result in batch:
            wanted |= Q(conversation_id=model.conversation_id, position__in=[2 * prompt.position, 2 * prompt.position + 1])
        found = {(m.conversation_id, m.position): m for m in Message.objects.filter(wanted)}
        new, old = [], []
        for model, prompt, result in batch:
            question = found[(model.conversation_id, 2 * prompt.position)]
            message = found.get((model.conversation_id, 2 * prompt.position + 1)) or Message(
                conversation_id=model.conversation_id, position=2 * prompt.position + 1)
            message.role, message.reply_to_id, message.completed_at, message.updated_at = (
                MessageRole.ASSISTANT, question.id, now, now)
            for key in ANSWER_FIELDS:
                setattr(message, key, result[key])
            (old if message.pk else new).append(message)
        Message.objects.bulk_create(new)
        if old:
            Message.objects.bulk_update(old, ["role", "reply_to_id", "completed_at", "updated_at", *ANSWER_FIELDS])
        by_cell = {(m.conversation_id, m.position): m for m in new + old}
        messages = [by_cell[(model.conversation_id, 2 * prompt.position + 1)] for model, prompt, _r in batch]
        ComparisonAnswer.objects.bulk_create(
            [ComparisonAnswer(prompt=prompt, model=model, message=message)
             for (model, prompt, _r), message in zip(batch, messages)],
            update_conflicts=True, unique_fields=["prompt", "model"], update_fields=["message"])
        RatingItem.objects.bulk_create([RatingItem(workshop_id=model.comparison.workshop_id, message=message)
                                        for (model, _p, _r), message in zip(batch, messages)
                                        if message.status == MessageStatus.COMPLETE], ignore_conflicts=True)


async def _ask(model: ComparisonModel, messages: list[dict], max_tokens: int | None) -> dict:
    from llm_gateway import client, registry

    endpoint = registry.get(model.endpoint_key)
    out = {"status": MessageStatus.FAILED, "content": "", "prompt_tokens": None, "completion_tokens": None,
           "ttft_ms": None, "total_ms": None, "attempts": 0, "stream_chunks": 0, "error": "", "error_kind": "",
           "finish_reason": "", "endpoint_key": model.endpoint_key, "model_id": model.model_id}
    if endpoint is None:
        out.update(error=_("The endpoint %(key)s is no longer configured.") % {"key": model.endpoint_key},
                   error_kind="endpoint")
        return out
    began = time.monotonic()
    parts: list[str] = []
    try:
        async for event in client.stream_reply(endpoint, messages, max_tokens=max_tokens):
            if isinstance(event, client.Attempt):
                out["attempts"] = event.number
                out["endpoint_key"], out["model_id"] = event.endpoint.key, event.endpoint.model
            elif isinstance(event, client.Delta):
                if not parts:
                    out["ttft_ms"] = int(1000 * (time.monotonic() - began))
                parts.append(event.text)
                out["stream_chunks"] += 1
            elif isinstance(event, client.Usage):
                out["prompt_tokens"], out["completion_tokens"] = event.prompt_tokens, event.completion_tokens
            elif isinstance(event, client.Finish):
                out["finish_reason"] = (event.reason or "")[:20]
    except client.UpstreamError as exc:
        out.update(error=str(exc)[:500], error_kind=exc.kind[:40], content="".join(parts))
    else:
        text = "".join(parts)
        if text.strip():
            out.update(status=MessageStatus.COMPLETE, content=text)
        else:
            out.update(error=_("The model sent an empty answer."), error_kind="empty")
    out["total_ms"] = int(1000 * (time.monotonic() - began))
    return out


async def collect(comparison: Comparison, todo, report, *, offset: int = 0, total: int | None = None,
                  share: int = ANSWER_SHARE) -> dict:
    """Ask every (prompt, model) in `todo`, at most `comparison.concurrency` calls in flight per
    model; store each answer as it arrives (one database thread, one connection, writes in
    order). Returns {"complete": n, "failed": n}."""
    from llm_gateway import client
    from llm_gateway.models import GatewaySettings

    total = total or len(todo)
    loop = asyncio.get_running_loop()
    db = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"compare-{comparison.id}-db")

    def run_db(fn, *args):
        return loop.run_in_executor(db, lambda: fn(*args))

    def prepare():
        config = GatewaySettings.objects.filter(workshop_id=comparison.workshop_id).first()
        from llm_gateway.services import history_for_model

        per_prompt: dict[int, list[dict]] = {}  # a question's history is the same for every model
        system: list[dict] | None = None  # the system prompt alone, for the facilitator's prompts
        histories = {}
        for p, m in todo:
            if p.source_id:
                if p.id not in per_prompt:
                    per_prompt[p.id] = _history(p, m)
                histories[(p.id, m.id)] = per_prompt[p.id]
            else:
                if system is None:
                    system = history_for_model(m.conversation, upto_position=0)
                histories[(p.id, m.id)] = [*system, {"role": "user", "content": p.text}]
        return (config.max_answer_tokens if config else None), histories

    counts = {"complete": 0, "failed": 0}
    pending: list[tuple[ComparisonModel, ComparisonPrompt, dict, asyncio.Future]] = []
    arrived = asyncio.Event()
    finished = 0
    failure: list[BaseException] = []

    async def writer():
        """Group commit: whatever arrived while the last write ran is stored in the next one, so
        every answer is stored as soon as the database thread is free, and the database keeps up
        with many calls in flight."""
        nonlocal finished
        while True:
            await arrived.wait()
            arrived.clear()
            batch, pending[:] = pending[:], []
            if not batch:
                continue
            if failure:
                for *_rest, future in batch:
                    future.set_exception(failure[0])
                continue
            try:
                await run_db(_store_answers, [(m, p, r) for m, p, r, _f in batch])
                for model, prompt, result, future in batch:
                    counts["complete" if result["status"] == MessageStatus.COMPLETE else "failed"] += 1
                finished += len(batch)
                done = offset + finished
                await run_db(report, min(share, int(share * done / max(1, total))),
                             _("%(done)d of %(total)d answers collected") % {"done": done, "total": total})
            except Exception as exc:  # JobLost, the database: the callers raise it, the job stops (and resumes)
                failure.append(exc)
            for *_rest, future in batch:
                if failure:
                    future.set_exception(failure[0])
                else:
                    future.set_result(None)

    writing = None
    try:
        max_tokens, histories = await run_db(prepare)
        gates = defaultdict(lambda: asyncio.Semaphore(comparison.concurrency))
        writing = asyncio.create_task(writer())

        async def one(prompt, model):
            async with gates[model.id]:  # held until the answer is stored: at most `concurrency` unsaved per model
                result = await _ask(model, histories[(prompt.id, model.id)], max_tokens)
                stored = loop.create_future()
                pending.append((model, prompt, result, stored))
                arrived.set()
                await stored

        await asyncio.gather(*(one(p, m) for p, m in todo))
    finally:
        if writing is not None:
            writing.cancel()
        await client.close_client()
        await loop.run_in_executor(db, connections.close_all)
        db.shutdown(wait=True)
    return counts


def run_job(job, report) -> dict:
    """The `compare` job kind: for every comparison of the workshop with work left (comparisons
    started while the job runs included), collect the missing answers, then judge them."""
    from evaluation import judging

    results: dict = {}
    asked: set[tuple[int, int]] = set()  # (prompt, model) asked by this job: a failure waits for the next one
    tried: set[tuple[int, int, int]] = set()  # (judge run, item, axis) judged by this job
    for _pass in range(5):  # a comparison started during a pass is picked up by the next one
        comparisons = list(Comparison.objects.filter(workshop_id=job.workshop_id).select_related("workshop")
                           .prefetch_related("judges").order_by("id"))
        todo = [(c, [(p, m) for p, m in answers_to_collect(c) if (p.id, m.id) not in asked]) for c in comparisons]
        todo = [(c, t) for c, t in todo if t]
        total = sum(len(t) for _c, t in todo)
        if total:
            report(1, _("%(n)d answers to collect") % {"n": total})
        offset = 0
        for comparison, pairs in todo:
            _ensure_questions(comparison, pairs)
            asked.update((p.id, m.id) for p, m in pairs)
            try:
                counts = asyncio.run(collect(comparison, pairs, report, offset=offset, total=total))
            finally:
                close_old_connections()
            results.setdefault(str(comparison.id), {})["answers"] = counts
            offset += len(pairs)
        judge_todo = [(c, run, [p for p in pairs_to_judge(c, run) if (run.id, p[0], p[1]) not in tried])
                      for c in comparisons for run in c.judges.all()]
        judge_todo = [(c, run, p) for c, run, p in judge_todo if p]
        if not total and not judge_todo:
            break
        tried.update((run.id, p[0], p[1]) for _c, run, pairs in judge_todo for p in pairs)
        judge_total = sum(len(p) for _c, _r, p in judge_todo)

        def judged(progress, message="", _base=ANSWER_SHARE):
            report(_base + int((100 - _base) * progress / 100), message)

        offset = 0
        for comparison, run, pairs in judge_todo:
            try:
                asyncio.run(judging.score_run(run, pairs, judged, offset=offset, total=judge_total))
                run_error = ""
            except judging.RunAborted as exc:
                run_error = str(exc)
            finally:
                close_old_connections()
            if run_error:
                JudgeRun.objects.filter(pk=run.pk).update(last_error=run_error[:300])
                results.setdefault(str(comparison.id), {}).setdefault("judge_errors", []).append(run_error)
            offset += len(pairs)
    failed = Message.objects.filter(pk__in=ComparisonAnswer.objects.filter(
        prompt__comparison__workshop_id=job.workshop_id).values("message_id"), status=MessageStatus.FAILED).count()
    report.done_message = (_("Done; %(n)d answers failed at the endpoint (shown as missing): start again to retry them.")
                           % {"n": failed} if failed else _("Every answer is collected and judged."))
    return results


# --- results --------------------------------------------------------------------------------------------


def bootstrap_mean(values: list[float], *, resamples: int = 2000, seed: int = 0) -> tuple[float | None, float | None, float | None]:
    """Mean with a percentile bootstrap 95% interval (none under MIN_ITEMS_FOR_INTERVAL values)."""
    if not values:
        return None, None, None
    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    if len(data) < MIN_ITEMS_FOR_INTERVAL:
        return mean, None, None
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    return mean, float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def job_of(workshop: Workshop):
    from workshops.models import Job

    return Job.objects.filter(workshop=workshop, kind=JOB_KIND).order_by("-created_at", "-id").first()


def comparisons_of(workshop: Workshop):
    return list(Comparison.objects.filter(workshop=workshop).prefetch_related("compared", "judges"))


def status(comparison: Comparison) -> dict:
    prompts = live_prompts(comparison).count()
    models = comparison.compared.count()
    answers = ComparisonAnswer.objects.filter(prompt__in=live_prompts(comparison))
    complete = answers.filter(message__status=MessageStatus.COMPLETE).count()
    failed = answers.filter(message__status=MessageStatus.FAILED).count()
    judge_left = sum(len(pairs_to_judge(comparison, run)) for run in comparison.judges.all())
    return {"prompts": prompts, "models": models, "cells": prompts * models, "complete": complete,
            "failed": failed, "missing": prompts * models - complete, "judge_left": judge_left}


def results(comparison: Comparison, *, resamples: int = 2000) -> dict:
    """Everything the results page shows: per axis, each model's mean judge score (an answer's
    score is the mean of the chosen judges' scores) with a bootstrap 95% interval and the number
    of answers; whether a chosen judge agreed with the participants less than they agree among
    themselves on the axis (unreliable); per prompt, the answers side by side with their scores
    and reasons, and what is missing and why."""
    workshop = comparison.workshop
    models = list(comparison.compared.order_by("position"))
    runs = list(comparison.judges.order_by("id"))
    axes = [row for row in selectors.axes_with_rubrics(workshop) if row["version"] and row["version"].is_complete]
    prompts = list(live_prompts(comparison).order_by("position"))
    answers = {(a.prompt_id, a.model_id): a.message for a in
               ComparisonAnswer.objects.filter(prompt__in=prompts).select_related("message")}
    items = dict(RatingItem.objects.filter(workshop=workshop, message_id__in=[m.id for m in answers.values()])
                 .values_list("message_id", "id"))
    scores: dict[tuple[int, int], list[JudgeScore]] = defaultdict(list)  # (item, axis) -> judges' rows
    for s in JudgeScore.objects.filter(run__in=runs, item_id__in=list(items.values())).select_related("run"):
        scores[(s.item_id, s.axis_id)].append(s)
    agreement = selectors.judge_agreement(workshop, resamples=200) if runs else {"axes": []}
    flags = {}
    for a in agreement["axes"]:
        mine = [j for j in a["judges"] if j["run"].id in {r.id for r in runs}]
        flags[a["axis"].id] = {"flagged": [j["run"].endpoint_key for j in mine if j["flagged"]],
                               "unchecked": [j["run"].endpoint_key for j in mine if j["with_judge"] is None]}
    table = []
    for row in axes:
        axis = row["axis"]
        cells = []
        for model in models:
            values, outcomes = [], defaultdict(int)
            for prompt in prompts:
                message = answers.get((prompt.id, model.id))
                if message is None or message.status != MessageStatus.COMPLETE:
                    outcomes["missing"] += 1
                    continue
                rows = scores.get((items.get(message.id), axis.id), [])
                numbers = [s.score for s in rows if s.outcome == JudgeOutcome.SCORED]
                for s in rows:
                    outcomes[s.outcome] += 1
                if numbers:
                    values.append(sum(numbers) / len(numbers))
            mean, low, high = bootstrap_mean(values, resamples=resamples, seed=axis.id * 1000 + model.position)
            outcomes["unread"] = outcomes["unparseable"] + outcomes["refused"]
            cells.append({"model": model, "mean": mean, "low": low, "high": high, "n": len(values),
                          "outcomes": dict(outcomes)})
        flag = flags.get(axis.id, {"flagged": [], "unchecked": []})
        table.append({"axis": axis, "version": row["version"], "cells": cells, "unreliable": flag["flagged"],
                      "unchecked": flag["unchecked"]})
    per_prompt = []
    for prompt in prompts:
        row = []
        for model in models:
            message = answers.get((prompt.id, model.id))
            judged = []
            if message is not None and message.status == MessageStatus.COMPLETE:
                for a in axes:
                    judged.append({"axis": a["axis"], "scores": scores.get((items.get(message.id), a["axis"].id), [])})
            row.append({"model": model, "message": message, "judged": judged})
        per_prompt.append({"prompt": prompt, "answers": row})
    chart = {"models": [m.endpoint_key for m in models], "axes": [t["axis"].name for t in table],
             "means": [[c["mean"] for c in t["cells"]] for t in table],
             "low": [[c["low"] for c in t["cells"]] for t in table],
             "high": [[c["high"] for c in t["cells"]] for t in table],
             "unreliable": [bool(t["unreliable"]) for t in table]}
    return {"models": models, "runs": runs, "table": table, "prompts": per_prompt, "chart": chart,
            "ab": ab_results(comparison, models, axes)}


# --- blind A/B among the community ------------------------------------------------------------------


def ab_prompts(comparison: Comparison):
    """Prompts whose answers may be shown to participants: the baseline questions and the
    facilitator's own prompts; a participant's question only when the rating settings already
    allow showing participants' conversations to others."""
    prompts = live_prompts(comparison)
    if not selectors.settings_for(comparison.workshop).include_participant_conversations:
        prompts = prompts.exclude(kind=PromptKind.PARTICIPANT)
    return prompts


@transaction.atomic
def ab_open(*, comparison: Comparison, by: Membership) -> int:
    """Put the comparison's answer pairs up for the participants: one pair per prompt and pair of
    models with both answers complete (canonical order: the models' column order). Participants
    are handed them with the other pairs (blinded, a random side per rater). Returns the number
    of pairs up."""
    if not by.is_facilitator:
        raise ValidationError(_("Only facilitators put answers up for the participants."))
    if selectors.settings_for(comparison.workshop).pairs_per_person == 0:
        raise ValidationError(_("Pairwise rating is turned off (answer pairs each participant compares: 0). "
                                "Change it in the rating settings first."))
    models = list(comparison.compared.order_by("position"))
    answers = {(a.prompt_id, a.model_id): a.message for a in ComparisonAnswer.objects.filter(
        prompt__in=ab_prompts(comparison), message__status=MessageStatus.COMPLETE).select_related("message")}
    prompt_ids = sorted({p for p, _m in answers})
    new = []
    for prompt_id in prompt_ids:
        for first, second in combinations(models, 2):
            a, b = answers.get((prompt_id, first.id)), answers.get((prompt_id, second.id))
            if a is not None and b is not None:
                new.append(PairItem(workshop=comparison.workshop, source=PairSource.COMPARISON,
                                    question_id=a.reply_to_id, first=a, second=b))
    if not new:
        raise ValidationError(_("No prompt has complete answers from two models that may be shown to participants."))
    PairItem.objects.bulk_create(new, ignore_conflicts=True)
    if comparison.ab_opened_at is None:
        comparison.ab_opened_at = timezone.now()
        comparison.save(update_fields=["ab_opened_at"])
    return len(new)


def ab_results(comparison: Comparison, models=None, axes=None) -> list[dict]:
    """Per axis (and overall): each model's wins, losses and ties in the participants' blind
    choices between two of the comparison's answers."""
    models = models or list(comparison.compared.order_by("position"))
    model_of = dict(ComparisonAnswer.objects.filter(prompt__comparison=comparison).values_list("message_id", "model_id"))
    if not model_of:
        return []
    ratings = (PairRating.objects.filter(item__source=PairSource.COMPARISON, item__first_id__in=list(model_of),
                                         membership__withdrawn_at__isnull=True)
               .values_list("axis_id", "item__first_id", "item__second_id", "choice"))
    tally: dict = defaultdict(lambda: defaultdict(lambda: {"wins": 0, "losses": 0, "ties": 0}))
    for axis_id, first, second, choice in ratings:
        a, b = model_of.get(first), model_of.get(second)
        if a is None or b is None or choice == "not_applicable":
            continue
        if choice == "tie":
            tally[axis_id][a]["ties"] += 1
            tally[axis_id][b]["ties"] += 1
        else:
            winner, loser = (a, b) if choice == "first" else (b, a)
            tally[axis_id][winner]["wins"] += 1
            tally[axis_id][loser]["losses"] += 1
    if not tally:
        return []
    rows = [{"axis": row["axis"], "counts": [tally[row["axis"].id][m.id] for m in models]}
            for row in (axes or selectors.ratable_axes(comparison.workshop)) if row["axis"].id in tally]
    if None in tally:
        rows.append({"axis": None, "counts": [tally[None][m.id] for m in models]})
    return rows
