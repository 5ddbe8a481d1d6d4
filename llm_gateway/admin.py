from django.contrib import admin

from llm_gateway.models import Conversation, GatewaySettings, Message, Preference, WorkshopModel


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ("position", "role", "status", "content", "prompt_tokens", "completion_tokens", "ttft_ms")
    readonly_fields = fields


admin.site.register(Conversation, list_display=("id", "workshop", "owner", "endpoint_key", "is_baseline", "updated_at"),
                    list_filter=("workshop", "is_baseline", "endpoint_key"), inlines=[MessageInline])
admin.site.register(Message, list_display=("id", "conversation", "role", "status", "completion_tokens", "ttft_ms",
                                           "created_at"),
                    list_filter=("status", "role", "endpoint_key"))
admin.site.register(WorkshopModel, list_display=("workshop", "blind_label", "endpoint_key", "position"),
                    list_filter=("workshop",))
admin.site.register(GatewaySettings, list_display=("workshop", "token_budget", "max_answer_tokens"))
admin.site.register(Preference, list_display=("id", "conversation", "question", "mode", "chosen", "decided_at"),
                    list_filter=("mode",), raw_id_fields=("conversation", "question", "chosen", "membership"))
