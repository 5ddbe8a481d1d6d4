"""Run the periodic work of CELERY_BEAT_SCHEDULE in this process, on the same intervals.

The embedded mode (`make run`: SQLite, no broker, tasks inline) has no Celery beat; this
command is its beat, started by scripts/run_local.sh next to the web server. Production runs
`celery -A calma beat` (docker-compose.yml) on the same schedule definition.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

log = logging.getLogger("calma.periodic")


def interval_seconds(schedule) -> float:
    """Seconds between runs of a beat entry (a number, a timedelta or celery's `schedule`)."""
    if isinstance(schedule, (int, float)):
        return float(schedule)
    if isinstance(schedule, timedelta):
        return schedule.total_seconds()
    run_every = getattr(schedule, "run_every", None)
    if isinstance(run_every, timedelta):
        return run_every.total_seconds()
    raise CommandError(f"run_periodic only runs interval schedules, not {schedule!r}")


class Command(BaseCommand):
    help = "Run the beat schedule (CELERY_BEAT_SCHEDULE) in-process, for the embedded mode without a broker."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="run every entry once, then exit")

    def handle(self, *args, once: bool = False, **options):
        from calma.celery import app

        app.loader.import_default_modules()  # registers every app's tasks
        entries = []
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
            task = app.tasks.get(entry["task"])
            if task is None:
                raise CommandError(f"beat entry {name!r}: no task {entry['task']!r}")
            entries.append((name, task, interval_seconds(entry["schedule"]), tuple(entry.get("args", ())),
                            dict(entry.get("kwargs", {}))))
        stop = threading.Event()
        if not once and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
        self.stdout.write("Periodic work: " + ", ".join(f"{n} every {s:g} s" for n, _t, s, _a, _k in entries))
        due = {name: time.monotonic() for name, *_ in entries}  # like beat: each entry runs once at start
        while not stop.is_set():
            now = time.monotonic()
            for name, task, every, task_args, task_kwargs in entries:
                if due[name] > now:
                    continue
                due[name] = now + every
                if not once:  # a long-lived process: drop connections the database closed (like a worker)
                    close_old_connections()
                outcome = task.apply(args=task_args, kwargs=task_kwargs)  # in this process, like a worker
                if outcome.failed():
                    log.error("periodic %s failed: %s", name, outcome.traceback)
                else:
                    log.debug("periodic %s: %s", name, outcome.result)
            if once:
                break
            stop.wait(max(0.05, min(due.values()) - time.monotonic()))
