"""The affinity map of labels in several languages: the facilitator is told which embedding placed them."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from discussion import mapping, services
from tests.browser.conftest import login
from tests.discussion.conftest import add_code, build
from tests.factories import PASSWORD

pytestmark = [pytest.mark.usefixtures("sync_orm_until_database_teardown"), pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = "/tmp/discuss"
LABELS = ["medical safety", "السلامة الطبية", "चिकित्सा सुरक्षा", "usalama wa kimatibabu", "تحيز استعماري",
          "औपनिवेशिक पूर्वाग्रह", "كلمات بسيطة للأطفال", "बच्चों के लिए सरल शब्द"]


@pytest.mark.timeout(300)
def test_facilitator_sees_the_multilingual_embedding_of_a_mixed_language_map(django_db_setup, new_page, transactional_db):
    d = build()
    for i, text in enumerate(LABELS):
        add_code(d.people[i % 3], text)
    result = mapping.compute(d.workshop)
    assert result.version.params["embedding"]["backend"] == "e5"
    services.session_set_segment(workshop=d.workshop, by=d.facilitator, segment=2)
    url = f"/w/{d.workshop.slug}/discuss/"

    fac = new_page()
    login(fac, d.facilitator.user.username, PASSWORD)
    fac.goto(url)
    note = fac.locator("#map-embedding")
    expect(note).to_be_visible(timeout=30000)
    expect(note).to_contain_text("multilingual-e5-small")
    expect(note).to_contain_text("labels with the same meaning sit together whatever their language")
    fac.locator(".map-list summary").click()
    for label in ("السلامة الطبية", "चिकित्सा सुरक्षा", "medical safety"):
        expect(fac.locator("#map-list")).to_contain_text(label)
    os.makedirs(SHOTS, exist_ok=True)
    fac.locator("#affinity").screenshot(path=f"{SHOTS}/map-languages-facilitator.png")

    participant = new_page(viewport={"width": 390, "height": 844})
    login(participant, d.people[0].user.username, PASSWORD)
    participant.goto(url)
    expect(participant.locator("#affinity-map")).to_contain_text("السلامة الطبية", timeout=30000)
    assert participant.locator("#map-embedding").count() == 0  # facilitators only
