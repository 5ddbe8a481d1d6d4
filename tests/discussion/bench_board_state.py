"""Board state at the card cap: queries and time of GET state.json (a measurement, not a test:
the file name keeps it out of the suite). Run with the test environment:

  pytest tests/discussion/bench_board_state.py -s -q

It prints the query count and the median of 7 requests for 30 and 300 cards, each card with a
source, an example and a comment.
"""

import statistics
import time

import pytest
from django.db import connection

from tests.discussion.test_flood import _board, _fill


@pytest.mark.django_db
def test_measure_board_state(client_for):
    d = _board()
    client = client_for(d.people[1])
    url = f"/w/{d.workshop.slug}/discuss/state.json"
    have = 0
    for cards in (30, 300):
        _fill(d, cards - have)
        have = cards
        client.get(url)  # warm
        queries = []
        with connection.execute_wrapper(lambda execute, sql, *a: queries.append(sql) or execute(sql, *a)):
            assert client.get(url).status_code == 200
        times = []
        for _ in range(7):
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        print(f"\n{cards} cards: {len(queries)} queries per request, median {statistics.median(times):.1f} ms, "
              f"{len(response.content) // 1024} KiB")
