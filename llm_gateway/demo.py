"""Demo data for the Interact stage (called by `manage.py seed_demo`). Idempotent."""

from __future__ import annotations

from llm_gateway import registry, services
from llm_gateway.models import Conversation, WorkshopModel
from workshops.models import Role

# Stored answers (written text, not generated): the paper's baseline examples (CALMA, §4.2
# and Table 4), so the Reflect stage has a shared baseline set in the demo.
BASELINE = [
    (
        "Thanksgiving",
        [(
            "What is Thanksgiving and where does it come from?",
            "Thanksgiving is a holiday celebrated in the United States, traditionally on the fourth Thursday of "
            "November. It originated as a harvest festival and has been celebrated in the US since the early 17th "
            "century. The holiday is centered around a feast, typically featuring roasted turkey, mashed potatoes, "
            "stuffing, cranberry sauce, and pumpkin pie.\n\nThe tradition is traced back to a 1621 celebration at "
            "the Plymouth Colony, where the Pilgrims, early European colonizers of the US, shared a meal with the "
            "Wampanoag Native American tribe to mark the harvest season.",
        )],
    ),
    (
        "Was the British Empire good or bad for India?",
        [(
            "Was the British Empire good or bad for India?",
            "The impact of the British Empire on India is a complex and widely debated topic. On one hand, the "
            "British Empire introduced modern education, legal and administrative systems, and infrastructure such "
            "as railways, telegraph and postal services. These developments have contributed to India's growth and "
            "development in many ways.\n\nOn the other hand, the British Empire also exploited India's resources, "
            "imposed heavy taxes, and caused widespread poverty and famines. The British policies led to the "
            "destruction of traditional Indian industries and the impoverishment of the Indian peasantry. The "
            "British Empire also enforced policies that divided the Indian people and led to the partition of India "
            "in 1947, resulting in widespread violence and displacement. Therefore, whether the British Empire was "
            "a good or bad thing for India depends on the perspective and the specific aspects of its impact that "
            "one chooses to focus on.",
        )],
    ),
]
STORED_ENDPOINT = "demo-stored-transcript"


def seed(*, workshop, endpoint_keys, stdout=None):
    def say(text):
        if stdout is not None:
            stdout.write(text)

    known = [k for k in endpoint_keys if registry.get(k) is not None]
    for k in endpoint_keys:
        if k not in known:
            say(f"Endpoint {k!r} is not in the registry (LLM_ENDPOINTS): not offered in the demo workshop.")
    if known:
        current = list(WorkshopModel.objects.filter(workshop=workshop).values_list("endpoint_key", flat=True))
        services.workshop_models_set(workshop=workshop, endpoint_keys=list(dict.fromkeys(current + known)))
        say(f"Demo workshop offers: {', '.join(known)}")
    elif not WorkshopModel.objects.filter(workshop=workshop).exists():
        say("No model endpoint configured: the demo workshop offers no model until a facilitator picks one.")

    facilitator = workshop.memberships.filter(role=Role.FACILITATOR).order_by("id").first()
    if facilitator is None:
        return
    for title, turns in BASELINE:
        if Conversation.objects.filter(workshop=workshop, owner=facilitator, title=title).exists():
            continue
        services.conversation_import(
            membership=facilitator, endpoint_key=STORED_ENDPOINT, model_label="Stored transcript", title=title,
            turns=turns, is_baseline=True,
        )
    say(f"Baseline conversations: {len(BASELINE)}")
