from django.urls import include, path

from evaluation import comparison_views, export_views, views

app_name = "evaluation"

patterns = [
    path("", views.overview, name="overview"),
    path("rubrics/<int:axis_id>/", views.rubric_edit, name="rubric_edit"),
    path("rubrics/draft/", views.rubric_draft, name="rubric_draft"),
    path("rate/", views.rate_start, name="rate_start"),
    path("rate/<int:position>/", views.rate, name="rate"),
    path("rate/pairs/<int:position>/", views.rate_pair, name="rate_pair"),
    path("export/pair-ratings.csv", views.export_pair_ratings, name="export_pair_ratings"),
    path("results/", views.results, name="results"),
    path("judges/", views.judges, name="judges"),
    path("export/ratings.csv", views.export_ratings, name="export_ratings"),
    path("export/rubrics.json", views.export_rubrics, name="export_rubrics"),
    # Evaluate II exports (evaluation/exports/, evaluation/export_views.py)
    path("export/weval-blueprint.yml", export_views.export_weval, name="export_weval"),
    path("export/inspect/calma_task.py", export_views.export_inspect_task, name="export_inspect_task"),
    path("export/inspect/dataset.jsonl", export_views.export_inspect_dataset, name="export_inspect_dataset"),
    path("export/promptfooconfig.yaml", export_views.export_promptfoo, name="export_promptfoo"),
    path("export/preferences-dpo.jsonl", export_views.export_dpo, name="export_dpo"),
    path("export/preferences-kto.jsonl", export_views.export_kto, name="export_kto"),
    path("export/reference-set.csv", export_views.export_reference_csv, name="export_reference_csv"),
    path("export/reference-set.jsonl", export_views.export_reference_jsonl, name="export_reference_jsonl"),
    path("export/data-statement.md", export_views.export_data_statement, name="export_data_statement"),
    path("export/all.zip", export_views.export_bundle, name="export_bundle"),
]

# Model comparison (Evaluate II): evaluation/comparison.py, evaluation/comparison_views.py.
patterns += [
    path("compare/", comparison_views.compare_list, name="compare_list"),
    path("compare/<int:comparison_id>/", comparison_views.compare_detail, name="compare_detail"),
]

urlpatterns = [path("w/<slug:slug>/evaluate/", include(patterns))]
