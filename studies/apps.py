from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StudiesConfig(AppConfig):
    name = "studies"
    verbose_name = _("Studies")

    def ready(self):
        from studies import tasks
        from workshops import jobs

        # Suggested matches need the embedding model: a job, run by a worker (inline under `make run`).
        jobs.register("study_match", run=tasks.run_match_job, time_limit=600)
