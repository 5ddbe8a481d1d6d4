"""The interface in every shipped language (issue 13, section 2).

- Every template's human text is inside {% translate %} / {% blocktranslate %} (a scan of the
  templates' text nodes and human-read attributes; a small allow-list for symbols and names).
- Every participant-facing msgid has a translation in every shipped catalogue; every msgid
  (facilitator pages included) in Hindi and Spanish (FACILITATOR_LANGUAGES).
- Every translation keeps its msgid's placeholders (%(name)s, %s, {name}).
- A participant's language choice applies to their pages; the workshop's content is shown in
  their language with a fallback; the model is told their language when enabled.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
TEMPLATES = ROOT / "templates"
LOCALE = ROOT / "locale"

# Templates only facilitators and researchers open. Every other template is participant-facing.
FACILITATOR_TEMPLATES = {
    "workshops/dashboard.html", "workshops/invites.html", "workshops/workshop_form.html",
    "workshops/familiarize_edit.html", "workshops/texts.html", "workshops/research.html",
    "llm_gateway/models.html", "llm_gateway/usage.html", "llm_gateway/conversations.html",
    "llm_gateway/_usage_table.html", "llm_gateway/_config_errors.html", "llm_gateway/staff_links.html",
    "coding/compare.html", "coding/staff_links.html", "discussion/results.html",
    "discussion/_results_body.html", "discussion/report.html", "discussion/staff_links.html",
    "evaluation/overview.html", "evaluation/rubric_edit.html", "evaluation/results.html",
    "evaluation/staff_links.html", "evaluation/compare_list.html", "evaluation/compare_detail.html",
    "studies/index.html", "studies/detail.html", "studies/study_form.html", "studies/template_form.html",
    "studies/compare.html", "studies/labels.html", "studies/_label_rows.html",
    "api/tokens.html", "api/docs.html",
}
FACILITATOR_LANGUAGES = ("hi", "es")
# Python modules whose strings only facilitators, researchers or the admin read (app and export
# descriptions, the default Familiarize content that is created in the workshop's language, the
# judge's progress, the rating settings, model comparisons and drafted rubrics, studies and the
# API's token pages). Strings of every other module are participant-facing (stage names, form
# labels, error messages).
FACILITATOR_MODULES = ("apps.py", "admin.py", "workshops/defaults.py", "evaluation/judging.py",
                       "evaluation/models.py", "evaluation/comparison.py", "evaluation/comparison_views.py",
                       "evaluation/drafting.py")
# Packages only researchers use (studies across workshops, the JSON API and its tokens).
FACILITATOR_PACKAGES = ("studies/", "api/")

# Text that is the same in every language: the product's name, symbols, separators.
ALLOWED_TEXT = {"CALMA", "JSONL", "×", "·", "—", "–", "…", "→", "←", "↑", "↓", "✓", "✕", "%", "/", "(", ")", ":", "#", "A", "B"}
# Attributes people read (the screen reader's and the mouse's text).
HUMAN_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt", "aria-description", "aria-roledescription")

_PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]|%[sdif]|\{(\w*)\}")


def _placeholders(text: str) -> list[str]:
    return sorted(m.group(0) for m in _PLACEHOLDER.finditer(text.replace("%%", "")))


def _catalogue(language: str):
    import polib

    return polib.pofile(str(LOCALE / language / "LC_MESSAGES" / "django.po"))


def _shipped() -> list[str]:
    return [code for code, _name in settings.LANGUAGES if code != "en"]


def _participant_facing(entry) -> bool:
    def participant_path(path: str) -> bool:
        if path.startswith("templates/"):
            return path.removeprefix("templates/") not in FACILITATOR_TEMPLATES
        return not path.endswith(FACILITATOR_MODULES) and not path.startswith(FACILITATOR_PACKAGES)

    return any(participant_path(path) for path, _line in entry.occurrences)


def _translated(entry) -> bool:
    if entry.obsolete or "fuzzy" in entry.flags:
        return False
    if entry.msgid_plural:
        return bool(entry.msgstr_plural) and all(v.strip() for v in entry.msgstr_plural.values())
    return bool(entry.msgstr.strip())


# --- Catalogues ----------------------------------------------------------------------------------


def test_every_shipped_language_has_a_catalogue_and_a_compiled_one():
    for language in _shipped():
        po = LOCALE / language / "LC_MESSAGES" / "django.po"
        assert po.exists(), f"{language}: no catalogue at {po}"
        mo = po.with_suffix(".mo")
        assert mo.exists(), f"{language}: not compiled (make compiles catalogues; or manage.py compilemessages)"


@pytest.mark.parametrize("language", _shipped())
def test_every_participant_facing_string_is_translated(language):
    missing = [e.msgid for e in _catalogue(language) if _participant_facing(e) and not _translated(e)]
    assert not missing, f"{language}: {len(missing)} participant-facing strings without a translation, e.g. {missing[:5]}"


@pytest.mark.parametrize("language", FACILITATOR_LANGUAGES)
def test_every_string_is_translated_for_facilitators(language):
    missing = [e.msgid for e in _catalogue(language) if not e.obsolete and not _translated(e)]
    assert not missing, f"{language}: {len(missing)} strings without a translation, e.g. {missing[:5]}"


@pytest.mark.parametrize("language", _shipped())
def test_translations_keep_their_placeholders(language):
    wrong = []
    for entry in _catalogue(language):
        if not _translated(entry):
            continue
        if entry.msgid_plural:
            wanted = _placeholders(entry.msgid_plural)
            forms = list(entry.msgstr_plural.values())
            # A form for one (or two) may drop the number ("one highlight"): no form adds a
            # placeholder, and the general plural form keeps every one.
            bad = any(set(_placeholders(f)) - set(wanted) for f in forms) or _placeholders(
                entry.msgstr_plural[max(entry.msgstr_plural)] if language != "ar" else entry.msgstr_plural[0]) != wanted
        else:
            bad = _placeholders(entry.msgstr) != _placeholders(entry.msgid)
        if bad:
            wrong.append(entry.msgid)
    assert not wrong, f"{language}: placeholders changed in {wrong[:5]}"


def test_placeholder_check_catches_a_lost_placeholder():
    assert _placeholders("Hello %(name)s, {count} left") == ["%(name)s", "{count}"]
    assert _placeholders("Hola, quedan {count}") != _placeholders("Hello %(name)s, {count} left")


# --- Templates -----------------------------------------------------------------------------------


def _untranslated_text(source: str) -> list[str]:
    """Human text in a template outside {% translate %}/{% blocktranslate %}: the template's
    tags are replaced by a marker, then the HTML's text nodes and human-read attributes are read."""
    from html.parser import HTMLParser

    from django.template.base import Lexer, TokenType

    parts = []
    depth = 0  # inside blocktranslate, or a comment / verbatim block
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.BLOCK:
            name = token.contents.split()[0] if token.contents else ""
            if name in ("blocktranslate", "blocktrans", "comment", "verbatim"):
                depth += 1
            elif name in ("endblocktranslate", "endblocktrans", "endcomment", "endverbatim"):
                depth -= 1
            parts.append(" \u2063 ")
        elif token.token_type == TokenType.TEXT and not depth:
            parts.append(token.contents)
        else:
            parts.append(" \u2063 ")
    found = []

    class Reader(HTMLParser):
        skip = 0

        def handle_starttag(self, tag, attrs):
            if tag in ("script", "style"):
                self.skip += 1
            for name, value in attrs:
                if name in HUMAN_ATTRIBUTES and value and _is_human(value.replace("\u2063", " ")):
                    found.append(f'{name}="{value.replace(chr(0x2063), "").strip()}"')

        def handle_endtag(self, tag):
            if tag in ("script", "style"):
                self.skip = max(0, self.skip - 1)

        def handle_data(self, data):
            text = data.replace("\u2063", " ")
            attributes_only = re.fullmatch(r'\s*([\w-]+="[^"]*"\s*)+', text)  # a {% block body_attrs %}
            if not self.skip and not attributes_only and _is_human(text):
                found.append(" ".join(text.split()))

    reader = Reader(convert_charrefs=True)
    reader.feed("".join(parts))
    reader.close()
    return found


