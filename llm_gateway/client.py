"""The only code that talks HTTP to model endpoints.

One shared `httpx.AsyncClient` (per event loop) speaks `POST {base_url}/chat/completions`
with `stream: true` and parses the server-sent events. Provider differences live in
`build_payload`; failures are classified in `UpstreamError`; `stream_reply` adds retries with
backoff (before the first token only), a bounded retry budget and the fallback endpoint.

Events yielded to the caller: `Attempt` (which endpoint is being tried), `Delta` (text),
`Usage` (token counts, when the endpoint reports them), `Finish` (the stream ended well).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import re
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from django.conf import settings
from httpx_sse._decoders import SSEDecoder, SSELineDecoder

from llm_gateway import registry
from llm_gateway.registry import Endpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    endpoint: Endpoint
    number: int  # 1-based, counted across retries and fallbacks


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int | None
    completion_tokens: int | None


@dataclass(frozen=True)
class Finish:
    reason: str | None
    malformed_events: int = 0


Event = Attempt | Delta | Usage | Finish


class UpstreamError(Exception):
    """A failed call, classified. `kind` is one of:

    auth (401/403), bad_request (400/404/422), rate_limited (429), server (5xx), connect,
    timeout_connect, timeout_first_token, timeout_total, stalled, upstream_error (an error
    object inside the stream), dropped (connection lost mid-stream), incomplete (the stream
    stopped without [DONE] or a finish reason), protocol (not a chat completion stream).
    """

    RETRYABLE = {"rate_limited", "server", "connect", "timeout_connect", "timeout_first_token", "dropped",
                 "incomplete", "protocol", "upstream_error"}
    CONFIGURATION = {"auth", "bad_request"}

    def __init__(self, kind: str, message: str, *, status: int | None = None, retry_after: float | None = None,
                 started: bool = False):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.started = started

    @property
    def retryable(self) -> bool:
        return not self.started and self.kind in self.RETRYABLE

    @property
    def is_configuration_error(self) -> bool:
        return self.kind in self.CONFIGURATION

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


# --- The shared client ------------------------------------------------------------------------

_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def http_client() -> httpx.AsyncClient:
    """The process's AsyncClient for the running event loop (one per loop; one in a server)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=500, max_keepalive_connections=100, keepalive_expiry=30),
            timeout=httpx.Timeout(connect=settings.LLM_CONNECT_TIMEOUT, read=None, write=30, pool=30),
            headers={"User-Agent": "calma-workshops-gateway/1"},
            follow_redirects=False,
        )
        _clients[loop] = client
    return client


async def close_client() -> None:
    loop = asyncio.get_running_loop()
    client = _clients.pop(loop, None)
    if client is not None:
        await client.aclose()


# --- Provider differences ------------------------------------------------------------------------

_NATIVE_SAMPLING = {"top_k", "min_p", "repeat_penalty"}
_MISTRAL_FIELDS = {"model", "messages", "stream", "temperature", "top_p", "max_tokens", "stop", "random_seed",
                   "safe_prompt", "presence_penalty"}
# Servers that only report usage in a stream when asked with stream_options.include_usage.
_STREAM_OPTIONS = {"openai", "vllm", "groq", "together", "fireworks", "litellm", "llamacpp", "ollama", "generic"}


def build_payload(endpoint: Endpoint, messages: list[dict], *, max_tokens: int | None = None) -> dict:
    """The request body for this endpoint's provider: only fields it accepts."""
    payload: dict = {"model": endpoint.model, "messages": [
        {"role": m["role"], "content": m["content"]} for m in messages  # never `name` (Groq 400s)
    ], "stream": True}
    params = dict(endpoint.params)
    limit = max_tokens or params.pop("max_tokens", None) or endpoint.max_tokens
    if limit:
        payload["max_tokens"] = int(limit)
    provider = endpoint.provider
    if provider == "mistral":
        if "seed" in params:
            params["random_seed"] = params.pop("seed")
        payload.update(params)
        return {k: v for k, v in payload.items() if k in _MISTRAL_FIELDS}
    params.pop("random_seed", None)
    params.pop("safe_prompt", None)
    if provider not in {"llamacpp", "vllm", "ollama", "generic"}:
        for name in _NATIVE_SAMPLING:
            params.pop(name, None)
    payload.update(params)
    if provider == "groq":
        payload["n"] = 1
    if provider in _STREAM_OPTIONS:
        payload["stream_options"] = {"include_usage": True}
    return payload


def _headers(endpoint: Endpoint) -> dict:
    headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
    key = endpoint.api_key()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# --- Upstream text: secrets out, short reasons in ----------------------------------------------
