from django.urls import include, path

from discussion import views

app_name = "discussion"

patterns = [
    path("", views.session, name="session"),
    path("control/", views.control, name="control"),
    path("picks/", views.picks, name="picks"),
    path("ratings/", views.ratings, name="ratings"),
    path("state.json", views.board_state, name="state"),
    path("map.json", views.map_json, name="map"),
    path("excerpts/", views.excerpts, name="excerpts"),
    path("results/", views.results, name="results"),
    path("report/", views.report, name="report"),
    path("export/derived-axes.csv", views.export_csv, name="export_csv"),
    path("export/derived-axes.json", views.export_json, name="export_json"),
]

urlpatterns = [path("w/<slug:slug>/discuss/", include(patterns))]
