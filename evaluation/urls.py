from django.urls import include, path

from evaluation import comparison_views, views

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
]

# Model comparison (Evaluate II): evaluation/comparison.py, evaluation/comparison_views.py.
patterns += [
    path("compare/", comparison_views.compare_list, name="compare_list"),
    path("compare/<int:comparison_id>/", comparison_views.compare_detail, name="compare_detail"),
]

urlpatterns = [path("w/<slug:slug>/evaluate/", include(patterns))]
