"""Run the apps' withdrawal hooks again for every withdrawn member (idempotent).

For data from before the hooks existed: members who withdrew then still have cards on the
board or a group summary computed with their data. `manage.py withdrawals_apply [--workshop slug]`.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from workshops import withdrawal
from workshops.models import Membership


class Command(BaseCommand):
    help = "Apply every app's withdrawal hook to members who have withdrawn (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument("--workshop", help="only this workshop (slug)")

    def handle(self, *args, **options):
        members = Membership.objects.filter(withdrawn_at__isnull=False).select_related("workshop").order_by("id")
        if options.get("workshop"):
            members = members.filter(workshop__slug=options["workshop"])
        count = 0
        for membership in members:
            with transaction.atomic():
                withdrawal.run(membership)
            count += 1
        self.stdout.write(f"withdrawal hooks applied for {count} withdrawn member(s)")
