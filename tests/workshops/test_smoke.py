import pytest

from tests.factories import make_participant, make_workshop

pytestmark = pytest.mark.django_db


def test_healthz_reports_components(client):
    response = client.get("/healthz")
    data = response.json()
    assert response.status_code == 200, data
    assert data["database"] == {"ok": True, "vendor": "postgresql"}
    assert data["channel_layer"]["ok"] and data["channel_layer"]["backend"] == "RedisChannelLayer"
    assert data["broker"]["ok"]


def test_participant_sees_workshop_home(client_for):
    workshop = make_workshop()
    participant = make_participant(workshop)
    response = client_for(participant).get(f"/w/{workshop.slug}/")
    assert response.status_code == 200
    assert "Read the orientation" in response.content.decode()
