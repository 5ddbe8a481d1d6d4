"""Benchmark: the one-download zip of every export of a workshop (Evaluate II).

A workshop with 30 participants, 600 messages (300 questions and their answers in baseline and
participants' conversations), 3,000 coding annotations, two axes with rubrics, every answer rated
by 3 participants on both axes, a judge's score per (answer, axis), pairwise choices and
compare-mode preferences. The zip is produced by the real view (every registered export
included) and read to its end, as a client would. Reported: wall time, zip size, and the Python
heap peak (tracemalloc, in a second pass: it slows Python) at two sizes (--scale 1 and a larger
one) to show that memory does not grow with the data.

  DATABASE_URL=postgres://.../calma_x REDIS_URL=redis://.../n \\
    .venv/bin/python -m benchmarks.evaluation_export [--scale 1] [--big 4] [--per-member]

--per-member also reports each file of the zip on its own: the heap peak while its content is
produced and read to its end (for a registered export, its view is called inside the measurement
too). Each member is produced once untraced first, so that one-off costs (imports such as scipy
for the data statement's agreement figures, template compilation, translation catalogues) are not
counted as data.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
import uuid

from benchmarks.gateway_common import setup_django


def build(scale: int):
    """30 participants; 600×scale messages; 3,000×scale annotations; ratings, judge scores,
    pairwise choices and preferences in proportion."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.utils import timezone

    from coding.models import Annotation, AnnotationCode, Code
    from discussion.models import Axis
    from evaluation.models import (
        JudgeRun,
        JudgeScore,
        PairItem,
        PairRating,
        Rating,
        RatingItem,
        Rubric,
        RubricVersion,
    )
    from llm_gateway.models import CompareMode, Conversation, Message, Preference
    from workshops import services

    User = get_user_model()
    tag = uuid.uuid4().hex[:8]
    user = User.objects.create(username=f"exb-{tag}")
    user.user_permissions.add(Permission.objects.get(codename="add_workshop"))
    workshop = services.workshop_create(title="Export benchmark", slug=f"exb-{tag}", created_by=user,
                                        deployment_context="History assistant for students in India.",
                                        system_prompt="You are a careful history tutor.")
    facilitator = workshop.memberships.get()
    people = [services.membership_add(workshop=workshop, user=User.objects.create(username=f"exb-{tag}-{i}"),
                                      role="participant", display_name=f"p{i}") for i in range(30)]
    now = timezone.now()
    Membership = type(people[0])
    Membership.objects.filter(pk__in=[p.pk for p in people]).update(consented_at=now)
    scale_text = {str(p): f"What a {p} looks like on this axis, in a sentence or two." for p in range(1, 6)}
    versions = []
    for name in ("Balance", "Accuracy"):
        axis = Axis.objects.create(workshop=workshop, name=name, definition=f"{name} of the answer")
        rubric = Rubric.objects.create(workshop=workshop, axis=axis)
        versions.append(RubricVersion.objects.create(rubric=rubric, number=1, name=name, definition=name,
                                                     scale=scale_text, should=[f"{name} is visible"],
                                                     should_not=[f"{name} is ignored"]))
    # 600×scale messages: 300×scale question/answer pairs, 10×scale per conversation; the first
    # tenth are baseline conversations, the rest participants' own.
    pairs_total = 300 * scale
    answer = "The Mughal Empire was founded in 1526 by Babur after the first battle of Panipat. " * 4
    conversations = []
    for c in range(pairs_total // 10):
        owner = facilitator if c < pairs_total // 100 else people[c % 30]
        conversations.append(Conversation(workshop=workshop, owner=owner, endpoint_key="bench",
                                          is_baseline=owner == facilitator, is_sandbox=owner == facilitator))
    Conversation.objects.bulk_create(conversations)
    messages = []
    for c, conv in enumerate(conversations):
        for t in range(10):
            messages.append(Message(conversation=conv, role="user", position=2 * t,
                                    content=f"Question {c}.{t}: why did the Mughal empire decline?"))
            messages.append(Message(conversation=conv, role="assistant", position=2 * t + 1, content=answer,
                                    endpoint_key="bench"))
    Message.objects.bulk_create(messages, batch_size=1000)
    answers = [m for m in messages if m.role == "assistant"]
    for q, a in zip(messages[0::2], answers):
        a.reply_to_id = q.id
    Message.objects.bulk_update(answers, ["reply_to"], batch_size=1000)
    # 3,000×scale annotations: 10 per participant answer, by its owner's neighbour, one code each
    codes = Code.objects.bulk_create([Code(workshop=workshop, membership=p, text=f"code {i}", normalized=f"code {i}")
                                      for p in people for i in range(5)])
    by_person: dict[int, list] = {}
    for code in codes:
        by_person.setdefault(code.membership_id, []).append(code)
    annotations, links = [], []
    targets = answers[: 300 * scale]
    for i in range(3000 * scale):
        person = people[i % 30]
        start = 4 + 25 * (i // len(targets))  # at most 10 spans per answer, each its own place
        annotations.append(Annotation(membership=person, message=targets[i % len(targets)], start=start,
                                      end=start + 20, excerpt=answer[start:start + 20]))
    Annotation.objects.bulk_create(annotations, batch_size=1000)
    for i, ann in enumerate(annotations):
        links.append(AnnotationCode(annotation=ann, code=by_person[ann.membership_id][i % 5]))
    AnnotationCode.objects.bulk_create(links, batch_size=1000)
    # ratings: every answer rated by 3 participants on both axes; a judge score per (answer, axis)
    items = RatingItem.objects.bulk_create([RatingItem(workshop=workshop, message=a) for a in answers])
    ratings = [Rating(item=item, membership=people[(k + r) % 30], axis_id=v.rubric.axis_id, rubric_version=v,
                      score=1 + (k + r) % 5)
               for k, item in enumerate(items) for r in range(3) for v in versions]
    Rating.objects.bulk_create(ratings, batch_size=2000)
    run = JudgeRun.objects.create(workshop=workshop, endpoint_key="bench-judge", model_id="judge")
    JudgeScore.objects.bulk_create([JudgeScore(run=run, item=item, axis_id=v.rubric.axis_id, rubric_version=v,
                                               outcome="scored", score=1 + k % 5, reason="Judged from the rubric.")
                                    for k, item in enumerate(items) for v in versions], batch_size=2000)
    # compare mode: 30×scale questions with two candidates, a preference and a pair rated by 3 people
    compare = Conversation.objects.create(workshop=workshop, owner=facilitator, endpoint_key="bench",
                                          is_baseline=True, is_sandbox=True, compare_mode=CompareMode.MODELS)
    prefs, pair_ratings = [], []
    for i in range(30 * scale):
        q = Message.objects.create(conversation=compare, role="user", position=3 * i, content=f"Compare {i}?")
        first = Message.objects.create(conversation=compare, role="assistant", position=3 * i + 1, content=answer,
                                       reply_to=q, is_candidate=True, slot=0, endpoint_key="a")
        second = Message.objects.create(conversation=compare, role="assistant", position=3 * i + 2,
                                        content=answer[::-1], reply_to=q, is_candidate=True, slot=1, endpoint_key="b")
        prefs.append(Preference(conversation=compare, question=q, membership=facilitator, mode=CompareMode.MODELS,
                                candidates=[first.id, second.id], chosen=second, decided_at=now))
        pair = PairItem.objects.create(workshop=workshop, question=q, first=first, second=second)
        for r in range(3):
            for v in versions:
                pair_ratings.append(PairRating(item=pair, membership=people[(i + r) % 30], axis_id=v.rubric.axis_id,
                                               rubric_version=v, choice=("first", "second", "tie")[r]))
    Preference.objects.bulk_create(prefs)
    PairRating.objects.bulk_create(pair_ratings, batch_size=2000)
    return workshop, facilitator


def download(workshop, facilitator) -> int:
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(facilitator.user)
    response = client.get(reverse("evaluation:export_bundle", args=[workshop.slug]))
    assert response.status_code == 200, response.status_code
    return sum(len(chunk) for chunk in response.streaming_content)


def members(workshop, facilitator):
    """The zip's members in the order the bundle writes them (README aside)."""
    from django.test import RequestFactory

    from evaluation.exports import bundle, common

    request = RequestFactory().get("/")
    request.user = facilitator.user
    yield from bundle.own_members(workshop)
    yield from (bundle.Member(f["name"], f["description"], f["chunks"]) for f in common.comparison_files(workshop))
    yield from bundle.registered_members(request, workshop)


def per_member(workshop, facilitator) -> dict[str, tuple[int, int]]:
    """{member name: (heap peak, bytes)}, each member's peak measured on its own."""
    for member in members(workshop, facilitator):  # warm-up: imports, templates, catalogues
        for _chunk in member.chunks:
            pass
    out = {}
    iterator = members(workshop, facilitator)
    while True:
        tracemalloc.start()
        try:
            member = next(iterator, None)  # a registered export's view runs here
            if member is None:
                break
            size = 0
            for chunk in member.chunks:
                size += len(chunk)
            out[member.name.replace(workshop.slug, "<slug>")] = (tracemalloc.get_traced_memory()[1], size)
        finally:
            tracemalloc.stop()
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--big", type=int, default=4)
    parser.add_argument("--per-member", action="store_true", help="also the heap peak of each file of the zip")
    args = parser.parse_args(argv)
    setup_django([])
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["*"]
    from benchmarks.gateway_common import load

    rows, by_member = [], []
    for scale in (args.scale, args.big):
        workshop, facilitator = build(scale)
        started = time.perf_counter()
        size = download(workshop, facilitator)
        elapsed = time.perf_counter() - started
        tracemalloc.start()
        download(workshop, facilitator)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows.append((scale, elapsed, size, peak))
        if args.per_member:
            by_member.append(per_member(workshop, facilitator))
    print(f"{'scale':>5} {'messages':>8} {'annotations':>11} {'ratings':>7} {'seconds':>8} {'zip':>8} {'heap peak':>10}")
    for scale, elapsed, size, peak in rows:
        print(f"{scale:>5} {600 * scale:>8} {3000 * scale:>11} {1800 * scale:>7} {elapsed:>8.2f} "
              f"{size / 1e6:>6.2f}MB {peak / 1e6:>8.2f}MB")
    if by_member:
        small, big = by_member
        print(f"\nheap peak per member (scale {args.scale} -> {args.big}; size uncompressed)")
        for name in small:
            (p1, s1), (p2, s2) = small[name], big.get(name, (0, 0))
            print(f"  {name[:52]:<52} {p1 / 1e6:>7.2f}MB -> {p2 / 1e6:>7.2f}MB  ({s1 / 1e6:.2f} -> {s2 / 1e6:.2f} MB)")
    print(load())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
