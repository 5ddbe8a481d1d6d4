from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EvaluationConfig(AppConfig):
    name = "evaluation"
    verbose_name = _("Evaluate")

    def ready(self):
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
            status=selectors.progress_status,
            pages={"evaluation:rate": _("Rating an answer"), "evaluation:rate_pair": _("Comparing two answers"),
                   "evaluation:rate_start": _("Rating")},
        )
        # The evaluation's exports, in the order of the list of downloads; from export_bundle on,
        # Evaluate II: the axes and ratings handed to the tools researchers use (evaluation/exports/).
        for url_name, title, description in (
            ("export_ratings", _("Evaluate: participants' ratings (CSV)"),
             _("One row per participant, answer and axis: the score (1–5 or empty for 'does not apply'), "
               "the rubric version it was given under, the question and the answer.")),
            ("export_pair_ratings", _("Evaluate: participants' pairwise choices (CSV)"),
             _("One row per participant, answer pair and axis (or overall): which of the two answers they "
               "preferred, equally good or does not apply, with the side each answer was shown on.")),
            ("export_rubrics", _("Evaluate: rubrics (JSON)"),
             _("Every version of every axis' rubric: scale descriptions, should / should-not statements, "
               "examples, which parts a model drafted.")),
            ("export_bundle", _("Everything in one zip (all exports + README data dictionary)"),
             _("Every export of this workshop in one streamed zip, with a README listing each file and its "
               "columns, and the data statement.")),
            ("export_data_statement", _("Evaluate: data statement (Markdown)"),
             _("Deployment context, who took part (counts and roles), process and dates, rubric versions, "
               "agreement figures and known limitations — for publishing a dataset responsibly.")),
            ("export_weval", _("Evaluate: Weval blueprint (YAML)"),
             _("The workshop's prompts with should / should-not points from the rubrics, for the Weval platform.")),
            ("export_inspect_task", _("Evaluate: Inspect AI task (.py)"),
             _("A task file for `inspect eval`: model-graded along each axis' rubric; needs the dataset beside it.")),
            ("export_inspect_dataset", _("Evaluate: Inspect AI dataset (JSONL)"),
             _("One sample per (prompt, axis), the rubric as the grading target, provenance in metadata.")),
            ("export_promptfoo", _("Evaluate: promptfoo config (YAML)"),
             _("The prompts as tests with one llm-rubric assertion per axis; set the providers before running.")),
            ("export_dpo", _("Evaluate: preference pairs, DPO-style (JSONL)"),
             _("{prompt, chosen, rejected} from compare-mode choices and pairwise ratings, with axis_id "
               "(null for overall).")),
            ("export_kto", _("Evaluate: unpaired preferences, KTO-style (JSONL)"),
             _("{prompt, completion, label} from per-axis ratings above or below the midpoint.")),
            ("export_reference_csv", _("Evaluate: human reference set (CSV)"),
             _("Every answer with every participant's per-axis rating and every judge's score, one row each.")),
            ("export_reference_jsonl", _("Evaluate: human reference set (JSONL)"),
             _("The same records as the CSV, one JSON object per line.")),
        ):
            exports.register(title, description, f"evaluation:{url_name}")
