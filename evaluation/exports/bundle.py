"""One download: a zip of every export of the workshop, written while it is sent (constant memory:
zipfile writes to an unseekable sink with data descriptors, and each member's content is pulled
from its generator a chunk at a time), with a README that lists each file and its columns.

The Evaluate II exports are produced here directly; every other export registered with
workshops.exports.register is produced by calling its own view (same permission check, same
content as its link), so a new export registered by any app is included without changes here."""

from __future__ import annotations

import copy
import csv
import io
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from asgiref.sync import async_to_sync
from django.http import HttpRequest
from django.urls import resolve
from django.utils import timezone

from evaluation.exports import common, inspect_task, preferences, promptfoo, reference, statement, weval
from workshops import exports as registry
from workshops.models import Workshop

OWN_URL_NAMES = {
    "evaluation:export_weval", "evaluation:export_inspect_task", "evaluation:export_inspect_dataset",
    "evaluation:export_promptfoo", "evaluation:export_dpo", "evaluation:export_kto",
    "evaluation:export_reference_csv", "evaluation:export_reference_jsonl", "evaluation:export_data_statement",
    "evaluation:export_bundle",
}


@dataclass
class Member:
    name: str
    description: str
    chunks: Iterable
    columns: list[tuple[str, str]] = field(default_factory=list)
    capture_header: bool = False  # a CSV whose first line names the columns
    error: str = ""


def own_members(workshop: Workshop) -> list[Member]:
    s = workshop.slug
    return [
        Member("DATA_STATEMENT.md", "Data statement: deployment context, who took part (counts and roles), process "
               "and dates, rubric versions, agreement figures, known limitations.", statement.statement(workshop)),
        Member(f"weval/{s}-blueprint.yml", "Weval blueprint (YAML): a header document, then the workshop's prompts "
               "with should / should_not points from the rubrics.", weval.blueprint(workshop),
               [("title, description, tags, system", "header document"),
                ("id", "'<slug>-m<message_id>'"), ("prompt | messages", "the question, or the conversation up to it"),
                ("citation", "workshop, conversation and message id"),
                ("should / should_not", "points {point, citation}; citation names axis, rubric and version")]),
        Member("inspect/calma_task.py", "Inspect AI task (run: inspect eval calma_task.py --model ...).",
               inspect_task.task_source(workshop)),
        Member("inspect/dataset.jsonl", "Inspect AI dataset: one sample per (prompt, axis).",
               inspect_task.dataset(workshop), inspect_task.DATASET_FIELDS),
        Member("promptfoo/promptfooconfig.yaml", "promptfoo config: prompts, providers to set, one llm-rubric "
               "assertion per axis (defaultTest), one test per prompt.", promptfoo.config(workshop),
               [("description", "the workshop"), ("prompts", "one chat prompt sending vars.messages"),
                ("providers", "placeholder: set the models to test"),
                ("defaultTest.options.provider", "placeholder: set the grader model"),
                ("defaultTest.assert[]", "{type: llm-rubric, metric: axis_<axis_id>, value: rubric, threshold: 0.75}"),
                ("tests[]", "{description, vars.messages, metadata: workshop, prompt_id, message_id, "
                            "conversation_id, is_baseline}")]),
        Member("preferences/preferences-dpo.jsonl", "Preference pairs {prompt, chosen, rejected} (conversational "
               "format) from compare-mode choices and pairwise ratings.",
               preferences.jsonl(preferences.dpo_records(workshop)), preferences.DPO_FIELDS),
        Member("preferences/preferences-kto.jsonl", "Unpaired preferences {prompt, completion, label} from "
               "per-axis ratings above (true) or below (false) the midpoint 3.",
               preferences.jsonl(preferences.kto_records(workshop)), preferences.KTO_FIELDS),
        Member("reference/reference-set.csv", "The human reference set: every rating and judge score, one row per "
               "(answer, axis, rater).", reference.csv_chunks(workshop), reference.REFERENCE_FIELDS),
        Member("reference/reference-set.jsonl", "The human reference set, same fields as the CSV.",
               reference.jsonl_chunks(workshop), reference.REFERENCE_FIELDS),
    ]


def _filename(response, fallback: str) -> str:
    disposition = response.get("Content-Disposition", "")
    if 'filename="' in disposition:
        return disposition.split('filename="', 1)[1].split('"', 1)[0]
    return fallback


def _sync_chunks(response) -> Iterator[bytes]:
    if not getattr(response, "streaming", False):
        yield response.content
        return
    if not getattr(response, "is_async", False):
        yield from response.streaming_content
        return
    # An async generator (e.g. Interact's messages CSV) is drained in one event loop run (a loop
    # closed between chunks would finalise it) into a spooled file: memory stays under SPOOL_BYTES,
    # the rest goes to disk, and the zip reads it back in pieces.
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        async_to_sync(_drain)(response.streaming_content, spool)
        spool.seek(0)
        while chunk := spool.read(64 * 1024):
            yield chunk


