from workshops.i18n import native_languages
from workshops.models import STAGE_ORDER


def workshop_context(request):
    return {
        "current_workshop": getattr(request, "workshop", None),
        "current_membership": getattr(request, "membership", None),
        "stage_order": STAGE_ORDER,
        "calma_languages": native_languages(),
    }
