"""Preference data for alignment, in the conversational format of Hugging Face TRL:

- DPO-style (`preferences-dpo.jsonl`): {prompt, chosen, rejected} — `prompt` the conversation up
  to the question (list of {role, content}), `chosen` / `rejected` one assistant message each.
  From compare-mode preferences in Interact (the chosen candidate against each one not chosen;
  `axis_id` null: an overall preference) and from pairwise ratings in Evaluate (first or second
  preferred on an axis, or overall with `axis_id` null; ties and "does not apply" give no row).
- KTO-style (`preferences-kto.jsonl`): {prompt, completion, label} from participants' per-axis
  ratings: above the scale's midpoint (4, 5) is `true`, below (1, 2) is `false`; 3 and "does not
  apply" give no row.

Withdrawn members' choices, and answers from their conversations, are left out."""

from __future__ import annotations

from collections.abc import Iterator

from evaluation import selectors
from evaluation.exports import common
from evaluation.models import PairChoice
from llm_gateway.models import Message, Preference
from workshops.models import Workshop

MIDPOINT = 3

DPO_FIELDS = [
    ("prompt", "the conversation up to the question: list of {role, content}"),
    ("chosen", "the preferred answer: [{role: assistant, content}]"),
    ("rejected", "the other answer: [{role: assistant, content}]"),
    ("source", "'compare_preference' (Interact compare mode) or 'pair_rating' (Evaluate pairwise rating)"),
    ("axis_id", "the axis the choice was made on; null for an overall preference"),
    ("rubric_id", "the axis' rubric (null for overall)"),
    ("rubric_version", "the rubric version shown to the rater (null for overall)"),
    ("workshop", "workshop slug"),
    ("record_id", "'pref-<preference id>' or 'pair-<pair id>-<axis id|overall>-<participant>'"),
    ("participant", "pseudonym of the person who chose"),
    ("question_message_id", "id of the question message"),
    ("conversation_id", "id of the question's conversation"),
    ("chosen_message_id", "message id of the chosen answer"),
    ("rejected_message_id", "message id of the rejected answer"),
    ("chosen_model", "registry key of the endpoint that wrote the chosen answer"),
    ("rejected_model", "registry key of the endpoint that wrote the rejected answer"),
    ("decided_at", "when the choice was made (ISO 8601)"),
]

KTO_FIELDS = [
    ("prompt", "the conversation up to the question: list of {role, content}"),
    ("completion", "the answer: [{role: assistant, content}]"),
    ("label", "true: rated 4 or 5 on the axis; false: rated 1 or 2"),
    ("score", "the participant's rating (1-5)"),
    ("axis_id", "the axis rated on"),
    ("rubric_id", "the axis' rubric"),
    ("rubric_version", "the rubric version the rating was given under"),
    ("workshop", "workshop slug"),
    ("record_id", "'rating-<rating id>'"),
    ("participant", "pseudonym of the rater"),
    ("item_id", "the rated answer's item in the rating pool"),
    ("message_id", "message id of the answer"),
    ("question_message_id", "id of the question message (null when none)"),
    ("conversation_id", "id of the answer's conversation"),
    ("model", "registry key of the endpoint that wrote the answer"),
    ("rated_at", "when the rating was last saved (ISO 8601)"),
]


def _assistant(message: Message) -> list[dict]:
    return [{"role": "assistant", "content": message.content}]


def _dpo(workshop, *, source, record_id, prompt, chosen, rejected, participant, question_id, axis_id=None,
         rubric_id=None, rubric_version=None, decided_at=None) -> dict:
    return {"prompt": prompt, "chosen": _assistant(chosen), "rejected": _assistant(rejected), "source": source,
            "axis_id": axis_id, "rubric_id": rubric_id, "rubric_version": rubric_version, "workshop": workshop.slug,
            "record_id": record_id, "participant": participant, "question_message_id": question_id,
            "conversation_id": chosen.conversation_id, "chosen_message_id": chosen.id,
            "rejected_message_id": rejected.id, "chosen_model": chosen.endpoint_key,
            "rejected_model": rejected.endpoint_key, "decided_at": decided_at.isoformat() if decided_at else None}


def dpo_records(workshop: Workshop) -> Iterator[dict]:
    cache = common.ContextCache()
    prefs = (Preference.objects.filter(conversation__in=common.research_conversations(workshop),
                                       membership__withdrawn_at__isnull=True, chosen__isnull=False)
             .select_related("membership", "question", "chosen").order_by("conversation_id", "id"))
    for p in prefs.iterator(chunk_size=common.PAGE):
        others = Message.objects.filter(id__in=[i for i in p.candidates if i != p.chosen_id]).order_by("slot", "id")
        prompt = cache.turns_for(p.question)
        for other in others:
            if not other.content:
                continue
            yield _dpo(workshop, source="compare_preference", record_id=f"pref-{p.id}", prompt=prompt,
                       chosen=p.chosen, rejected=other, participant=p.membership.pseudonym,
                       question_id=p.question_id, decided_at=p.decided_at)
    ratings = (selectors.pair_ratings_for_export(workshop)
               .filter(choice__in=[PairChoice.FIRST, PairChoice.SECOND],
                       item__first__conversation__owner__withdrawn_at__isnull=True,
                       item__second__conversation__owner__withdrawn_at__isnull=True)
               .order_by("item__first__conversation_id", "item_id", "axis_id", "membership__pseudonym"))
    for r in ratings.iterator(chunk_size=common.PAGE):
        item = r.item
        chosen, rejected = (item.first, item.second) if r.choice == PairChoice.FIRST else (item.second, item.first)
        question = item.question or selectors.question_of(item.first)
        version = r.rubric_version
        yield _dpo(workshop, source="pair_rating",
                   record_id=f"pair-{item.id}-{r.axis_id or 'overall'}-{r.membership.pseudonym}",
                   prompt=cache.turns_for(question), chosen=chosen, rejected=rejected,
                   participant=r.membership.pseudonym, question_id=question.id if question else None,
                   axis_id=r.axis_id, rubric_id=version.rubric_id if version else None,
                   rubric_version=version.number if version else None, decided_at=r.updated_at)


def kto_records(workshop: Workshop) -> Iterator[dict]:
    cache = common.ContextCache()
    ratings = (selectors.ratings_for_export(workshop)
               .filter(score__isnull=False, item__message__conversation__owner__withdrawn_at__isnull=True)
               .exclude(score=MIDPOINT)
               .order_by("item__message__conversation_id", "item_id", "axis_id", "membership__pseudonym"))
    for r in ratings.iterator(chunk_size=common.PAGE):
        message = r.item.message
        question = selectors.question_of(message)
        yield {"prompt": cache.turns_for(question), "completion": _assistant(message), "label": r.score > MIDPOINT,
               "score": r.score, "axis_id": r.axis_id, "rubric_id": r.rubric_version.rubric_id,
               "rubric_version": r.rubric_version.number, "workshop": workshop.slug, "record_id": f"rating-{r.id}",
               "participant": r.membership.pseudonym, "item_id": r.item_id, "message_id": message.id,
               "question_message_id": question.id if question else None, "conversation_id": message.conversation_id,
               "model": message.endpoint_key, "rated_at": r.updated_at.isoformat()}


jsonl = common.jsonl  # one record per line, a long conversation in pieces
