"""End answers left pending/streaming by a process that died (also done on the beat schedule: CELERY_BEAT_SCHEDULE)."""

from django.core.management.base import BaseCommand

from llm_gateway import services


class Command(BaseCommand):
    help = "Mark answers whose generator stopped (no heartbeat for LLM_STALE_SECONDS) as interrupted or failed."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=float, default=None, help="seconds (default: LLM_STALE_SECONDS)")

    def handle(self, *args, **options):
        n = services.stale_sweep(older_than=options["older_than"])
        self.stdout.write(f"{n} answer(s) ended.")
