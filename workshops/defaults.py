"""Built-in Familiarize content: an orientation, practice text and readiness check.

Open coding is taught with an example from an *unrelated* context (reviews of a cooking
assistant) so that nothing about the workshop's real deployment context is primed.
"""

from django.utils.translation import gettext as _


def default_consent_text(workshop_title: str) -> str:
    return _(
        "You are invited to take part in the workshop \"%(title)s\".\n\n"
        "What you will do: read a short orientation, chat with a language model, label what you "
        "notice in its answers in your own words, and discuss those labels with the group.\n\n"
        "What is kept: your conversations with the model, your labels and notes, and your ratings. "
        "Others in the workshop and the researchers see them under a pseudonym (P01, P02, ...), "
        "never your name, username or email.\n\n"
        "Taking part is voluntary. You can withdraw at any time from the workshop page; your data "
        "is then left out of every view and every export."
    ) % {"title": workshop_title}


def default_orientation() -> str:
    return _(
        """## Why we are here

A language model is going to be used in the setting described above. Before anyone decides
*how well* it behaves, we want to find out *what matters* in that setting: the qualities of its
answers that people like you care about. You will find those qualities yourselves, from
conversations you have with the model.

## How the workshop runs

1. **Familiarize** (now): this page, a short practice and a few questions.
2. **Interact**: chat freely with the model about anything in its setting.
3. **Reflect**: mark parts of the model's answers and label what you notice, in your own words.
   Then group your labels into a few qualities with definitions.
4. **Discuss**: together, turn everyone's labels into a short list of shared, defined qualities.

## Open coding, with an example from somewhere else

*Open coding* means reading closely and writing short labels ("codes") for what you notice.
There is no list to choose from and no right answer: use your own words.

Imagine a cooking assistant answered: *"Just use any oil, it doesn't matter. Bake for 20
minutes."* Different people might code it:

- **"dismissive of the question"** — it waves away a real choice;
- **"missing safety detail"** — no temperature, no check for doneness;
- **"confident without reasons"**.

Codes that only *describe the form* — "summary", "introduction", "short answer" — tell us little.
Good codes say what the answer *does*, or *fails to do*, that matters to someone: "assumes I
have an oven", "respects my budget", "ignores my allergy".

Tips:

- Code a part of an answer, not the whole conversation, when a part is what struck you.
- Several codes on one part are fine; so are overlapping parts.
- Add a memo when a code needs a sentence of explanation.
"""
    )


def default_practice_text() -> str:
    return _(
        "User: I have chicken, rice and a lemon. What can I make tonight? I'm vegetarian on Fridays.\n\n"
        "Assistant: Great choice! Lemon chicken with rice is a classic. Season the chicken with salt, "
        "squeeze the lemon over it and cook it in a hot pan for a few minutes on each side. Everyone "
        "loves this dish, and it is the healthiest dinner you can make. If it's Friday, you could "
        "simply skip the chicken, but the meal won't be as good."
    )


def default_practice_example_codes() -> str:
    return "\n".join(
        [
            _("ignores the user's stated diet"),
            _("no food-safety check (is the chicken cooked?)"),
            _("overclaims: 'healthiest dinner'"),
            _("dismissive of vegetarian option"),
            _("friendly, encouraging tone"),
            _("vague timing"),
        ]
    )


def default_readiness_questions() -> list[dict]:
    return [
        {
            "prompt": _("Which of these is the most useful code for an answer?"),
            "choices": [_("summary"), _("introduction"), _("ignores the user's allergy"), _("long")],
            "correct_choice": 2,
            "explanation": _("It names something the answer does that matters to a person."),
        },
        {
            "prompt": _("Where do the codes come from?"),
            "choices": [
                _("A list the researchers give you"),
                _("Your own words, for what you notice"),
                _("The model suggests them"),
            ],
            "correct_choice": 1,
            "explanation": _("Open coding uses your own words; there is no list."),
        },
        {
            "prompt": _("Can one part of an answer carry several codes?"),
            "choices": [_("Yes"), _("No, one code per part")],
            "correct_choice": 0,
            "explanation": _("Yes: write every code that fits."),
        },
    ]
