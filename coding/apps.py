from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CodingConfig(AppConfig):
    name = "coding"
    verbose_name = _("Reflect: coding")

    def ready(self):
        from coding import demo as coding_demo
        from coding import selectors, services, tasks
        from workshops import demo, exports, jobs, progress, withdrawal

        jobs.register("summary", run=tasks.run_summary, notify=services.summary_notify, time_limit=300)

        progress.register(
            "reflect",
            [
                ("turns_coded", _("Turns coded")),
                ("baseline_coded", _("Baseline conversations coded")),
                ("codes", _("Codes")),
                ("attributes", _("Attributes")),
            ],
            selectors.progress_by_member,
            status=selectors.progress_status,
            pages={
                "coding:index": _("Initial coding: conversation list"),
                "coding:transcript": _("Initial coding"),
                "coding:focus": _("Focused coding"),
                "coding:compare": _("Baseline comparison"),
                "coding:summary": _("Group summary"),
            },
        )
        exports.register(
            _("Annotations (CSV)"),
            _("One row per highlighted span and code: participant, conversation, message, span, excerpt, code, memo."),
            "coding:export_annotations",
        )
        exports.register(
            _("Codebook (CSV)"),
            _("Each participant's codes with their definition or memo and how often they were used."),
            "coding:export_codebook",
        )
        exports.register(
            _("Focused codes (CSV)"),
            _("Each participant's attributes with definitions and the codes grouped in them."),
            "coding:export_focused",
        )
        exports.register(
            _("Project for QDA software (REFI-QDA .qdpx)"),
            _("Opens in QualCoder, ATLAS.ti, NVivo and MAXQDA: every transcript (participants' and baseline "
              "conversations) with each coded excerpt, its codes, its coder (by pseudonym) and memos."),
            "coding:export_qdpx",
        )
        exports.register(
            _("Codebook for QDA software (REFI-QDA .qdc)"),
            _("Opens in QualCoder, ATLAS.ti, NVivo and MAXQDA: codes per participant, attributes as sets."),
            "coding:export_qdc",
        )
        withdrawal.register(services.on_withdrawal)
        demo.on_stage("reflect", lambda **kw: coding_demo.seed(workshop=kw["workshop"], stdout=kw["stdout"]))
