"""Each person's interface language, and the workshop's own content in several languages.

One rule for every page and fragment of a workshop: a member sees the interface in
`language_for(membership)` (their own choice, else the workshop's language). Pages get it from
`workshops.permissions.workshop_view` (which calls `activate_for`); code that renders for a
member outside a request (a socket consumer, a task) wraps the rendering in
`with translation.override(language_for(membership)):`.

The workshop's content (context, orientation, consent, practice text, system prompt, readiness
questions) is written by the facilitator in the workshop's language and, optionally, in other
languages (`Workshop.translations`, `ReadinessQuestion.translations`); `workshop_text` picks
the member's language and falls back to the workshop's own text.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import translation

TRANSLATABLE_FIELDS = ("deployment_context", "orientation_md", "consent_text", "practice_text", "system_prompt")


def shipped_languages() -> list[str]:
    return [code for code, _name in settings.LANGUAGES]


def native_languages() -> list[tuple[str, str]]:
    """(code, name in that language) for the picker."""
    names = getattr(settings, "LANGUAGE_NATIVE_NAMES", {})
    return [(code, names.get(code, str(name))) for code, name in settings.LANGUAGES]


def supported(code: str | None) -> str | None:
    return code if code in shipped_languages() else None


def language_for(membership, workshop=None) -> str:
    """The interface language of a member: their choice, else the workshop's, else the site's."""
    workshop = workshop or membership.workshop
    return supported(getattr(membership, "language", "")) or supported(workshop.language) or settings.LANGUAGE_CODE


def activate_for(request, workshop, membership=None) -> str:
    language = language_for(membership, workshop) if membership is not None else (
        chosen_language(request) or supported(workshop.language) or settings.LANGUAGE_CODE)
    translation.activate(language)
    request.LANGUAGE_CODE = translation.get_language()
    return language


def chosen_language(request) -> str | None:
    """The language a visitor chose with the picker (its cookie), if any."""
    return supported(request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME))


def workshop_text(workshop, field: str, language: str | None = None) -> str:
    """The workshop's `field` in `language` (default: the active one), else its own text."""
    if field not in TRANSLATABLE_FIELDS:
        raise ValueError(field)
    language = language or translation.get_language()
    if language and language != workshop.language:
        text = ((workshop.translations or {}).get(language) or {}).get(field, "")
        if text and text.strip():
            return text
    return getattr(workshop, field)


def localize_question(question, language: str | None = None):
    """The readiness question with its prompt, choices and explanation in `language` (in memory
    only: never save the result). Choices are used only when there are as many as the original's
    (the correct answer is found by position)."""
    language = language or translation.get_language()
    if not language or language == question.workshop.language:
        return question
    t = (question.translations or {}).get(language) or {}
    if (t.get("prompt") or "").strip():
        question.prompt = t["prompt"]
    choices = [c for c in t.get("choices") or [] if str(c).strip()]
    if len(choices) == len(question.choices):
        question.choices = choices
    if (t.get("explanation") or "").strip():
        question.explanation = t["explanation"]
    return question


def language_name(code: str) -> str:
    """The language's English name (for the model: the system prompt line is in English)."""
    for c, name in settings.LANGUAGES:
        if c == code:
            with translation.override("en"):
                return str(name)
    return code


def model_language_line(workshop, membership) -> str:
    """The line added to a participant's system prompt when the facilitator enabled it."""
    if not workshop.tell_model_language or membership is None or not membership.is_participant:
        return ""
    code = language_for(membership, workshop)
    return (f"The participant writes in {language_name(code)} (language code {code}); "
            f"answer in {language_name(code)} unless they ask otherwise.")
