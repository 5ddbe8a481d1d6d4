from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EvaluationConfig(AppConfig):
    name = "evaluation"
    verbose_name = _("Evaluate")

    def ready(self):
        from django.urls import reverse

        from evaluation import drafting, judging, selectors
        from workshops import exports, jobs, progress

        # A judge run is long work a person waits on: the shared job mechanism (claim, progress,
        # attempts, heartbeat, sweep) runs it; the run itself resumes where it stopped.
        jobs.register("judge", run=judging.run_job, time_limit=3600)
        # "Draft with a model": scale descriptions proposed through the gateway, marked as drafted.
        jobs.register("rubric_draft", run=drafting.run_job, time_limit=900)
        # A model comparison: fresh answers from each model, then the judges (evaluation.comparison).
        from evaluation import comparison

        jobs.register(comparison.JOB_KIND, run=comparison.run_job, time_limit=4 * 3600)

        progress.register(
            "evaluate",
            [("rated", _("Answers rated")), ("pairs", _("Pairs compared"))],
            selectors.progress_by_member,
            stage="evaluate",
            status=selectors.progress_status,
            pages={"evaluation:rate": _("Rating an answer"), "evaluation:rate_pair": _("Comparing two answers"),
                   "evaluation:rate_start": _("Rating")},
        )
        exports.register(
            _("Evaluate: participants' ratings (CSV)"),
            _("One row per participant, answer and axis: the score (1–5 or empty for 'does not apply'), "
              "the rubric version it was given under, the question and the answer."),
            lambda w: reverse("evaluation:export_ratings", args=[w.slug]),
        )
        exports.register(
            _("Evaluate: participants' pairwise choices (CSV)"),
            _("One row per participant, answer pair and axis (or overall): which of the two answers they "
              "preferred, equally good or does not apply, with the side each answer was shown on."),
            lambda w: reverse("evaluation:export_pair_ratings", args=[w.slug]),
        )
        exports.register(
            _("Evaluate: rubrics (JSON)"),
            _("Every version of every axis' rubric: scale descriptions, should / should-not statements, "
              "examples, which parts a model drafted."),
            lambda w: reverse("evaluation:export_rubrics", args=[w.slug]),
        )
