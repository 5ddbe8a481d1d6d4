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
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from django.conf import settings

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


def _redact(text: str, endpoint: Endpoint) -> str:
    key = endpoint.api_key()
    if key and key in text:
        text = text.replace(key, "[key]")
    return text[:300]


def _error_from_status(status: int, body: str, endpoint: Endpoint, retry_after: float | None) -> UpstreamError:
    detail = _redact(body.strip(), endpoint)
    try:
        parsed = json.loads(body)
        err = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
        if isinstance(err, dict):
            detail = _redact(str(err.get("message") or err.get("detail") or err), endpoint)
        elif isinstance(err, str):
            detail = _redact(err, endpoint)
    except (ValueError, AttributeError):
        pass
    if status in (401, 403):
        kind = "auth"
    elif status == 429:
        kind = "rate_limited"
    elif status in (408, 409, 425) or status >= 500:
        kind = "server"
    else:
        kind = "bad_request"
    return UpstreamError(kind, f"HTTP {status} from {endpoint.key}: {detail}", status=status, retry_after=retry_after)


# --- One attempt ---------------------------------------------------------------------------------


async def _next_line(lines: AsyncIterator[str], timeout: float) -> str:
    return await asyncio.wait_for(lines.__anext__(), timeout=max(0.001, timeout))


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
        lines = response.aiter_lines()
        data_lines: list[str] = []
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
            if line is None or line == "":
                # End of an event (blank line) or of the stream: dispatch buffered data.
                if data_lines:
                    data = "\n".join(data_lines)
                    data_lines = []
                    if data.strip() == "[DONE]":
                        yield Finish(finish_reason or "stop", malformed)
                        return
                    try:
                        chunk = json.loads(data)
                    except ValueError:
                        malformed += 1
                        log.warning("malformed SSE data from %s skipped", endpoint.key)
                        chunk = None
                    if isinstance(chunk, dict):
                        if chunk.get("error"):
                            err = chunk["error"]
                            message = err.get("message") if isinstance(err, dict) else str(err)
                            raise UpstreamError("upstream_error", f"{endpoint.key} reported an error: "
                                                f"{_redact(str(message), endpoint)}", started=started)
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
                continue
            if line.startswith(":"):
                continue  # SSE comment / keep-alive
            if line.startswith("data:"):
                data_lines.append(line[5:].lstrip(" "))
            elif line.startswith(("event:", "id:", "retry:")):
                continue
            elif line.lstrip().startswith("{"):
                # A bare JSON line (some proxies send errors this way).
                data_lines.append(line)
            else:
                malformed += 1
                log.warning("malformed SSE line from %s skipped", endpoint.key)
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
