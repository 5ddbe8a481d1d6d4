from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LlmGatewayConfig(AppConfig):
    name = "llm_gateway"
    verbose_name = _("Interact: models and chat")

    def ready(self):
        from llm_gateway import demo as gateway_demo
        from llm_gateway import registry, selectors
        from workshops import demo, exports, progress

        registry.validate()  # a malformed endpoint registry stops the process here, loudly
        progress.register(
            "interact",
            [("conversations", _("Conversations")), ("messages", _("Messages sent")), ("tokens", _("Tokens"))],
            selectors.progress,
            status=selectors.progress_status,
            pages={"llm_gateway:index": _("Chat: conversation list"), "llm_gateway:conversation": _("Chat")},
        )
        exports.register(
            _("Interact: all messages (CSV)"),
            _("One row per message: pseudonym, conversation, model, role, status, text, tokens, timings."),
            "llm_gateway:export_messages",
        )
        exports.register(
            _("Interact: preferences in compare mode (CSV)"),
            _("One row per set of side-by-side answers: the candidates in the order shown, their model or "
              "instruction, and which one the participant preferred (or none)."),
            "llm_gateway:export_preferences",
        )
        demo.on_every_workshop(gateway_demo.seed, no_model_notice=gateway_demo.NO_MODEL_NOTICE)
        demo.on_stage("reflect", lambda **kw: gateway_demo.seed_conversations(workshop=kw["workshop"], stdout=kw["stdout"]))
