from django.contrib import admin

from evaluation.models import EvaluationSettings, Rating, RatingAssignment, RatingItem, Rubric, RubricVersion


@admin.register(EvaluationSettings)
class EvaluationSettingsAdmin(admin.ModelAdmin):
    list_display = ["workshop", "answers_per_person", "raters_per_answer", "include_participant_conversations"]


class RubricVersionInline(admin.StackedInline):
    model = RubricVersion
    extra = 0
    readonly_fields = ["created_at", "updated_at"]


@admin.register(Rubric)
class RubricAdmin(admin.ModelAdmin):
    list_display = ["id", "workshop", "axis", "created_at"]
    inlines = [RubricVersionInline]
    raw_id_fields = ["axis"]


@admin.register(RubricVersion)
class RubricVersionAdmin(admin.ModelAdmin):
    list_display = ["rubric", "number", "name", "created_at"]
    raw_id_fields = ["rubric", "created_by"]


@admin.register(RatingItem)
class RatingItemAdmin(admin.ModelAdmin):
    list_display = ["id", "workshop", "message", "created_at"]
    raw_id_fields = ["message"]


@admin.register(RatingAssignment)
class RatingAssignmentAdmin(admin.ModelAdmin):
    list_display = ["item", "membership", "position", "done_at"]
    raw_id_fields = ["item", "membership"]


@admin.register(Rating)
class RatingAdmin(admin.ModelAdmin):
    list_display = ["item", "membership", "axis", "score", "rubric_version", "updated_at"]
    raw_id_fields = ["item", "membership", "axis", "rubric_version"]
