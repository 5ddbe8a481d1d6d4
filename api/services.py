"""Personal API tokens: created and revoked by their owner, stored as a SHA-256 hash only."""

from __future__ import annotations

import hashlib
import secrets

from django.db import transaction
from django.utils import timezone

from api.models import ApiToken

PREFIX = "calma_"


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@transaction.atomic
def token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """A new token; the raw value is returned once and never stored."""
    raw = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name.strip()[:100] or "token", prefix=raw[:12],
                                    key_hash=token_hash(raw))
    return token, raw


@transaction.atomic
def token_revoke(*, token: ApiToken, by) -> ApiToken:
    if token.user_id != by.pk:
        raise PermissionError("not your token")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def token_used(*, token: ApiToken) -> None:
    """Last use, written at most once a minute per token."""
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
