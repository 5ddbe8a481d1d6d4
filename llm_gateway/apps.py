from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LlmGatewayConfig(AppConfig):
    name = "llm_gateway"
    verbose_name = _("Interact: models and chat")

    def ready(self):
        from django.urls import reverse

        from llm_gateway import registry, selectors
        from workshops import exports, progress

        registry.validate()  # a malformed endpoint registry stops the process here, loudly
        progress.register(
            "interact",
            [("conversations", _("Conversations")), ("messages", _("Messages sent")), ("tokens", _("Tokens"))],
            selectors.progress,
            stage="interact",
            status=selectors.progress_status,
            pages={"llm_gateway:index": _("Chat: conversation list"), "llm_gateway:conversation": _("Chat")},
        )
        exports.register(
            _("Interact: all messages (CSV)"),
            _("One row per message: pseudonym, conversation, model, role, status, text, tokens, timings."),
            lambda workshop: reverse("llm_gateway:export_messages", args=[workshop.slug]),
        )
        exports.register(
            _("Interact: preferences in compare mode (CSV)"),
            _("One row per set of side-by-side answers: the candidates in the order shown, their model or "
              "instruction, and which one the participant preferred (or none)."),
            lambda workshop: reverse("llm_gateway:export_preferences", args=[workshop.slug]),
        )