#
# A provider's error body may echo the key (whole, or masked as prefix + suffix: "sk-ab***wxyz"),
# a bearer token or other credentials. The body goes to the server log only, through redact();
# what is stored on the message and shown to staff is a short reason built from the HTTP status,
# the endpoint's key name and the provider's error code when it is a plain identifier
# ("HTTP 401 from groq (invalid_api_key)"); pages add the category (UpstreamError.kind).

_MASK = r"(?:\*{2,}|•{2,}|x{6,}|X{6,}|(?:\\u2022){2,})"
_TOKEN = r"[A-Za-z0-9_\-]"
# Authorization-style credentials and key=value pairs: the name stays, the value goes.
_CREDENTIAL = re.compile(
    r"(?i)((?:\b(?:bearer|basic)\s+)"
    r"|(?:(?:api[_-]?key|access[_-]?token|secret|password|authorization|x-api-key)[\"']?\s*[:=]\s*[\"']?"
    r"(?:(?:bearer|basic)\s+)?))"
    r"[^\s\"',;]+"
)
_KEYLIKE = re.compile(
    "|".join([
        # Provider key prefixes: sk-..., sk-proj-..., gsk_..., xai-..., hf_..., fw_..., tgp_v1_..., nvapi-...
        r"\b(?:sk|pk|rk|gsk|xai|hf|fw|tgp|nvapi|csk|sess)[-_][A-Za-z0-9_\-*.…•]{2,}",
        # A masked echo: "ab12****wxyz", "****wxyz", "abcd...wxyz", "abcd…wxyz".
        rf"{_TOKEN}*{_MASK}[A-Za-z0-9_\-.…]*",
        rf"{_TOKEN}+(?:\.{{3}}|…|\\u2026){_TOKEN}+",
        # Long hex runs and long base64/url-safe runs that mix letters and digits.
        r"\b[0-9a-fA-F]{24,}\b",
        r"(?<![A-Za-z0-9+/_\-])(?=[A-Za-z0-9+/_\-]*[0-9])(?=[A-Za-z0-9+/_\-]*[A-Za-z])[A-Za-z0-9+/_\-]{24,}={0,2}",
    ])
)
_SPLIT = re.compile(r"[^\s\"',;:()\[\]{}<>]+")
REDACTED = "[redacted]"
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,47}")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with key-like tokens replaced by [redacted]: the given secrets, any run of 8 or
    more characters of one of them, bearer tokens and key=value credentials, provider key
    prefixes (sk-, gsk_, ...), masked echoes (prefix + *** + suffix) and long hex/base64 runs."""
    text = str(text or "")
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    grams = {s[i:i + 8] for s in secrets if s and len(s) >= 8 for i in range(len(s) - 7)}
    if grams:
        text = _SPLIT.sub(lambda m: REDACTED if any(g in m.group(0) for g in grams) else m.group(0), text)
    text = _CREDENTIAL.sub(lambda m: m.group(1) + REDACTED, text)
    return _KEYLIKE.sub(lambda m: m.group(0) if m.group(0) == REDACTED else REDACTED, text)


def _redact(text: str, endpoint: Endpoint, limit: int = 1000) -> str:
    """Upstream text fit for the server log (and nothing else)."""
    return redact(text, (endpoint.api_key(),))[:limit]


def _error_code(err) -> str:
    """The provider's error code or type, when it is a plain identifier ("invalid_api_key")."""
    if not isinstance(err, dict):
        return ""
    for field in ("code", "type"):
        value = err.get(field)
        if isinstance(value, str) and _CODE.fullmatch(value) and not _KEYLIKE.search(value):
            return value
    return ""


def _error_from_status(status: int, body: str, endpoint: Endpoint, retry_after: float | None) -> UpstreamError:
    code, text = "", body.strip()
    try:
        parsed = json.loads(body)
        err = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
        code = _error_code(err)
        text = json.dumps(parsed, ensure_ascii=False)  # "\u2026" escapes would hide a masked key
    except (ValueError, AttributeError, RecursionError):
        pass
    # The body itself goes to the server log only (redacted), never to the database or a page.
    log.warning("HTTP %s from %s: %s", status, endpoint.key, _redact(text, endpoint))
    if status in (401, 403):
        kind = "auth"
    elif status == 429:
        kind = "rate_limited"
    elif status in (408, 409, 425) or status >= 500:
        kind = "server"
    else:
        kind = "bad_request"
    reason = f"HTTP {status} from {endpoint.key}" + (f" ({code})" if code else "")
    return UpstreamError(kind, reason, status=status, retry_after=retry_after)


# --- One attempt ---------------------------------------------------------------------------------


