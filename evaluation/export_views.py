"""Thin views of the Evaluate II exports (researchers and facilitators read; participants 403).
Every body is streamed by workshops.exports.stream_download from the generators in
evaluation/exports/."""

from __future__ import annotations

from django.views.decorators.http import require_safe

from evaluation.exports import bundle, inspect_task, preferences, promptfoo, reference, statement, weval
from workshops.exports import stream_download
from workshops.permissions import STAFF, workshop_view

YAML = "application/yaml; charset=utf-8"
JSONL = "application/jsonl; charset=utf-8"


@require_safe
@workshop_view(roles=STAFF)
def export_weval(request, workshop, membership):
    return stream_download(request, weval.blueprint(workshop), content_type=YAML,
                           filename=f"{workshop.slug}-weval-blueprint.yml")


@require_safe
@workshop_view(roles=STAFF)
def export_inspect_task(request, workshop, membership):
    return stream_download(request, inspect_task.task_source(workshop), content_type="text/x-python; charset=utf-8",
                           filename=inspect_task.TASK_NAME)


@require_safe
@workshop_view(roles=STAFF)
def export_inspect_dataset(request, workshop, membership):
    return stream_download(request, inspect_task.dataset(workshop), content_type=JSONL,
                           filename=inspect_task.DATASET_NAME)


@require_safe
@workshop_view(roles=STAFF)
def export_promptfoo(request, workshop, membership):
    return stream_download(request, promptfoo.config(workshop), content_type=YAML, filename="promptfooconfig.yaml")


@require_safe
@workshop_view(roles=STAFF)
def export_dpo(request, workshop, membership):
    return stream_download(request, preferences.jsonl(preferences.dpo_records(workshop)), content_type=JSONL,
                           filename=f"{workshop.slug}-preferences-dpo.jsonl")


@require_safe
@workshop_view(roles=STAFF)
def export_kto(request, workshop, membership):
    return stream_download(request, preferences.jsonl(preferences.kto_records(workshop)), content_type=JSONL,
                           filename=f"{workshop.slug}-preferences-kto.jsonl")


@require_safe
@workshop_view(roles=STAFF)
def export_reference_csv(request, workshop, membership):
    return stream_download(request, reference.csv_chunks(workshop), content_type="text/csv; charset=utf-8",
                           filename=f"{workshop.slug}-reference-set.csv")


@require_safe
@workshop_view(roles=STAFF)
def export_reference_jsonl(request, workshop, membership):
    return stream_download(request, reference.jsonl_chunks(workshop), content_type=JSONL,
                           filename=f"{workshop.slug}-reference-set.jsonl")


@require_safe
@workshop_view(roles=STAFF)
def export_data_statement(request, workshop, membership):
    return stream_download(request, statement.statement(workshop), content_type="text/markdown; charset=utf-8",
                           filename=f"{workshop.slug}-data-statement.md")


@require_safe
@workshop_view(roles=STAFF)
def export_bundle(request, workshop, membership):
    return stream_download(request, bundle.archive(request, workshop), content_type="application/zip",
                           filename=f"{workshop.slug}-all-exports.zip")
