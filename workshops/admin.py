"""The admin of workshops. A model whose admin is only options is registered with them
(`admin.site.register(Model, list_display=...)`); a class is written where the admin has an
inline or methods. `NoAddAdmin` is shared by every app's admin for rows only the app writes."""

from django.contrib import admin

from workshops.models import (
    Invite,
    Job,
    Membership,
    PracticeCode,
    ReadinessAttempt,
    ReadinessQuestion,
    ReturnCode,
    StageChange,
    Withdrawal,
    Workshop,
)


class NoAddAdmin(admin.ModelAdmin):
    """Rows that only the app writes: the admin reads them and adds none."""

    def has_add_permission(self, request):
        return False


class ReadinessQuestionInline(admin.TabularInline):
    model = ReadinessQuestion
    extra = 0


@admin.register(Workshop)
class WorkshopAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "stage", "language", "created_at")
    list_filter = ("stage", "language")
    search_fields = ("title", "slug", "deployment_context")
    prepopulated_fields = {"slug": ("title",)}
    inlines = [ReadinessQuestionInline]


admin.site.register(Membership, list_display=("pseudonym", "display_name", "workshop", "role", "consented_at",
                                              "withdrawn_at"),
                    list_filter=("role", "workshop"), search_fields=("pseudonym", "display_name", "user__username"),
                    raw_id_fields=("user", "invite"))
admin.site.register(Invite, list_display=("workshop", "role", "label", "uses", "max_uses", "expires_at", "revoked_at"),
                    list_filter=("role", "workshop"), readonly_fields=("token",))
admin.site.register(StageChange, list_display=("workshop", "from_stage", "to_stage", "changed_by", "changed_at"),
                    list_filter=("workshop",))
admin.site.register(ReadinessQuestion, list_display=("prompt", "workshop", "position"))
admin.site.register(ReadinessAttempt, list_display=("membership", "correct", "total", "passed", "created_at"))
admin.site.register(PracticeCode, list_display=("code", "membership", "created_at"))
admin.site.register(Withdrawal, list_display=("membership", "created_at", "reason"))
admin.site.register(
    Job,
    list_display=("id", "workshop", "kind", "status", "progress", "attempts", "max_attempts", "heartbeat_at",
                  "created_at", "finished_at"),
    list_filter=("kind", "status"),
    readonly_fields=("fingerprint", "params", "result", "error", "message", "attempts", "queued_at", "started_at",
                     "heartbeat_at", "finished_at", "worker", "worker_pid"),
)


@admin.register(ReturnCode)
class ReturnCodeAdmin(NoAddAdmin):
    """Only the hash is stored; an admin can delete a code (the person then makes a new one
    on their account page, or joins again) but never read or set one."""

    list_display = ("user", "created_at", "last_used_at")
    search_fields = ("user__username",)
    readonly_fields = ("user", "code_hash", "created_at", "last_used_at")
