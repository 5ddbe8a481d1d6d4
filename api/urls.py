from django.urls import path, re_path

from api import views
from api.api import api

app_name = "api"

urlpatterns = [
    path("api/docs/", views.docs, name="docs"),
    path("account/tokens/", views.tokens, name="tokens"),
    path("account/tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
    # The API's routes (names "api:v1:<operation>") and a JSON 404 for any other address under it.
    path("api/v1/", api.urls),
    re_path(r"^api/v1/(?P<rest>.*)$", views.not_found, name="not_found"),
]