SPOOL_BYTES = 256 * 1024  # rolling over to disk copies the buffer once: about twice this at the peak


async def _drain(content, spool) -> None:
    async for chunk in content:
        spool.write(chunk if isinstance(chunk, bytes) else str(chunk).encode("utf-8"))


def _subrequest(request, path: str) -> HttpRequest:
    sub = HttpRequest()
    sub.method = "GET"
    sub.path = sub.path_info = path
    sub.META = {k: v for k, v in getattr(request, "META", {}).items() if isinstance(v, str)}
    sub.META.update({"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": ""})
    sub.user = request.user
    if hasattr(request, "session"):
        sub.session = request.session
    sub.LANGUAGE_CODE = getattr(request, "LANGUAGE_CODE", None)
    sub.COOKIES = copy.copy(getattr(request, "COOKIES", {}))
    return sub


def registered_members(request, workshop: Workshop) -> Iterator[Member]:
    """The other apps' registered exports, each produced by its own view."""
    for export in registry.available(workshop):
        url = export["url"]
        try:
            match = resolve(url)
        except Exception:  # noqa: BLE001 - a registered link that does not resolve is reported in the README
            yield Member(f"exports/{url.strip('/').replace('/', '-')}", str(export["description"]), (),
                         error="its link does not resolve")
            continue
        if match.view_name in OWN_URL_NAMES:
            continue
        sub = _subrequest(request, url)
        sub.resolver_match = match
        try:
            response = match.func(sub, *match.args, **match.kwargs)
        except Exception as error:  # noqa: BLE001 - one failing export must not cost the whole zip
            yield Member(f"exports/{match.url_name}", f"{export['title']}: {export['description']}", (),
                         error=f"could not be produced ({type(error).__name__})")
            continue
        if response.status_code != 200:
            yield Member(f"exports/{match.url_name}", f"{export['title']}: {export['description']}", (),
                         error=f"not available (HTTP {response.status_code})")
            continue
        content_type = response.get("Content-Type", "")
        fallback = f"{workshop.slug}-{match.url_name}" + (".html" if content_type.startswith("text/html") else "")
        name = _filename(response, fallback)
        yield Member(f"exports/{name}", f"{export['title']}: {export['description']}", _sync_chunks(response),
                     capture_header=content_type.startswith("text/csv"))


def _header_columns(first: bytes) -> list[tuple[str, str]]:
    line = first.decode("utf-8", "replace").lstrip("\ufeff").splitlines()[0] if first else ""
    try:
        names = next(csv.reader(io.StringIO(line)))
    except StopIteration:
        return []
    return [(n, "") for n in names]


def readme(workshop: Workshop, written: list[Member]) -> str:
    lines = [f"# CALMA Workshops: every export of workshop `{workshop.slug}`", "",
             f"Written {timezone.now():%Y-%m-%d %H:%M} UTC. Participants appear only by pseudonym; withdrawn "
             "participants are left out of every file. Ids (axis_id, rubric_id + rubric_version, item_id, "
             "message_id, conversation_id) are the same in every file. Field-by-field documentation: "
             "docs/evaluation.md, section \"Exports\". See DATA_STATEMENT.md before publishing anything.", "",
             "## Files", ""]
    for m in written:
        lines.append(f"### `{m.name}`")
        lines.append("")
        lines.append(m.description.replace("\n", " "))
        if m.error:
            lines.append("")
            lines.append(f"**Not included: {m.error}.**")
        if m.columns:
            lines.append("")
            lines.append("| column / field | meaning |")
            lines.append("| --- | --- |")
            for name, meaning in m.columns:
                lines.append(f"| `{name}` | {meaning.replace('|', '/') or 'see docs'} |")
        lines.append("")
    lines.append("### `README.md`")
    lines.append("")
    lines.append("This file: the list of files and their columns (a data dictionary).")
    return "\n".join(lines) + "\n"


def archive(request, workshop: Workshop) -> Iterator[bytes]:
    sink = registry.ZipSink()
    written: list[Member] = []
    members = [*own_members(workshop),
               *(Member(f["name"], f["description"], f["chunks"], list(f.get("columns", [])))
                 for f in common.comparison_files(workshop))]
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive_file:
        for member in [*members, *registered_members(request, workshop)]:
            written.append(member)
            if member.error:
                continue
            with archive_file.open(registry.zip_entry(member.name), "w") as out:
                first = True
                for chunk in member.chunks:
                    data = chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)
                    if first and member.capture_header and data:
                        member.columns = _header_columns(data)
                        first = False
                    out.write(data)
                    if sink.size >= registry.BATCH_BYTES:
                        yield sink.drain()
            yield sink.drain()
        with archive_file.open(registry.zip_entry("README.md"), "w") as out:
            out.write(readme(workshop, written).encode("utf-8"))
    yield sink.drain()
