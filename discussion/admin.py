from django.contrib import admin

from django.db import models as dj_models

from discussion.models import (
    Axis,
    AxisComment,
    AxisExample,
    AxisSource,
    BoardPresence,
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
