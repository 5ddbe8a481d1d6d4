"""Demo data for the Reflect stage (called by `manage.py seed_demo` while the workshop is in
Reflect): highlights with codes and memos, and attributes, in the demo participants' own words."""

from __future__ import annotations

from coding import services
from coding.models import Annotation
from llm_gateway.models import Message
from workshops.models import Role

# username -> [(conversation title, phrase of the answer, codes, memo)]
HIGHLIGHTS = {
    "demo-p1": [
        ("Who was Ashoka?", "Historians still debate how much of the edicts describe real policy",
         ["acknowledges debate"], "Good: it says historians disagree instead of giving one story."),
        ("Who was Ashoka?", "promoting dhamma: tolerance, non-violence and care for people and animals",
         ["explains terms"], ""),
        ("Thanksgiving", "early European colonizers of the US", ["US-centric framing"],
         "Why would a student in India need the American story first?"),
    ],
    "demo-p2": [
        ("मुग़ल साम्राज्य", "Some textbooks present the Mughals as foreign invaders, others as an Indian dynasty",
         ["acknowledges debate", "multiple perspectives"], "It answered in English although I asked in Hindi."),
        ("Thanksgiving", "shared a meal with the Wampanoag Native American tribe",
         ["one-sided history"], "Leaves out what happened to the Wampanoag afterwards."),
        ("Was the British Empire good or bad for India?", "depends on the perspective",
         ["multiple perspectives"], ""),
    ],
    "demo-p3": [
        ("The Partition of 1947", "you can ask your grandparents what they remember",
         ["connects to student's life"], "Makes history personal: good for curiosity."),
        ("The Partition of 1947", "estimates of the dead range from 200,000 to two million",
         ["states uncertainty"], ""),
        ("Was the British Empire good or bad for India?", "introduced modern education",
         ["colonial framing"], "Lists benefits first, as if they balance the harm."),
    ],
}

ATTRIBUTES = {
    "demo-p1": [("Honest about uncertainty", "Says when historians disagree or evidence is thin.",
                 ["acknowledges debate"]),
                ("Student-centred", "Starts from what an Indian student knows.",
                 ["US-centric framing", "explains terms"])],
    "demo-p2": [("Many voices", "Shows more than one community's view of the past.",
                 ["multiple perspectives", "acknowledges debate", "one-sided history"])],
    "demo-p3": [("Curiosity", "Invites the student to find out more, from people around them.",
                 ["connects to student's life"]),
                ("Balance", "Does not present colonial rule as a trade-off of benefits and harms.",
                 ["colonial framing", "states uncertainty"])],
}


def seed(*, workshop, stdout=None):
    """Idempotent per participant: someone who already has highlights here is left alone."""
    made = 0
    for membership in workshop.memberships.filter(role=Role.PARTICIPANT).active().select_related("user"):
        if Annotation.objects.filter(membership=membership).exists():
            continue
        for title, phrase, codes, memo in HIGHLIGHTS.get(membership.user.username, []):
            message = (Message.objects.filter(conversation__workshop=workshop, conversation__title=title,
                                              role="assistant", content__contains=phrase).order_by("id").first())
            if message is None:
                continue
            start = message.content.index(phrase)
            services.annotation_create(membership=membership, message_id=message.id, start=start,
                                       end=start + len(phrase), codes=codes, memo=memo)
            made += 1
        codes = {c.text: c for c in membership.codes.all()}
        for name, definition, code_texts in ATTRIBUTES.get(membership.user.username, []):
            attribute = services.attribute_create(membership=membership, name=name, definition=definition)
            for text in code_texts:
                if text in codes:
                    services.attribute_add_code(membership=membership, attribute=attribute, code_id=codes[text].id)
    if stdout is not None and made:
        stdout.write(f"{workshop.slug}: {made} highlights with codes, and attributes")
