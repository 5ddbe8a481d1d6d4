"""The one label key (workshops.text.normalize) and cleaned form (clean)."""

import unicodedata

from workshops.text import clean, normalize


def test_normalize_applies_nfc_whitespace_and_casefold():
    composed, decomposed = "Café", unicodedata.normalize("NFD", "Café")
    assert composed != decomposed
    assert normalize(composed) == normalize(decomposed) == "café"
    assert normalize("  Too\tlong \n answer ") == "too long answer"
    assert normalize("Straße") == normalize("STRASSE") == "strasse"
    assert normalize(None) == "" and normalize("   ") == ""


def test_clean_keeps_case_and_is_what_keys_are_made_from():
    text = unicodedata.normalize("NFD", "  Ünïcode   Label ")
    assert clean(text) == "Ünïcode Label" and unicodedata.is_normalized("NFC", clean(text))
    assert normalize(text) == clean(text).casefold()


def test_code_keys_match_the_discussion_keys():
    from coding.services import normalize_code_text
    from discussion import selectors

    display, key = normalize_code_text(unicodedata.normalize("NFD", "Émigré  VIEW"))
    assert display == "Émigré VIEW" and key == selectors.normalize(display) == "émigré view"
