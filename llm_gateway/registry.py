"""The endpoint registry: which OpenAI-compatible model endpoints this deployment may use.

Configured by the deployment, never in the database: `LLM_ENDPOINTS` (JSON text) or
`LLM_ENDPOINTS_FILE` (path to a JSON file), a list of objects:

    {"key": "llama-70b",                       # required, unique, [a-z0-9._-]
     "name": "Llama 3.1 70B (Together)",       # required, shown to facilitators
     "base_url": "https://api.together.xyz/v1",# required, http(s), ends before /chat/completions
     "model": "meta-llama/Llama-3.1-70B-Instruct-Turbo",  # required
     "provider": "together",                   # optional: openai mistral groq vllm ollama
                                               #   llamacpp together fireworks tgi litellm generic
     "api_key_env": "TOGETHER_API_KEY",        # optional: NAME of the env variable with the key
     "params": {"temperature": 0.7},           # optional default parameters
     "max_tokens": 800,                        # optional
     "timeouts": {"connect": 5, "first_token": 60, "total": 180},  # optional, seconds
     "fallback": "llama-8b-groq"}              # optional: key of another endpoint

A malformed registry stops the process at start (ImproperlyConfigured), and so does an
`api_key_env` that names a variable the environment does not have (a typo).

Keys, deliberately, are not settings: each endpoint names its own variable (one secret per
provider, rotated on its own) and the value is read from os.environ when a request is made
(`Endpoint.api_key()`, a dict look-up). It is never copied into the registry's cached objects,
settings or anything else long-lived that a debug page, an error reporter's captured locals or
a repr could show; it is never stored, rendered or logged (llm_gateway.client.redact removes
echoes of it from upstream errors). The process environment does not change after start, so
reading at call time costs nothing in consistency; the start-time check above gives the early
failure that parsing in calma/settings.py would.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PROVIDERS = {
    "openai", "mistral", "groq", "vllm", "ollama", "llamacpp", "together", "fireworks", "tgi",
    "litellm", "generic",
}
_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_ENV_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_ALLOWED_FIELDS = {
    "key", "name", "base_url", "model", "provider", "api_key_env", "params", "max_tokens",
    "timeouts", "fallback", "description",
}
# Parameters a facilitator's deployment may set by default; anything else is refused at start
# so a typo does not silently turn into a 422 from the provider in the middle of a workshop.
_ALLOWED_PARAMS = {
    "temperature", "top_p", "max_tokens", "presence_penalty", "frequency_penalty", "seed",
    "stop", "random_seed", "safe_prompt", "top_k", "min_p", "repeat_penalty",
}


@dataclass(frozen=True)
class Endpoint:
    key: str
    name: str
    base_url: str
    model: str
    provider: str = "generic"
    api_key_env: str = ""
    params: dict = field(default_factory=dict)
    max_tokens: int | None = None
    connect_timeout: float = 5.0
    first_token_timeout: float = 60.0
    total_timeout: float = 180.0
    fallback: str = ""
    description: str = ""

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def api_key(self) -> str:
        """The key from the environment at call time ('' when none is configured; see the module
        docstring for why it is not kept on the object)."""
        return os.environ.get(self.api_key_env, "") if self.api_key_env else ""

    def __repr__(self) -> str:  # never leak anything key-like into logs
        return f"Endpoint(key={self.key!r}, provider={self.provider!r}, model={self.model!r})"


def _fail(index: int, message: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"LLM endpoint registry, entry {index}: {message}")


def _number(index, where, value, *, minimum=0.1, integer=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise _fail(index, f"{where} must be a {'whole ' if integer else ''}number, not {value!r}.")
    if value < minimum:
        raise _fail(index, f"{where} must be at least {minimum}, not {value!r}.")
    return value


def parse(raw: str, *, source: str = "LLM_ENDPOINTS") -> list[Endpoint]:
    """Parse and validate registry JSON; raise ImproperlyConfigured naming the problem."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ImproperlyConfigured(f"{source} is not valid JSON: {error}") from None
    if not isinstance(data, list):
        raise ImproperlyConfigured(f"{source} must be a JSON list of endpoint objects.")
    endpoints: list[Endpoint] = []
    seen: set[str] = set()
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise _fail(i, "must be a JSON object.")
        unknown = set(item) - _ALLOWED_FIELDS
        if unknown:
            raise _fail(i, f"unknown field(s) {sorted(unknown)}; allowed: {sorted(_ALLOWED_FIELDS)}.")
        for name in ("key", "name", "base_url", "model"):
            if not isinstance(item.get(name), str) or not item[name].strip():
                raise _fail(i, f"'{name}' is required and must be a non-empty string.")
        key = item["key"].strip()
        if not _KEY_RE.match(key):
            raise _fail(i, f"key {key!r} must be lower-case letters, digits, '.', '_' or '-'.")
        if key in seen:
            raise _fail(i, f"key {key!r} is used twice.")
        seen.add(key)
        url = urlparse(item["base_url"])
        if url.scheme not in ("http", "https") or not url.netloc:
            raise _fail(i, f"base_url {item['base_url']!r} must be an http(s) URL such as https://host/v1.")
        if url.path.rstrip("/").endswith("/chat/completions"):
            raise _fail(i, "base_url must stop before /chat/completions (e.g. https://host/v1).")
        provider = item.get("provider", "generic")
        if provider not in PROVIDERS:
            raise _fail(i, f"provider {provider!r} is not one of {sorted(PROVIDERS)}.")
        api_key_env = item.get("api_key_env", "")
        if api_key_env and (not isinstance(api_key_env, str) or not _ENV_RE.match(api_key_env)):
            raise _fail(i, "api_key_env must be the NAME of an environment variable (e.g. TOGETHER_API_KEY), "
                           "never the key itself.")
        if api_key_env and api_key_env not in os.environ:
            # A misspelt name fails at start, not as a 401 at a participant's first message.
            raise _fail(i, f"api_key_env names {api_key_env}, which is not set in the environment "
                           "(set it, empty if the endpoint needs no key).")
        params = item.get("params", {})
        if not isinstance(params, dict):
            raise _fail(i, "params must be an object.")
        bad = set(params) - _ALLOWED_PARAMS
        if bad:
            raise _fail(i, f"params {sorted(bad)} are not supported; allowed: {sorted(_ALLOWED_PARAMS)}.")
        max_tokens = item.get("max_tokens")
        if max_tokens is not None:
            _number(i, "max_tokens", max_tokens, minimum=1, integer=True)
        timeouts = item.get("timeouts", {})
        if not isinstance(timeouts, dict) or set(timeouts) - {"connect", "first_token", "total"}:
            raise _fail(i, "timeouts must be an object with connect, first_token and/or total (seconds).")
        for name, value in timeouts.items():
            _number(i, f"timeouts.{name}", value)
        fallback = item.get("fallback", "")
        if fallback and not isinstance(fallback, str):
            raise _fail(i, "fallback must be the key of another endpoint.")
        endpoints.append(Endpoint(
            key=key,
            name=item["name"].strip(),
            base_url=item["base_url"].strip(),
            model=item["model"].strip(),
            provider=provider,
            api_key_env=api_key_env,
            params=dict(params),
            max_tokens=max_tokens,
            connect_timeout=float(timeouts.get("connect", settings.LLM_CONNECT_TIMEOUT)),
            first_token_timeout=float(timeouts.get("first_token", settings.LLM_FIRST_TOKEN_TIMEOUT)),
            total_timeout=float(timeouts.get("total", settings.LLM_TOTAL_TIMEOUT)),
            fallback=fallback,
            description=str(item.get("description", "")),
        ))
    keys = {e.key for e in endpoints}
    for i, e in enumerate(endpoints):
        if e.fallback and e.fallback not in keys:
            raise _fail(i, f"fallback {e.fallback!r} is not the key of an endpoint in the registry.")
        if e.fallback == e.key:
            raise _fail(i, "an endpoint cannot be its own fallback.")
    return endpoints


def _raw() -> tuple[str, str]:
    if settings.LLM_ENDPOINTS and settings.LLM_ENDPOINTS_FILE:
        raise ImproperlyConfigured("Set LLM_ENDPOINTS or LLM_ENDPOINTS_FILE, not both.")
    if settings.LLM_ENDPOINTS_FILE:
        path = Path(settings.LLM_ENDPOINTS_FILE)
        try:
            return path.read_text(encoding="utf-8"), f"LLM_ENDPOINTS_FILE ({path})"
        except OSError as error:
            raise ImproperlyConfigured(f"LLM_ENDPOINTS_FILE={path} cannot be read: {error}") from None
    return settings.LLM_ENDPOINTS or "[]", "LLM_ENDPOINTS"


@lru_cache(maxsize=8)
def _load(raw: str, source: str) -> tuple[Endpoint, ...]:
    return tuple(parse(raw, source=source))


def endpoints() -> tuple[Endpoint, ...]:
    raw, source = _raw()
    return _load(raw, source)


def get(key: str) -> Endpoint | None:
    for endpoint in endpoints():
        if endpoint.key == key:
            return endpoint
    return None


def validate() -> None:
    """Called at start (AppConfig.ready): a bad registry stops the process with a clear message."""
    endpoints()
