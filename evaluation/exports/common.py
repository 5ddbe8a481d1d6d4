"""What every Evaluate II export reads: the workshop's prompts (the questions people actually asked,
with the conversation up to the question), the axes with their current rubric, and the hooks the
model comparison will fill.

Constant memory: prompts are read one conversation at a time; nothing holds the whole workshop.
Pseudonyms only; withdrawn members' conversations and ratings are left out; facilitators'
sandboxes never appear."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.db.models import Q

from evaluation import selectors
from llm_gateway.models import Conversation, Message, MessageRole, MessageStatus, Preference
from workshops.models import Role, Workshop

SCALE_POINTS = ("1", "2", "3", "4", "5")
# Rows read from a server-side cursor per round trip. Export rows carry whole messages (question,
# answer, both answers of a pair), so a page is what an export holds at once.
PAGE = 100


@dataclass
class Prompt:
    """One question from the workshop, with what came before it in its conversation."""

    message_id: int
    conversation_id: int
    is_baseline: bool
    messages: list[dict] = field(default_factory=list)  # [{"role", "content"}, ...] ending with the question

    @property
    def prompt_id(self) -> str:
        return f"m{self.message_id}"

    @property
    def question(self) -> str:
        return self.messages[-1]["content"]


@dataclass
class AxisRubric:
    axis_id: int
    axis_name: str
    rubric_id: int
    version: int
    definition: str
    scale: dict
    should: list
    should_not: list
    drafted: list
    complete: bool

    @property
    def provenance(self) -> str:
        return f"axis {self.axis_id}, rubric {self.rubric_id} version {self.version}"

    def grading_text(self) -> str:
        """The rubric as plain grading instructions (Inspect, promptfoo)."""
        lines = [f"Axis: {self.axis_name}", f"Definition: {self.definition or '(none written)'}",
                 "Scale (1 = lowest, 5 = highest):"]
        lines += [f"  {p}: {self.scale.get(p, '')}" for p in SCALE_POINTS]
        if self.should:
            lines.append("A good answer should:")
            lines += [f"  - {s}" for s in self.should]
        if self.should_not:
            lines.append("A good answer should not:")
            lines += [f"  - {s}" for s in self.should_not]
        return "\n".join(lines)


def rubrics(workshop: Workshop, *, complete_only: bool = False) -> list[AxisRubric]:
    """Every final axis with its rubric's current version (axes without a rubric are left out)."""
    out = []
    for row in selectors.axes_with_rubrics(workshop):
        v = row["version"]
        if v is None or (complete_only and not v.is_complete):
            continue
        out.append(AxisRubric(
            axis_id=row["axis"].id, axis_name=v.name, rubric_id=v.rubric_id, version=v.number,
            definition=v.definition, scale={p: str(v.scale.get(p, "")) for p in SCALE_POINTS},
            should=[str(s) for s in v.should], should_not=[str(s) for s in v.should_not],
            drafted=list(v.drafted), complete=v.is_complete))
    return out


def research_conversations(workshop: Workshop):
    """Conversations whose questions may leave the workshop: the shared baseline ones first, then
    participants' own — never a sandbox, never a withdrawn member's."""
    return (Conversation.objects.filter(workshop=workshop, owner__withdrawn_at__isnull=True)
            .filter(Q(is_baseline=True) | Q(is_sandbox=False, owner__role=Role.PARTICIPANT))
            .order_by("-is_baseline", "id"))


def _visible(messages: list[Message], chosen: dict[int, int | None]) -> list[Message]:
    """The conversation as it reads: finished, not superseded; of several candidate answers the
    one the participant chose (the first column when nobody chose)."""
    out = []
    for m in messages:
        if m.superseded_by_id or m.status != MessageStatus.COMPLETE or not m.content:
            continue
        if m.role == MessageRole.ASSISTANT and m.is_candidate:
            wanted = chosen.get(m.reply_to_id)
            if (wanted is not None and m.id != wanted) or (wanted is None and m.slot != 0):
                continue
        out.append(m)
    return out


def _conversation(conversation_id: int) -> tuple[list[Message], list[dict]]:
    """One conversation as it reads: its visible user and assistant messages and their turns
    ({role, content}), in order (one conversation's messages in memory, nothing more)."""
    messages = list(Message.objects.filter(conversation_id=conversation_id)
                    .only("id", "role", "content", "status", "superseded_by_id", "is_candidate", "slot",
                          "reply_to_id", "position")
                    .order_by("position", "id"))
    chosen = dict(Preference.objects.filter(conversation_id=conversation_id).values_list("question_id", "chosen_id"))
    kept = [m for m in _visible(messages, chosen) if m.role in (MessageRole.USER, MessageRole.ASSISTANT)]
    return kept, [{"role": m.role, "content": m.content} for m in kept]


