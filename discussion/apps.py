from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DiscussionConfig(AppConfig):
    name = "discussion"
    verbose_name = _("Discuss: live session")

    def ready(self):
        from discussion import demo as discussion_demo
        from discussion import selectors, services, tasks
        from workshops import demo, exports, jobs, progress, withdrawal

        jobs.register("map", run=tasks.run_map, notify=services.map_notify)

        exports.register(
            _("Derived axes (CSV)"),
            _("One row per final group axis: ranks, Likert counts, source labels, excerpts, participants (pseudonyms)."),
            "discussion:export_csv",
        )
        exports.register(
            _("Derived axes with provenance (JSON)"),
            _("Each axis with the attributes, codes, excerpts and messages behind it."),
            "discussion:export_json",
        )
        exports.register(
            _("Discuss session report (printable)"),
            _("Axes table, affinity map, consensus shift and Likert charts, session log."),
            "discussion:report",
        )
        progress.register(
            "discuss",
            [("picks", _("Top-three picks")), ("ratings", _("Axis ratings")), ("ranked", _("Ranked axes"))],
            selectors.progress_counts,
            status=selectors.progress_status,
            pages={"discussion:session": _("Discussion board"), "discussion:results": _("Discussion results")},
        )
        withdrawal.register(services.on_withdrawal)
        demo.on_stage("discuss", discussion_demo.seed)
