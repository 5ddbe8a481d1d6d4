"""Answers that failed before upstream error text was kept out of the database stored
"HTTP <status> from <endpoint>: <provider text>" or "<endpoint> reported an error: <provider
text>", and the provider text could hold a masked echo of the API key. Keep the short reason only
(llm_gateway.client: the provider text goes to the server log, redacted, never to the database)."""

import re

from django.db import migrations
from django.db.models import Q

_HTTP = re.compile(r"^(HTTP \d{3} from [^:\s]+): ")
_STREAM = re.compile(r"^(\S+) reported an error: ")


def short_reason(error: str) -> str | None:
    match = _HTTP.match(error)
    if match:
        return match.group(1)
    match = _STREAM.match(error)
    if match:
        return f"{match.group(1)} reported an error in the stream"
    return None


def forwards(apps, schema_editor):
    Message = apps.get_model("llm_gateway", "Message")
    qs = Message.objects.filter(Q(error__startswith="HTTP ") | Q(error__contains=" reported an error: "))
    batch = []
    for message in qs.only("id", "error").iterator(chunk_size=500):
        reason = short_reason(message.error)
        if reason is not None and reason != message.error:
            message.error = reason
            batch.append(message)
        if len(batch) >= 500:
            Message.objects.bulk_update(batch, ["error"])
            batch = []
    if batch:
        Message.objects.bulk_update(batch, ["error"])


class Migration(migrations.Migration):
    dependencies = [
        ("llm_gateway", "0004_message_finish_reason"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