def conversation_turns(conversation_id: int) -> Iterator[tuple[Message, list[dict]]]:
    """Each user message of one conversation with the turns up to and including it (each list
    made when it is asked for: a long conversation is not held once per question)."""
    kept, turns = _conversation(conversation_id)
    for i, m in enumerate(kept):
        if m.role == MessageRole.USER:
            yield m, turns[: i + 1]


def prompts(workshop: Workshop) -> Iterator[Prompt]:
    """The workshop's prompt set: every question asked (baseline first), multi-turn context kept
    up to the question; a question asked with the very same context twice appears once."""
    seen: set[bytes] = set()
    for conv_id, is_baseline in research_conversations(workshop).values_list("id", "is_baseline").iterator():
        for message, turns in conversation_turns(conv_id):
            digest = _digest(turns)
            if digest in seen:
                continue
            seen.add(digest)
            yield Prompt(message_id=message.id, conversation_id=conv_id, is_baseline=is_baseline, messages=turns)


def _digest(turns: list[dict]) -> bytes:
    """blake2b of json.dumps(turns, ensure_ascii=False), hashed a turn at a time."""
    h = hashlib.blake2b(digest_size=16)
    h.update(b"[")
    for i, turn in enumerate(turns):
        h.update(((", " if i else "") + _dumps(turn)).encode())
    h.update(b"]")
    return h.digest()


class ContextCache:
    """The turns up to a given question, reading each conversation once while rows come grouped
    by conversation (a small cache: at most `size` conversations, each held once — its turns and
    where each question is in them — however many questions it has)."""

    def __init__(self, size: int = 8):
        self.size = size
        self._cache: dict[int, tuple[list[dict], dict[int, int]]] = {}

    def turns_for(self, question: Message | None) -> list[dict]:
        if question is None:
            return []
        conv = question.conversation_id
        if conv not in self._cache:
            if len(self._cache) >= self.size:
                self._cache.pop(next(iter(self._cache)))
            kept, turns = _conversation(conv)
            self._cache[conv] = (turns, {m.id: i for i, m in enumerate(kept) if m.role == MessageRole.USER})
        turns, where = self._cache[conv]
        i = where.get(question.id)
        return turns[: i + 1] if i is not None else [{"role": "user", "content": question.content}]


def jsonl(records: Iterable[dict], batch: int = 64 * 1024) -> Iterator[str]:
    """One JSON object per line, exactly as json.dumps(record, ensure_ascii=False) writes it, but a
    list value (a conversation: `prompt`, `input`) is encoded an element at a time and handed on
    in pieces of about `batch` characters: a record with a long conversation is never one string."""
    for record in records:
        parts: list[str] = ["{"]
        size = 0
        for n, (key, value) in enumerate(record.items()):
            parts.append(("{}: " if n == 0 else ", {}: ").format(_dumps(key)))
            if isinstance(value, list) and value:
                parts.append("[")
                for k, element in enumerate(value):
                    text = _dumps(element)
                    parts.append(text if k == 0 else ", " + text)
                    size += len(text)
                    if size >= batch:
                        yield "".join(parts)
                        parts, size = [], 0
                parts.append("]")
            else:
                text = _dumps(value)
                parts.append(text)
                size += len(text)
        parts.append("}\n")
        yield "".join(parts)


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


# --- hooks for the model comparison (Evaluate II, section 1) --------------------------------------
#
# The model comparison is built beside this package (evaluation/comparison*.py). Where its results
# belong in an export, these hooks are called; they return nothing until the comparison fills them.


def comparison_reference_rows(workshop: Workshop) -> Iterable[dict]:
    """Judge scores of the answers a model comparison collected, as reference-set records (the
    keys of `reference.REFERENCE_COLUMNS`, `rater_kind` "comparison_judge"). Empty for now."""
    return ()


def comparison_files(workshop: Workshop) -> list[dict]:
    """Extra files for the one-download zip: dicts with `name` (path inside the zip), `chunks`
    (an iterable of str/bytes), `description` and `columns` (list of (name, meaning)). Empty for now."""
    return []