def _is_human(text: str) -> bool:
    words = [w for w in re.split(r"\s+", text.strip()) if w and w not in ALLOWED_TEXT]
    return any(re.search(r"[^\W\d_]{2,}", w) for w in words)


def test_templates_have_no_untranslated_text():
    problems = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        for text in _untranslated_text(path.read_text()):
            problems.append(f"{path.relative_to(TEMPLATES)}: {text[:80]!r}")
    assert not problems, "Untranslated text (wrap it in {% translate %}):\n" + "\n".join(problems)


def test_template_scan_finds_untranslated_text():
    assert _untranslated_text('<p>Hello there</p>') == ["Hello there"]
    assert _untranslated_text('<input placeholder="Your name">') == ['placeholder="Your name"']
    assert _untranslated_text('{% load i18n %}<p>{% translate "Hello" %} · CALMA</p>') == []
    assert _untranslated_text('{% blocktranslate %}Hi {{ n }} there{% endblocktranslate %}<b>{{ x }}</b>') == []
    assert _untranslated_text('<a href="{% url "x" %}" class="y">{{ a }} items</a>') == ["items"]


# --- Each person's language and the workshop's content ------------------------------------------


@pytest.mark.django_db
def test_participant_pages_use_their_own_language_and_content_falls_back(client):
    from tests.factories import make_participant, make_workshop
    from workshops import services

    workshop = make_workshop(language="en", deployment_context="A helper for parents.")
    services.workshop_translations_save(workshop=workshop, language="ar", questions={},
                                        texts={"deployment_context": "مساعد للأهل."})
    arabic, swahili, english = (make_participant(workshop) for _ in range(3))
    services.membership_set_language(membership=arabic, language="ar")
    services.membership_set_language(membership=swahili, language="sw")

    client.force_login(arabic.user)
    page = client.get(f"/w/{workshop.slug}/familiarize/").content.decode()
    assert '<html lang="ar" dir="rtl">' in page and "مساعد للأهل." in page and "التمهيد" in page
    client.force_login(swahili.user)  # no Swahili context written: the workshop's own text
    page = client.get(f"/w/{workshop.slug}/familiarize/").content.decode()
    assert '<html lang="sw" dir="ltr">' in page and "A helper for parents." in page and "Utangulizi" in page
    client.force_login(english.user)
    page = client.get(f"/w/{workshop.slug}/familiarize/").content.decode()
    assert '<html lang="en" dir="ltr">' in page and "Orientation" in page


