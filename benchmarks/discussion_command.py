"""Benchmark: what one board command costs inside its thread, statement by statement.

Runs the board socket's command (`discussion.consumers._run_acked`, what the consumer's
thread runs for a card edit) in this process against the configured Postgres and Redis, on a
seeded workshop, and prints the command's median, on Postgres for both of the edit's writes
(discussion/services/cards.py `_write_edit`: the one statement and the portable ORM write,
interleaved in blocks in the same run), each beside:
- the time inside each SQL statement (Django's execute wrapper: the round trip and the
  driver, without the ORM's compiling), the member's budget in Redis, the card's HTML;
- the floor of one database round trip (a bare `SELECT 1` through Django's cursor) and what
  the ORM adds to one statement (the membership load with its workshop and session, its
  compiling alone, the membership alone).
The hand-off of the board event to the server's loop is left out (in a server it is queued on
the loop; here there is none). Use it to see whether a change to the card-edit path saves
round trips or Python; the fan-out through a real server is benchmarks/discussion_fanout.py.

  CALMA_TESTING=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/calma_bench \
  REDIS_URL=redis://127.0.0.1:6379/4 .venv/bin/python -m benchmarks.discussion_command [--edits 600]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import time

from benchmarks.discussion_common import make_workshop, setup_django


def _median_ms(fn, n: int) -> float:
    for _ in range(min(200, n)):
        fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edits", type=int, default=600)
    args = parser.parse_args()
    os.environ["DISCUSSION_MEMBER_RATE"] = "1000000/m"  # every edit of the run is counted, none refused
    setup_django()
    from django.db import connection

    from discussion import commands, consumers, render
    from discussion.services import cards
    from discussion.models import Axis
    from llm_gateway import limits
    from workshops import events as workshop_events
    from workshops.models import Membership

    workshop, facilitator, members = make_workshop("cmd", 1)
    commands.run_facilitator("segment", workshop=workshop, by=facilitator, data={"segment": 4})
    member = members[0]
    reply = consumers._run_acked(workshop.pk, member.pk, "bench", "card.create", {"name": "Cultural respect", "ref": "r"})
    card = Axis.objects.get(pk=reply["payload"]["id"])
    state = {"version": card.version, "n": 0}

    spent: dict[str, float] = collections.defaultdict(float)

    def timed(name, fn):
        def wrapper(*a, **kw):
            start = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent[name] += time.perf_counter() - start
        return wrapper

    def statement(execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            words = sql.split()
            if words[0] == "WITH":
                table = "(the edit's one statement)"
            else:
                table = sql.split('"')[1] if '"' in sql else words[1 if words[0] == "UPDATE" else -1]
            spent[f"SQL {words[0]} {table}"] += time.perf_counter() - start

    workshop_events.deliver = lambda *a, **kw: None  # the server's loop's work, not the thread's
    limits.hit = timed("Redis: the member's budget", limits.hit)
    render.card_text_html = timed("the card's HTML", render.card_text_html)

    def edit():
        state["n"] += 1
        reply = consumers._run_acked(workshop.pk, member.pk, "bench", "card.update", {
            "id": card.pk, "name": f"Cultural respect {state['n']}", "definition": "", "version": state["version"]})
        state["version"] = reply["payload"]["version"]

    # The card edit's two writes (discussion/services/cards.py, _write_edit): on Postgres both
    # are measured, interleaved in blocks, so a change of the machine's load hits both alike.
    paths = {"sql": True, "orm": False} if connection.vendor == "postgresql" else {"orm": False}
    blocks = 4
    times: dict[str, list[float]] = {path: [] for path in paths}
    per_path: dict[str, dict[str, float]] = {path: collections.defaultdict(float) for path in paths}
    counted = dict.fromkeys(paths, 0)
    with connection.execute_wrapper(statement):
        for path, fast in paths.items():  # warm-up of each path
            cards.FAST_WRITE = fast
            for _ in range(50):
                edit()
        for _ in range(blocks):
            for path, fast in paths.items():
                cards.FAST_WRITE = fast
                spent.clear()
                for _ in range(args.edits // blocks):
                    start = time.perf_counter()
                    edit()
                    times[path].append((time.perf_counter() - start) * 1000)
                counted[path] += args.edits // blocks
                for name, total in spent.items():
                    per_path[path][name] += total
    cards.FAST_WRITE = True
    rows = []
    for path in paths:
        label = {"sql": "one statement (Postgres)", "orm": "the ORM write"}[path]
        rows.append((f"a card edit, {label}: the command's thread", statistics.median(times[path])))
        rows += [(f"  {name}", total / counted[path] * 1000)
                 for name, total in sorted(per_path[path].items(), key=lambda kv: -kv[1])]
    query = Membership.objects.select_related("workshop", "workshop__discussion").filter(pk=member.pk)
    rows += [
        ("floor: one round trip (SELECT 1)", _median_ms(lambda: connection.cursor().execute("SELECT 1"), 2000)),
        ("membership + workshop + session (ORM)", _median_ms(lambda: query.get(), 2000)),
        ("  its compiling alone", _median_ms(lambda: query.query.get_compiler("default").as_sql(), 2000)),
        ("membership alone (ORM)", _median_ms(lambda: Membership.objects.get(pk=member.pk), 2000)),
    ]
    print(f"load: {os.getloadavg()[0]:.2f}")
    for name, ms in rows:
        print(f"{name:60s} {ms:7.3f} ms")


if __name__ == "__main__":
    main()
