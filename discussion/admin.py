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
from workshops.admin import NoAddAdmin


admin.site.register(Session, list_display=("workshop", "segment", "segment_open", "picks_revealed", "updated_at"))
admin.site.register(Axis, list_display=("name", "workshop", "status", "version", "updated_at"), list_filter=("status",),
                    search_fields=("name",))
admin.site.register(MapVersion, list_display=("workshop", "number", "method", "label_count", "created_at"),
                    exclude=("projector",))
admin.site.register(SessionEvent, list_display=("workshop", "kind", "actor", "created_at"), list_filter=("kind",))


@admin.register(BoardSequence)
class BoardSequenceAdmin(NoAddAdmin):
    """Read-only: the counter moves only with board changes (clients compare it to what they saw)."""

    list_display = ("workshop", "seq")
    readonly_fields = ("workshop", "seq")


@admin.register(AxisEvent)
class AxisEventAdmin(NoAddAdmin):
    """The provenance log is append-only: readable here, never changed or deleted."""

    list_display = ("axis", "kind", "actor", "at")
    list_filter = ("kind",)

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
    admin.site.register(_model, list_display=_list_fields(_model),
                        list_filter=[f.name for f in _model._meta.concrete_fields if f.name == "workshop"])
