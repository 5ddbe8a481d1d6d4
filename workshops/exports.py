"""The researcher page's list of exports (each app registers its own in AppConfig.ready()), the
one CSV writer every export uses, the one helper that sends an export as a streamed download, and
the write-only sink a zip is written to while it is sent."""

from __future__ import annotations

import csv
import numbers
import zipfile
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from workshops.permissions import STAFF, workshop_view


@dataclass(frozen=True)
class Export:
    title: str
    description: str
    url: Callable  # url(workshop) -> str


_exports: list[Export] = []


def register(title: str, description: str, url: Callable | str) -> None:
    """`url`: url(workshop) -> str, or the name of a URL that takes the workshop's slug."""
    if isinstance(url, str):
        url_name = url

        def url(workshop):
            return reverse(url_name, args=[workshop.slug])

    _exports.append(Export(title, description, url))


def available(workshop) -> list[dict]:
    return [{"title": e.title, "description": e.description, "url": e.url(workshop)} for e in _exports]


# --- CSV ---------------------------------------------------------------------------------------
# Every field quoted, CRLF line ends, UTF-8 with a byte-order mark (Excel then reads Devanagari,
# Arabic, Chinese correctly). A text cell that a spreadsheet would run as a formula (it begins
# with = + - @, a tab or a carriage return) gets a leading apostrophe; numbers stay numbers (a
# negative number is not a formula), None is an empty cell, anything else is written as str().
# Not defusedcsv: it leaves cells beginning with a tab or a carriage return as they are, and
# rewrites every "|" inside a neutralised cell as "\|" (our lists are joined with " | ").

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"
CSV = "text/csv; charset=utf-8"


def csv_cell(value):
    """One value as a safe CSV cell (see above)."""
    if value is None:
        return ""
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


class _Echo:
    def write(self, value):
        return value


def csv_row(values: Iterable) -> str:
    """One CSV line (for exports that produce their rows themselves, e.g. page by page)."""
    writer = csv.writer(_Echo(), quoting=csv.QUOTE_ALL, lineterminator="\r\n")  # cheap; no state shared by threads
    return writer.writerow([csv_cell(v) for v in values])


def stream_csv(columns: list[str], rows: Iterable[Iterable], *, bom: bool = True) -> Iterator[str]:
    """The CSV of `rows` under the header `columns`, line by line (for stream_download)."""
    yield (BOM if bom else "") + csv_row(columns)
    for row in rows:
        yield csv_row(row)


# --- Streamed downloads ---------------------------------------------------------------------------

BATCH_BYTES = 64 * 1024


def stream_download(request, chunks: Iterable[str | bytes], *, content_type: str,
                    filename: str) -> StreamingHttpResponse:
    """An attachment whose body is produced while it is sent, in constant memory.

    Under ASGI (uvicorn, daphne) Django reads a *synchronous* iterator to its end before sending
    a byte (`StreamingHttpResponse.__aiter__` falls back to `sync_to_async(list)`), so a large
    export would be built in memory. Here the iterator is advanced in the sync thread (where its
    database cursor lives) a batch of about 64 KiB at a time and each batch is sent as it comes.
    Under WSGI and in the test client the plain iterator is used as it is.
    """
    content = _async_batches(iter(chunks)) if isinstance(request, ASGIRequest) else chunks
    response = StreamingHttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _next_batch(iterator: Iterator, limit: int = BATCH_BYTES) -> bytes | None:
    parts, size = [], 0
    for part in iterator:
        if isinstance(part, str):
            part = part.encode("utf-8")
        parts.append(part)
        size += len(part)
        if size >= limit:
            break
    return b"".join(parts) if parts else None


async def _async_batches(iterator: Iterator) -> AsyncIterator[bytes]:
    step = sync_to_async(_next_batch, thread_sensitive=True)
    try:
        while (batch := await step(iterator)) is not None:
            yield batch
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:  # a client that went away: end the generator (and its cursor) in its thread
            await sync_to_async(close, thread_sensitive=True)()


# --- Download views ------------------------------------------------------------------------------

def download_view(body: Callable, *, content_type: str, filename: str, method: Callable = require_safe) -> Callable:
    """A staff-only view of a workshop that sends `body(workshop)` as the attachment `filename`
    (formatted with the workshop's `slug`) through stream_download. `method` is the HTTP method
    decorator (default: require_safe, i.e. GET and HEAD)."""
    def view(request, workshop, membership):
        return stream_download(request, body(workshop), content_type=content_type,
                               filename=filename.format(slug=workshop.slug))

    return method(workshop_view(roles=STAFF)(view))


def csv_download_view(columns: list[str], rows: Callable, *, filename: str, bom: bool = True,
                      method: Callable = require_safe) -> Callable:
    """download_view for a CSV: `rows(workshop)` under the header `columns` (stream_csv)."""
    return download_view(lambda workshop: stream_csv(columns, rows(workshop), bom=bom),
                         content_type=CSV, filename=filename, method=method)


# --- Zips written while they are sent ------------------------------------------------------------


class ZipSink:
    """A write-only, unseekable file for zipfile.ZipFile(sink, "w"): zipfile then writes a data
    descriptor after each member instead of seeking back, so nothing but the central directory
    (one small record per file) stays behind. What is written waits here until the generator
    producing the zip hands it on with drain(); `size` says how much is waiting."""

    def __init__(self):
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def flush(self):
        pass

    def drain(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        self.size = 0
        return data


def zip_entry(name: str) -> zipfile.ZipInfo:
    """A deflated zip member named `name`, dated now."""
    info = zipfile.ZipInfo(name, date_time=timezone.now().timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    return info
