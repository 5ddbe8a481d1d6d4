"""Every model of the product's apps is in the Django admin, and its list page opens."""

import pytest
from django.apps import apps
from django.contrib import admin

from tests.factories import UserFactory

APPS = ("workshops", "llm_gateway", "coding", "discussion")
MODELS = [m for m in apps.get_models() if m._meta.app_label in APPS and not m._meta.auto_created]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_model_is_registered_in_admin(model):
    assert admin.site.is_registered(model), f"{model._meta.label} is not in the admin"


@pytest.mark.django_db
def test_admin_list_pages_open_for_staff(client):
    user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(user)
    for model in MODELS:
        if not admin.site.is_registered(model):
            continue
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        assert client.get(url).status_code == 200, url
