from django.urls import path

from studies import views

app_name = "studies"

urlpatterns = [
    path("studies/", views.index, name="index"),
    path("studies/new/", views.study_create, name="create"),
    path("studies/<slug:study_slug>/", views.detail, name="detail"),
    path("studies/<slug:study_slug>/compare/", views.compare, name="compare"),
    path("studies/<slug:study_slug>/compare/suggest/", views.suggest, name="suggest"),
    path("studies/<slug:study_slug>/compare/matches/<int:match_id>/", views.decide, name="decide"),
    path("studies/<slug:study_slug>/compare/export.csv", views.export_csv, name="export_csv"),
    path("studies/<slug:study_slug>/compare/export.json", views.export_json, name="export_json"),
    path("studies/<slug:study_slug>/labels/", views.labels, name="labels"),
    path("w/<slug:slug>/template/", views.from_template, name="from_template"),
]
