"""Logging in: login throttling (django-axes handler) and personal return codes.

Throttling — one mechanism for passwords and return codes. django-axes records every failed
`authenticate()` call (AccessAttempt rows, keyed by username, address and user agent) and
refuses further attempts while a limit is reached, within LOGIN_COOLOFF_HOURS:
- per username and address: LOGIN_FAILURE_LIMIT (5) — guessing one person's password;
- per address alone: LOGIN_ADDRESS_FAILURE_LIMIT (30) — password spraying over many
  usernames, or guessing return codes. High enough that a classroom behind one NAT address
  is not locked out by ordinary typos.
The client address is the socket's unless settings say the app is behind trusted proxies
(TRUSTED_PROXY_HOPS); see calma/settings.py.

Return codes — a person who joined by link alone gets a code like ABCD-EFGH-JKLM (12
symbols of Crockford's base 32: 60 random bits) and a link /return/<code>/. Only its
SHA-256 is stored; the code is shown once. `ReturnCodeBackend` logs the person in with it.
"""

from __future__ import annotations

import hashlib
import secrets

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db.models import Sum

# Crockford's base 32: no I, L, O, U (they read as 1, 1, 0 and invite words).
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_READ_AS = str.maketrans({"I": "1", "L": "1", "O": "0"})
CODE_LENGTH = 12


def return_code_new() -> str:
    """A fresh code, grouped for reading aloud: ABCD-EFGH-JKLM."""
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i:i + 4] for i in range(0, CODE_LENGTH, 4))


def return_code_normalize(code: str) -> str | None:
    """What a person typed, as the canonical 12 symbols; None when it cannot be a code."""
    cleaned = "".join(ch for ch in (code or "").upper() if ch not in " -\t\r\n").translate(_READ_AS)
    if len(cleaned) != CODE_LENGTH or any(ch not in _ALPHABET for ch in cleaned):
        return None
    return cleaned


def return_code_hash(code: str) -> str:
    """SHA-256 of the normalised code (60 random bits: a slow hash would add nothing)."""
    normalized = return_code_normalize(code)
    if normalized is None:
        raise ValueError("not a return code")
    return hashlib.sha256(("calma-return-code:" + normalized).encode()).hexdigest()


class ReturnCodeBackend(ModelBackend):
    """`authenticate(request, return_token=...)` (a "token" key: Django masks it in signals): the person whose code this is."""

    def authenticate(self, request, return_token=None, **kwargs):
        if return_token is None or kwargs.get("username") is not None:
            return None
        from workshops.models import ReturnCode

        if return_code_normalize(return_token) is None:
            # Still hash something: a malformed code costs the same as a wrong one.
            return_code_hash("0" * CODE_LENGTH)
            return None
        found = ReturnCode.objects.select_related("user").filter(code_hash=return_code_hash(return_token)).first()
        if found is None or not self.user_can_authenticate(found.user):
            return None
        return found.user


def throttle_username(request, credentials=None) -> str | None:
    """The username axes records (AXES_USERNAME_CALLABLE): as typed, cut to fit its column.

    Any login form (ours, the admin's) may pass an over-long or NUL-carrying name to
    authenticate(); recording it as is raised a database error (a 500)."""
    if credentials:
        username = credentials.get("username")
    else:
        username = getattr(request, "POST", {}).get("username")
    if not isinstance(username, str):
        return None
    return username.replace("\0", "")[:255]


class LoginThrottleHandler(AxesDatabaseHandler):
    """django-axes' database handler with two limits (see the module docstring).

    AXES_LOCKOUT_PARAMETERS is [["username", "ip_address"], "ip_address"]; axes compares the
    largest count of those against one limit, which cannot give an address a higher limit
    than a username. Here the username's own count is compared with LOGIN_FAILURE_LIMIT and
    the address's count with LOGIN_ADDRESS_FAILURE_LIMIT; an address over its limit reports
    the username limit, so axes' own lockout path (signal, 429 page) runs unchanged.
    """

    def _counts(self, request, credentials) -> tuple[int, int]:
        per_user, per_address = (
            attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        )
        if get_client_username(request, credentials) is None:
            per_user = 0  # return codes: only the address limit applies
        return per_user, per_address

    def get_failures(self, request, credentials=None) -> int:
        per_user, per_address = self._counts(request, credentials)
        if per_address >= settings.LOGIN_ADDRESS_FAILURE_LIMIT:
            return max(per_user, settings.AXES_FAILURE_LIMIT)
        return per_user

    def reset_user_attempts(self, request, credentials=None) -> int:
        """A successful login clears that username's failures from that address, and no
        more: one valid account must not reset the address's count for a password sprayer."""
        username_and_address = self.get_user_attempts(request, credentials)[0]
        count, _ = username_and_address.delete()
        return count


def generated_username() -> str:
    """A login name nobody chose or will type (people who join by link never see it)."""
    User = get_user_model()
    while True:
        name = "member-" + secrets.token_hex(6)
        if not User.objects.filter(username=name).exists():
            return name
