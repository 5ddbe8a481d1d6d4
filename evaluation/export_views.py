"""Thin views of the Evaluate II exports (researchers and facilitators read; participants 403).
Every body is streamed by workshops.exports.stream_download from the generators in
evaluation/exports/."""

from __future__ import annotations

from django.views.decorators.http import require_safe

from evaluation.exports import bundle, inspect_task, preferences, promptfoo, reference, statement, weval
from workshops.exports import CSV, download_view, stream_download
from workshops.permissions import STAFF, workshop_view

YAML = "application/yaml; charset=utf-8"
JSONL = "application/jsonl; charset=utf-8"

export_weval = download_view(weval.blueprint, content_type=YAML, filename="{slug}-weval-blueprint.yml")
export_inspect_task = download_view(inspect_task.task_source, content_type="text/x-python; charset=utf-8",
                                    filename=inspect_task.TASK_NAME)
export_inspect_dataset = download_view(inspect_task.dataset, content_type=JSONL, filename=inspect_task.DATASET_NAME)
export_promptfoo = download_view(promptfoo.config, content_type=YAML, filename="promptfooconfig.yaml")
export_dpo = download_view(lambda workshop: preferences.jsonl(preferences.dpo_records(workshop)), content_type=JSONL,
                           filename="{slug}-preferences-dpo.jsonl")
export_kto = download_view(lambda workshop: preferences.jsonl(preferences.kto_records(workshop)), content_type=JSONL,
                           filename="{slug}-preferences-kto.jsonl")
export_reference_csv = download_view(reference.csv_chunks, content_type=CSV, filename="{slug}-reference-set.csv")
export_reference_jsonl = download_view(reference.jsonl_chunks, content_type=JSONL,
                                       filename="{slug}-reference-set.jsonl")
export_data_statement = download_view(statement.statement, content_type="text/markdown; charset=utf-8",
                                      filename="{slug}-data-statement.md")


@require_safe
@workshop_view(roles=STAFF)
def export_bundle(request, workshop, membership):
    return stream_download(request, bundle.archive(request, workshop), content_type="application/zip",
                           filename=f"{workshop.slug}-all-exports.zip")
