"""The exports in the one-download zip are produced in memory bounded by a page or a piece, never
by the workshop: structural checks (what each query reads, how large a piece is), not timings."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from evaluation.exports import common, preferences
from llm_gateway import exports as gateway_exports
from llm_gateway.models import CompareMode, Preference
from tests.evaluation.test_pairs import compare_conversation


def test_jsonl_writes_json_dumps_a_conversation_turn_at_a_time():
    """Byte for byte what json.dumps writes, but a record with a long conversation comes in
    pieces of about the batch size (a record is never one string as long as its conversation)."""
    turn = {"role": "user", "content": "नमस्ते \"quoted\" \u2028 " + "x" * 10_000}
    records = [
        {"prompt": [turn] * 200, "chosen": [{"role": "assistant", "content": "ok"}], "axis_id": None,
         "label": True, "score": 4.5, "nested": {"a": [1, 2]}, "empty": [], "text": "é"},
        {},
        {"only": [1]},
    ]
    pieces = list(common.jsonl(records, batch=64 * 1024))
    assert "".join(pieces) == "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    assert len(pieces) > 20
    assert max(len(p) for p in pieces) < 64 * 1024 + 2 * len(json.dumps(turn, ensure_ascii=False))
    assert preferences.jsonl is common.jsonl


@pytest.mark.django_db
def test_context_cache_holds_a_conversation_once(evaluate):
    """The turns of a conversation are kept once (not once per question: that grows with the
    square of its length), and each question gets the turns up to it."""
    conversation, asked = compare_conversation(evaluate.facilitator, "Q0", ["A0", "B0"], is_baseline=True)
    from llm_gateway.models import Message

    for i in range(1, 30):
        Message.objects.create(conversation=conversation, role="user", content=f"Q{i}", position=10 * i,
                               status="complete")
        Message.objects.create(conversation=conversation, role="assistant", content=f"A{i}",
                               position=10 * i + 1, status="complete")
    questions = list(Message.objects.filter(conversation=conversation, role="user").order_by("position"))
    cache = common.ContextCache()
    got = [cache.turns_for(q) for q in questions]
    assert [t[-1]["content"] for t in got] == [f"Q{i}" for i in range(30)]
    assert [len(t) for t in got] == [2 * i + 1 for i in range(30)]
    assert got[-1][:3] == [{"role": "user", "content": "Q0"}, {"role": "assistant", "content": "A0"},
                           {"role": "user", "content": "Q1"}]
    assert all(a is b for a, b in zip(got[5], got[-1]))  # the same turn objects, not copies
    expected = {m.id: turns for m, turns in common.conversation_turns(conversation.id)}
    assert [expected[q.id] for q in questions] == got


@pytest.mark.django_db
def test_interact_preferences_are_read_page_by_page(evaluate, monkeypatch):
    """The compare-mode CSV reads its preferences (and their candidates) a page at a time."""
    made = []
    for i in range(5):
        conversation, asked = compare_conversation(evaluate.participants[0], f"Q{i}", [f"A{i}", f"B{i}"])
        candidates = list(conversation.messages.filter(is_candidate=True).order_by("slot"))
        made.append(Preference.objects.create(conversation=conversation, question=asked,
                                              membership=evaluate.participants[0], mode=CompareMode.MODELS,
                                              candidates=[m.id for m in candidates], chosen=candidates[1]))
    whole = list(gateway_exports.preference_rows(evaluate.workshop))
    monkeypatch.setattr(gateway_exports, "PAGE", 2)
    with CaptureQueriesContext(connection) as queries:
        paged = list(gateway_exports.preference_rows(evaluate.workshop))
    assert paged == whole and len(paged) == 5
    pages = [q["sql"] for q in queries.captured_queries if 'FROM "llm_gateway_preference"' in q["sql"]]
    assert len(pages) == 4 and all("LIMIT 2" in sql for sql in pages)  # 2 + 2 + 1, then an empty page


def test_interact_messages_keep_one_page_alive(evaluate, monkeypatch):
    """The messages CSV lets a page go before it reads the next: two pages alive at once made its
    heap grow with the workshop up to twice the page (2.2 → 3.2 MB in benchmarks/evaluation_export)."""
    import builtins
    import gc

    from llm_gateway.models import Message

    conversation, _asked = compare_conversation(evaluate.participants[0], "Q", ["A", "B"])
    for i in range(6):
        Message.objects.create(conversation=conversation, role="user", position=100 + i, content=f"more {i}")
    alive_before_each_page: list[int] = []

    def counting_list(iterable=()):
        gc.collect()
        alive_before_each_page.append(sum(1 for o in gc.get_objects() if isinstance(o, Message)))
        return builtins.list(iterable)

    whole = list(gateway_exports.message_rows(evaluate.workshop))
    gc.collect()
    baseline = sum(1 for o in gc.get_objects() if isinstance(o, Message))
    monkeypatch.setattr(gateway_exports, "PAGE", 3)
    monkeypatch.setattr(gateway_exports, "list", counting_list, raising=False)
    paged = [row for row in gateway_exports.message_rows(evaluate.workshop)]
    assert paged == whole and len(alive_before_each_page) >= 3
    # Before each page is read, at most the last row's message of the page before is still held.
    assert max(alive_before_each_page) - baseline <= 1, alive_before_each_page