@pytest.mark.django_db
def test_header_picker_sets_the_members_language_and_goes_back(client):
    from tests.factories import make_participant, make_workshop

    workshop = make_workshop(language="hi")
    member = make_participant(workshop)
    client.force_login(member.user)
    page = client.get(f"/w/{workshop.slug}/").content.decode()
    assert '<html lang="hi"' in page and 'name="language"' in page
    response = client.post("/i18n/setlang/", {"language": "es", "workshop": workshop.slug,
                                              "next": f"/w/{workshop.slug}/"})
    assert response.status_code == 302 and response["Location"] == f"/w/{workshop.slug}/"
    member.refresh_from_db()
    assert member.language == "es"
    assert '<html lang="es"' in client.get(f"/w/{workshop.slug}/").content.decode()
    # Back to the workshop's language: stored as "follow the workshop".
    client.post("/i18n/setlang/", {"language": "hi", "workshop": workshop.slug, "next": "https://evil.example/"})
    member.refresh_from_db()
    assert member.language == ""
    # Unknown languages and outside redirects are refused.
    response = client.post("/i18n/setlang/", {"language": "xx", "next": "https://evil.example/"})
    assert response["Location"] == "/"


@pytest.mark.django_db
def test_readiness_questions_in_the_members_language_are_graded_by_position():
    from tests.factories import make_participant, make_workshop
    from workshops import i18n, services

    workshop = make_workshop(language="en")
    question = workshop.readiness_questions.first()
    choices = [f"उत्तर {i}" for i in range(len(question.choices))]
    services.workshop_translations_save(workshop=workshop, language="hi", texts={}, questions={
        question.id: {"prompt": "प्रश्न?", "choices": choices, "explanation": "क्योंकि"}})
    question.refresh_from_db()
    shown = i18n.localize_question(question, "hi")
    assert (shown.prompt, shown.choices, shown.explanation) == ("प्रश्न?", choices, "क्योंकि")
    with pytest.raises(Exception):  # a different number of choices would break the grading
        services.workshop_translations_save(workshop=workshop, language="hi", texts={}, questions={
            question.id: {"choices": ["एक"]}})
    assert make_participant(workshop).language == ""


