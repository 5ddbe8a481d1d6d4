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


NO_MODEL_NOTICE = (
    "No model offered in the demo workshops yet: none was given with --endpoint and LLM_ENDPOINTS lists none. "
    "Run seed_demo --endpoint KEY, or pick one as the facilitator under Models in a workshop "
    "(make run does this by itself once its local model is up)."
)


def seed(*, workshop, endpoint_keys, stdout=None):
    """Offer the endpoints (by default every endpoint of the registry) and store the baseline set.
    Returns the endpoint keys the workshop offers."""

    def say(text):
        if stdout is not None:
            stdout.write(text)

    endpoint_keys = list(endpoint_keys) or [e.key for e in registry.endpoints()]
    known = [k for k in endpoint_keys if registry.get(k) is not None]
    for k in endpoint_keys:
        if k not in known:
            say(f"Endpoint {k!r} is not in the registry (LLM_ENDPOINTS): not offered in the demo workshop.")
    current = list(WorkshopModel.objects.filter(workshop=workshop).values_list("endpoint_key", flat=True))
    if known and not set(known) <= set(current):
        services.workshop_models_set(workshop=workshop, endpoint_keys=list(dict.fromkeys(current + known)))
        current = list(dict.fromkeys(current + known))

    facilitator = workshop.memberships.filter(role=Role.FACILITATOR).order_by("id").first()
    if facilitator is None:
        return current
    for title, turns in BASELINE:
        if Conversation.objects.filter(workshop=workshop, owner=facilitator, title=title).exists():
            continue
        services.conversation_import(
            membership=facilitator, endpoint_key=STORED_ENDPOINT, model_label="Stored transcript", title=title,
            turns=turns, is_baseline=True,
        )
    return current


# Stored conversations of the demo participants (written text, not generated), so that the
# Reflect and Discuss demo workshops have something to code and discuss before anyone chats.
PARTICIPANT_CONVERSATIONS = {
    "demo-p1": [
        ("Who was Ashoka?", [(
            "Who was Ashoka and why is he important?",
            "Ashoka was an emperor of the Maurya dynasty who ruled most of the Indian subcontinent from about 268 "
            "to 232 BCE. After the bloody conquest of Kalinga he turned to Buddhism and spent the rest of his reign "
            "promoting dhamma: tolerance, non-violence and care for people and animals.\n\nHis edicts, carved on "
            "rocks and pillars across the empire, are some of the oldest written records in India. The lion capital "
            "of one of his pillars is India's national emblem today. Historians still debate how much of the "
            "edicts describe real policy and how much is royal self-presentation.",
        ), (
            "Was he really peaceful after Kalinga?",
            "The edicts say he regretted the suffering of Kalinga and gave up conquest by war. He did, however, "
            "keep his army, and one edict warns forest tribes that he has the power to punish them. So he was "
            "more peaceful than many rulers of his time, but not a pacifist in the modern sense.",
        )]),
    ],
    "demo-p2": [
        ("मुग़ल साम्राज्य", [(
            "मुग़ल साम्राज्य के बारे में बताइए",
            "The Mughal Empire was founded by Babur after the First Battle of Panipat in 1526 and at its height, "
            "under Akbar and Aurangzeb, ruled most of the subcontinent. Akbar is remembered for religious tolerance "
            "and a strong administration; Shah Jahan built the Taj Mahal.\n\nThe empire declined in the 18th "
            "century after Aurangzeb's long wars in the Deccan, and the last emperor, Bahadur Shah Zafar, was exiled "
            "by the British after 1857. Some textbooks present the Mughals as foreign invaders, others as an Indian "
            "dynasty: both views are part of today's debates.",
        )]),
    ],
    "demo-p3": [
        ("The Partition of 1947", [(
            "Why did the Partition of India happen?",
            "The Partition of 1947 divided British India into India and Pakistan. It followed decades of growing "
            "distance between the Indian National Congress and the Muslim League, British policies that treated "
            "religious communities as separate political groups, and a rushed British withdrawal.\n\nAround 15 "
            "million people were displaced and estimates of the dead range from 200,000 to two million. Families "
            "on both sides still tell these stories, and you can ask your grandparents what they remember.",
        )]),
    ],
}


def seed_conversations(*, workshop, stdout=None):
    """The demo participants' stored conversations in `workshop` (idempotent by title)."""
    made = 0
    for membership in workshop.memberships.filter(role=Role.PARTICIPANT).select_related("user"):
        for title, turns in PARTICIPANT_CONVERSATIONS.get(membership.user.username, []):
            if Conversation.objects.filter(workshop=workshop, owner=membership, title=title).exists():
                continue
            services.conversation_import(membership=membership, endpoint_key=STORED_ENDPOINT,
                                         model_label="Model A", title=title, turns=turns)
            made += 1
    if stdout is not None and made:
        stdout.write(f"{workshop.slug}: {made} stored participant conversations")
