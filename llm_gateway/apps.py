from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LlmGatewayConfig(AppConfig):
    name = "llm_gateway"
    verbose_name = _("Interact: models and chat")
