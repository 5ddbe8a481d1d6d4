from django.urls import path, re_path

from api import views

app_name = "api"

urlpatterns = [
    path("api/docs/", views.docs, name="docs"),
    path("account/tokens/", views.tokens, name="tokens"),
    path("account/tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
    # A JSON 404 for any address under /api/v1/ that no API route takes (after the API's own).
    re_path(r"^api/v1/(?P<rest>.*)$", views.not_found, name="not_found"),
]