@pytest.mark.django_db
def test_model_is_told_the_participants_language_when_enabled():
    from llm_gateway.services import history_for_model
    from tests.factories import make_conversation, make_participant, make_workshop
    from workshops import services

    workshop = make_workshop(language="en", system_prompt="You help parents.")
    services.workshop_translations_save(workshop=workshop, language="hi", questions={},
                                        texts={"system_prompt": "आप माता-पिता की मदद करते हैं।"})
    member = make_participant(workshop)
    services.membership_set_language(membership=member, language="hi")
    conversation = make_conversation(member, turns=[("नमस्ते", "नमस्ते!")])
    system = history_for_model(conversation, upto_position=2)[0]
    assert system == {"role": "system", "content": "आप माता-पिता की मदद करते हैं।"}
    services.workshop_update(workshop=workshop, tell_model_language=True)
    conversation.workshop.refresh_from_db()
    system = history_for_model(conversation, upto_position=2)[0]["content"]
    assert system.startswith("आप माता-पिता") and "The participant writes in Hindi (language code hi)" in system


# --- Text in any script --------------------------------------------------------------------------


def test_normalize_matches_across_normal_forms_and_case():
    import unicodedata

    from workshops.text import contains, normalize

    for word in ("Canción", "क़ानून", "السلامة الطبية", "Straße"):
        assert normalize(unicodedata.normalize("NFD", word)) == normalize(unicodedata.normalize("NFC", word))
    assert normalize("STRASSE") == normalize("straße")
    assert contains("Medical SAFETY first", "medical safety")
    assert contains(unicodedata.normalize("NFD", "सुरक्षा क़ानून"), "क़ानून")
    assert not contains("anything", "")


def test_summary_counts_words_in_devanagari_and_arabic():
    from coding import summary

    stop = summary._stop_words()
    hindi = summary.tokenize("डॉक्टर से पूछें। डॉक्‍टर की सलाह ज़रूरी है और दवा की खुराक", stop)
    assert hindi.count("डॉक्टर") == 2  # the ZWJ spelling counts with the plain one
    assert "से" not in hindi and "और" not in hindi and "खुराक" in hindi  # stop words; a whole word with its vowel signs
    arabic = summary.tokenize("السلامةُ الطبية أولًا، السلامة في الطب من الأطباء", stop)
    assert arabic.count("السلامة") == 2 and "في" not in arabic and "من" not in arabic
    topics, _per_doc = summary.topics(["दवा दवा खुराक", "السلامة السلامة الطبية", "dose dose medicine"])
    assert {t["term"] for t in topics} >= {"दवा", "السلامة", "dose"}
