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


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("pseudonym", "display_name", "workshop", "role", "consented_at", "withdrawn_at")
    list_filter = ("role", "workshop")
    search_fields = ("pseudonym", "display_name", "user__username")
    raw_id_fields = ("user", "invite")


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    list_display = ("workshop", "role", "label", "uses", "max_uses", "expires_at", "revoked_at")
    list_filter = ("role", "workshop")
    readonly_fields = ("token",)


@admin.register(StageChange)
class StageChangeAdmin(admin.ModelAdmin):
    list_display = ("workshop", "from_stage", "to_stage", "changed_by", "changed_at")
    list_filter = ("workshop",)


@admin.register(ReadinessQuestion)
class ReadinessQuestionAdmin(admin.ModelAdmin):
    list_display = ("prompt", "workshop", "position")


@admin.register(ReadinessAttempt)
class ReadinessAttemptAdmin(admin.ModelAdmin):
    list_display = ("membership", "correct", "total", "passed", "created_at")


@admin.register(PracticeCode)
class PracticeCodeAdmin(admin.ModelAdmin):
    list_display = ("code", "membership", "created_at")


@admin.register(Withdrawal)
class WithdrawalAdmin(admin.ModelAdmin):
    list_display = ("membership", "created_at", "reason")


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "workshop", "kind", "status", "progress", "attempts", "max_attempts", "heartbeat_at",
                    "created_at", "finished_at")
    list_filter = ("kind", "status")
    readonly_fields = ("fingerprint", "params", "result", "error", "message", "attempts", "queued_at", "started_at",
                       "heartbeat_at", "finished_at", "worker", "worker_pid")


@admin.register(ReturnCode)
class ReturnCodeAdmin(admin.ModelAdmin):
    """Only the hash is stored; an admin can delete a code (the person then makes a new one
    on their account page, or joins again) but never read or set one."""

    list_display = ("user", "created_at", "last_used_at")
    search_fields = ("user__username",)
    readonly_fields = ("user", "code_hash", "created_at", "last_used_at")

    def has_add_permission(self, request):
        return False
