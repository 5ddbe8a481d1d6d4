from django.urls import path

from coding import views

app_name = "coding"

P = "w/<slug:slug>/reflect/"

urlpatterns = [
    path(P, views.index, name="index"),
    path(P + "c/<int:conversation_id>/", views.transcript, name="transcript"),
    path(P + "annotations/", views.annotation_create, name="annotation_create"),
    path(P + "annotations/<int:pk>/codes/", views.annotation_add_code, name="annotation_add_code"),
    path(P + "annotations/<int:pk>/codes/<int:code_id>/remove/", views.annotation_remove_code,
         name="annotation_remove_code"),
    path(P + "annotations/<int:pk>/memo/", views.annotation_memo, name="annotation_memo"),
    path(P + "annotations/<int:pk>/delete/", views.annotation_delete, name="annotation_delete"),
    path(P + "attributes/", views.focus, name="focus"),
    path(P + "attributes/new/", views.attribute_create, name="attribute_create"),
    path(P + "attributes/<int:pk>/", views.attribute_update, name="attribute_update"),
    path(P + "attributes/<int:pk>/delete/", views.attribute_delete, name="attribute_delete"),
    path(P + "attributes/<int:pk>/codes/", views.attribute_add_code, name="attribute_add_code"),
    path(P + "attributes/<int:pk>/codes/<int:code_id>/remove/", views.attribute_remove_code,
         name="attribute_remove_code"),
    path(P + "attributes/<int:pk>/excerpts/", views.attribute_excerpts, name="attribute_excerpts"),
    path(P + "codes/<int:pk>/", views.code_update, name="code_update"),
    path(P + "codes/<int:pk>/delete/", views.code_delete, name="code_delete"),
    path(P + "baseline/", views.compare, name="compare"),
    path(P + "summary/", views.summary, name="summary"),
    path(P + "summary/generate/", views.summary_generate, name="summary_generate"),
    path(P + "export/annotations.csv", views.export_annotations, name="export_annotations"),
    path(P + "export/codebook.csv", views.export_codebook, name="export_codebook"),
    path(P + "export/focused-codes.csv", views.export_focused, name="export_focused"),
    path(P + "export/codebook.qdc", views.export_qdc, name="export_qdc"),
    path(P + "export/project.qdpx", views.export_qdpx, name="export_qdpx"),
]
