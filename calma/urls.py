from django.contrib import admin
from django.urls import include, path

from api.api import api as api_v1
from workshops import views as workshop_views

urlpatterns = [
    path("healthz", workshop_views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
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
