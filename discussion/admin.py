from django.contrib import admin

from django.db import models as dj_models

from discussion.models import (
    Axis,
    AxisComment,
    AxisEvent,
    AxisExample,
    AxisSource,
    BoardPresence,
    BoardSequence,
    Embedding,
    GroupRank,
    GroupVote,
    IndividualRank,
    LikertRating,
    MapPoint,
    MapVersion,
    Pick,
    Session,
    SessionEvent,
)


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ("workshop", "segment", "segment_open", "picks_revealed", "updated_at")


@admin.register(BoardSequence)
class BoardSequenceAdmin(admin.ModelAdmin):
    """Read-only: the counter moves only with board changes (clients compare it to what they saw)."""

    list_display = ("workshop", "seq")
    readonly_fields = ("workshop", "seq")

    def has_add_permission(self, request):
        return False


@admin.register(Axis)
class AxisAdmin(admin.ModelAdmin):
    list_display = ("name", "workshop", "status", "version", "updated_at")
    list_filter = ("status",)
    search_fields = ("name",)


@admin.register(MapVersion)
class MapVersionAdmin(admin.ModelAdmin):
    list_display = ("workshop", "number", "method", "label_count", "created_at")
    exclude = ("projector",)


@admin.register(SessionEvent)
class SessionEventAdmin(admin.ModelAdmin):
    list_display = ("workshop", "kind", "actor", "created_at")
    list_filter = ("kind",)


@admin.register(AxisEvent)
class AxisEventAdmin(admin.ModelAdmin):
    """The provenance log is append-only: readable here, never changed or deleted."""

    list_display = ("axis", "kind", "actor", "at")
    list_filter = ("kind",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _list_fields(model, limit=6):
    """The first plain columns of a model, for a read-friendly admin list."""
    skip = (dj_models.BinaryField, dj_models.JSONField, dj_models.TextField)
    return ["id", *[f.name for f in model._meta.concrete_fields if f.name != "id" and not isinstance(f, skip)][:limit]]


for _model in (Pick, AxisSource, AxisExample, AxisComment, GroupVote, GroupRank, LikertRating,
               IndividualRank, BoardPresence, Embedding, MapPoint):
    admin.site.register(_model, type(f"{_model.__name__}Admin", (admin.ModelAdmin,), {
        "list_display": _list_fields(_model),
        "list_filter": [f.name for f in _model._meta.concrete_fields if f.name == "workshop"],
    }))
