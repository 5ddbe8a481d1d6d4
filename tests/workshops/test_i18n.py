"""The interface in every shipped language (issue 13, section 2).

- Every template's human text is inside {% translate %} / {% blocktranslate %} (a scan of the
  templates' text nodes and human-read attributes; a small allow-list for symbols and names).
- Every participant-facing msgid has a translation in every shipped catalogue; facilitator
  pages at least in Hindi and Spanish (FACILITATOR_LANGUAGES).
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
    "evaluation/staff_links.html",
}
FACILITATOR_LANGUAGES = ("hi", "es")
# Python modules whose strings only facilitators, researchers or the admin read (model
# verbose names of configuration models, app descriptions, the default Familiarize content that
# is created in the workshop's language, the judge's prompts). Strings of every other module are
# participant-facing (stage names, form labels, error messages).
FACILITATOR_MODULES = ("apps.py", "admin.py", "workshops/defaults.py", "llm_gateway/forms.py",
                       "llm_gateway/models.py", "evaluation/judging.py", "evaluation/models.py")

# Text that is the same in every language: the product's name, symbols, separators.
ALLOWED_TEXT = {"CALMA", "×", "·", "—", "–", "…", "→", "←", "↑", "↓", "✓", "✕", "%", "/", "(", ")", ":", "#", "A", "B"}
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
        return not path.endswith(FACILITATOR_MODULES)

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
def test_every_template_string_is_translated_for_facilitators(language):
    missing = [
        e.msgid for e in _catalogue(language)
        if any(p.startswith("templates/") for p, _l in e.occurrences) and not _translated(e)
    ]
    assert not missing, f"{language}: {len(missing)} template strings without a translation, e.g. {missing[:5]}"


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
