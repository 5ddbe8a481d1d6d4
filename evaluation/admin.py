from django.contrib import admin

from evaluation.models import EvaluationSettings, Rating, RatingAssignment, RatingItem, Rubric, RubricVersion


class RubricVersionInline(admin.StackedInline):
    model = RubricVersion
    extra = 0
    readonly_fields = ["created_at", "updated_at"]


admin.site.register(EvaluationSettings, list_display=["workshop", "answers_per_person", "raters_per_answer",
                                                      "include_participant_conversations"])
admin.site.register(Rubric, list_display=["id", "workshop", "axis", "created_at"], inlines=[RubricVersionInline],
                    raw_id_fields=["axis"])
admin.site.register(RubricVersion, list_display=["rubric", "number", "name", "created_at"],
                    raw_id_fields=["rubric", "created_by"])
admin.site.register(RatingItem, list_display=["id", "workshop", "message", "created_at"], raw_id_fields=["message"])
admin.site.register(RatingAssignment, list_display=["item", "membership", "position", "done_at"],
                    raw_id_fields=["item", "membership"])
admin.site.register(Rating, list_display=["item", "membership", "axis", "score", "rubric_version", "updated_at"],
                    raw_id_fields=["item", "membership", "axis", "rubric_version"])
