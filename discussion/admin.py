from django.contrib import admin

from discussion.models import Axis, Job, MapVersion, Session, SessionEvent


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ("workshop", "segment", "segment_open", "picks_revealed", "updated_at")


@admin.register(Axis)
class AxisAdmin(admin.ModelAdmin):
    list_display = ("name", "workshop", "status", "version", "updated_at")
    list_filter = ("status",)
    search_fields = ("name",)


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("workshop", "kind", "status", "progress", "attempts", "created_at", "finished_at")
    list_filter = ("status",)


@admin.register(MapVersion)
class MapVersionAdmin(admin.ModelAdmin):
    list_display = ("workshop", "number", "method", "label_count", "created_at")
    exclude = ("projector",)


@admin.register(SessionEvent)
class SessionEventAdmin(admin.ModelAdmin):
    list_display = ("workshop", "kind", "actor", "created_at")
    list_filter = ("kind",)