# Server-sent events: httpx-sse's decoders (lines split only on CR/LF as the SSE spec says, not
# on the Unicode line separators str.splitlines() and httpx's aiter_lines() also split on; the
# spec's field rules). Fed line by line instead of through `EventSource.aiter_sse()`, so that
# every line keeps its own timeout (a keep-alive comment counts as life) and a non-conforming
# server still works: a bare JSON line is taken as data, a line that is no SSE field is counted
# as malformed. httpx-sse is pinned below 0.5 for these two classes.
_SSE_FIELDS = ("data:", "event:", "id:", "retry:")


async def _sse_lines(response: httpx.Response) -> AsyncIterator[str]:
    decoder = SSELineDecoder()
    async for text in response.aiter_text():
        for line in decoder.decode(text):
            yield line
    for line in decoder.flush():
        yield line


async def _next_line(lines: AsyncIterator[str], timeout: float) -> str:
    return await asyncio.wait_for(lines.__anext__(), timeout=max(0.001, timeout))


async def _drain(lines: AsyncIterator[str], timeout: float) -> None:
    """Read what follows [DONE] to the end of the body (normally nothing but the chunked
    encoding's last chunk), so that the connection goes back to the pool. Closing a response
    whose body has not ended closes its connection: every call then paid a new TCP (and TLS)
    connection. A server that keeps the body open longer than `timeout` loses its connection."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            await _next_line(lines, deadline - time.monotonic())
    except (StopAsyncIteration, asyncio.TimeoutError, httpx.HTTPError):
        pass


async def stream_chat(endpoint: Endpoint, messages: list[dict], *, max_tokens: int | None = None,
                      first_token_deadline: float | None = None) -> AsyncIterator[Event]:
    """One streamed call. Yields Delta/Usage/Finish; raises UpstreamError (with .started).

    `first_token_deadline` (a `time.monotonic()` value) cuts the endpoint's own connect and
    first-token timeouts short: the retry budget bounds the whole wait for a first token.
    """
    client = http_client()
    payload = build_payload(endpoint, messages, max_tokens=max_tokens)
    began = time.monotonic()
    total_deadline = began + endpoint.total_timeout
    first_deadline = began + endpoint.first_token_timeout
    if first_token_deadline is not None:
        first_deadline = min(first_deadline, first_token_deadline)
    first_wait = max(0.001, min(first_deadline, total_deadline) - began)
    started = False
    malformed = 0
    finish_reason: str | None = None
    request = client.build_request(
        "POST", endpoint.url, json=payload, headers=_headers(endpoint),
        timeout=httpx.Timeout(connect=min(endpoint.connect_timeout, first_wait), read=None, write=30,
                              pool=min(endpoint.connect_timeout, first_wait)),
    )
    try:
        response = await asyncio.wait_for(client.send(request, stream=True), timeout=first_wait)
    except httpx.ConnectTimeout:
        raise UpstreamError("timeout_connect", f"could not connect to {endpoint.key} in time") from None
    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as error:
        raise UpstreamError("connect", f"could not reach {endpoint.key}: {type(error).__name__}") from None
    except (asyncio.TimeoutError, httpx.TimeoutException):
        raise UpstreamError("timeout_first_token", f"{endpoint.key} sent no response in time") from None
    try:
        if response.status_code != 200:
            body = (await response.aread()).decode("utf-8", "replace")
            raise _error_from_status(response.status_code, body, endpoint,
                                     _retry_after(response.headers.get("retry-after")))
        lines = _sse_lines(response)
        decoder = SSEDecoder()
        while True:
            now = time.monotonic()
            if started:
                wait = min(total_deadline, now + endpoint.first_token_timeout) - now
            else:
                wait = min(total_deadline, first_deadline) - now
            try:
                line = await _next_line(lines, wait)
            except StopAsyncIteration:
                line = None
            except asyncio.TimeoutError:
                if time.monotonic() >= total_deadline:
                    raise UpstreamError("timeout_total", f"{endpoint.key} did not finish in "
                                        f"{endpoint.total_timeout:g}s", started=started) from None
                if started:
                    raise UpstreamError("stalled", f"{endpoint.key} stopped sending", started=True) from None
                raise UpstreamError("timeout_first_token", f"no first token from {endpoint.key} in "
                                    f"{time.monotonic() - began:.1f}s") from None
            except (httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout) as error:
                raise UpstreamError("dropped", f"connection to {endpoint.key} lost: {type(error).__name__}",
                                    started=started) from None
            if line is None:
                event = decoder.decode("")  # the end of the stream dispatches what is buffered
            elif line.startswith(_SSE_FIELDS) or line.startswith(":") or not line:
                event = decoder.decode(line)
            elif line.lstrip().startswith("{"):
                event = decoder.decode("data: " + line)  # a bare JSON line (some proxies send errors this way)
            else:
                malformed += 1
                log.warning("malformed SSE line from %s skipped", endpoint.key)
                continue
            if event is not None and event.data:
                if event.data.strip() == "[DONE]":
                    yield Finish(finish_reason or "stop", malformed)
                    await _drain(lines, min(1.0, max(0.001, total_deadline - time.monotonic())))
                    return
                try:
                    chunk = json.loads(event.data)
                except ValueError:
                    malformed += 1
                    log.warning("malformed SSE data from %s skipped", endpoint.key)
                    chunk = None
                if isinstance(chunk, dict):
                    if chunk.get("error"):
                        err = chunk["error"]
                        log.warning("error inside the stream from %s: %s", endpoint.key,
                                    _redact(json.dumps(err, ensure_ascii=False), endpoint))
                        code = _error_code(err)
                        raise UpstreamError("upstream_error", f"{endpoint.key} reported an error in the stream"
                                            + (f" ({code})" if code else ""), started=started)
                    usage = chunk.get("usage") or (chunk.get("x_groq") or {}).get("usage")
                    for choice in chunk.get("choices") or []:
                        delta = choice.get("delta") or {}
                        text = delta.get("content")
                        if text:
                            started = True
                            yield Delta(text)
                        if choice.get("finish_reason"):
                            finish_reason = choice["finish_reason"]
                    if isinstance(usage, dict):
                        yield Usage(_int_or_none(usage.get("prompt_tokens")),
                                    _int_or_none(usage.get("completion_tokens")))
                elif chunk is not None:
                    malformed += 1
            if line is None:
                if finish_reason:  # some servers omit [DONE] after a proper finish
                    yield Finish(finish_reason, malformed)
                    return
                raise UpstreamError("incomplete", f"{endpoint.key} ended the stream without finishing",
                                    started=started)
    finally:
        await response.aclose()


def _int_or_none(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


# --- Retries and fallback -----------------------------------------------------------------------


def fallback_chain(endpoint: Endpoint) -> list[Endpoint]:
    chain = [endpoint]
    seen = {endpoint.key}
    current = endpoint
    while current.fallback and current.fallback not in seen and len(chain) < 4:
        nxt = registry.get(current.fallback)
        if nxt is None:
            break
        chain.append(nxt)
        seen.add(nxt.key)
        current = nxt
    return chain


def backoff_delay(attempt: int) -> float:
    """0.25 s, 0.5 s, 1 s ... (capped at 8 s), with jitter so clients do not retry in step."""
    return min(8.0, 0.25 * (2 ** attempt)) * (0.75 + random.random() * 0.5)


async def stream_reply(endpoint: Endpoint, messages: list[dict], *, max_tokens: int | None = None,
                       budget_seconds: float | None = None, max_retries: int | None = None) -> AsyncIterator[Event]:
    """Stream an answer, retrying failures before the first token, then trying the fallback.

    The retry budget bounds the whole wait for the first token: every attempt's connect and
    first-token timeouts are cut to what is left of it, and backoff that does not fit is not
    waited. With a fallback chain, endpoint i of n may wait until i+1 n-ths of the budget have
    passed (time an earlier endpoint did not use rolls over), so a hanging primary still leaves
    the fallback its turn. A budget of 0 turns retries off; the single attempt then keeps the
    endpoint's own timeouts.

    After the first token nothing is retried (the participant has seen text): the error is
    raised with `.started = True` and the caller keeps the partial answer.
    """
    budget = settings.LLM_RETRY_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    retries = settings.LLM_MAX_RETRIES if max_retries is None else max_retries
    began = time.monotonic()
    number = 0
    last_error: UpstreamError | None = None
    chain = fallback_chain(endpoint)
    for index, candidate in enumerate(chain):
        share_ends = began + budget * (index + 1) / len(chain) if budget > 0 else None
        if share_ends is not None and time.monotonic() >= share_ends:
            continue  # nothing left of this endpoint's share
        attempt = 0
        while True:
            number += 1
            yield Attempt(candidate, number)
            try:
                async for event in stream_chat(candidate, messages, max_tokens=max_tokens,
                                               first_token_deadline=share_ends):
                    yield event
                return
            except UpstreamError as error:
                if error.started:
                    raise
                last_error = error
                log.info("attempt %s on %s failed: %s", number, candidate.key, error.kind)
                if not error.retryable or attempt >= retries:
                    break
                delay = error.retry_after if error.retry_after is not None else backoff_delay(attempt)
                if share_ends is None or time.monotonic() + delay >= share_ends:
                    break
                await asyncio.sleep(delay)
                attempt += 1
    raise last_error or UpstreamError("timeout_first_token", f"the {budget:g}s retry budget was spent")
