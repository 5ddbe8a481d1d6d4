from django.contrib import admin
from django.urls import include, path

from api.api import api as api_v1
from calma import views as calma_views
from workshops import views as workshop_views

urlpatterns = [
    path("healthz", calma_views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # The header's language picker (replaces Django's set_language: it also records the
    # member's choice for the workshop they are in).
    path("i18n/setlang/", workshop_views.language_set, name="set_language"),
    path("", include("workshops.urls")),
    path("", include("llm_gateway.urls")),
    path("", include("coding.urls")),
    path("", include("discussion.urls")),
    path("", include("evaluation.urls")),
    path("", include("studies.urls")),
    path("api/v1/", api_v1.urls),  # the JSON API (names "api_v1:<operation>"), before api.urls' JSON 404
    path("", include("api.urls")),
]

handler403 = "workshops.views.error_403"
handler404 = "workshops.views.error_404"
