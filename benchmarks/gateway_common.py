"""Shared set-up for the gateway benchmarks: their own database, the app under uvicorn, the
fault upstream in fast fixed-rate mode, the local llama.cpp server, and a participant
client that speaks HTTP + the chat websocket exactly as the browser does.

The benchmarks read DATABASE_URL / REDIS_URL like the app but work in their own database
(the configured name + "_gwbench"), created and migrated on first use.

Hygiene for a shared, loaded machine: every wait is on readiness (the app's /healthz, the
model server's /v1/models and a first completion), never a fixed delay; the run has a deadline
inside (`Budget`) and the scripts print what they measured so far when it runs out; the direct
calls go through one shared HTTP client (`Direct`), as the app's own client does; `load()` is
printed with every figure. `--before-root` runs a second copy of the app from another tree
(e.g. `git archive main | tar -x -C /tmp/calma-before`) so before/after are interleaved in one run.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from benchmarks import coding_common

ROOT = Path(__file__).resolve().parent.parent
SUFFIX = "_gwbench"


def setup_django(endpoints: list[dict]) -> str:
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        sys.exit("Set DATABASE_URL=postgres://... and REDIS_URL=redis://... (the test command's environment).")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # set-up code below is plain sync ORM
    return coding_common.setup_django(SUFFIX, LLM_ENDPOINTS=json.dumps(endpoints))


@contextmanager
def fault_upstream_process():
    """The fault upstream in a process of its own for the length of the block: yields its base URL."""
    from tests.fixtures_llm import start_fault_upstream_process, stop_process

    proc, base = start_fault_upstream_process()
    try:
        yield base
    finally:
        stop_process(proc)


def wait_healthy(base: str, proc, timeout: float, log_name: str = "its output") -> None:
    """Until GET base/healthz answers 200; fails at once if the server process exits."""
    from tests.fixtures_llm import wait_http_ok

    wait_http_ok(base + "/healthz", proc, timeout=timeout, what=f"the app (see {log_name})")


def free_port() -> int:
    from tests.fixtures_llm import free_port as fp

    return fp()


def load() -> str:
    """The machine's load average (1, 5, 15 min), printed with every figure."""
    return "load %.2f %.2f %.2f" % os.getloadavg()


class Budget:
    """The run's deadline, inside the run: steps ask what is left instead of being killed."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def spent(self) -> bool:
        return self.left() <= 0

    async def bounded(self, coro, what: str):
        """Await `coro` within what is left of the budget; raise BudgetSpent (naming `what`) if not."""
        try:
            return await asyncio.wait_for(coro, timeout=max(0.01, self.left()))
        except asyncio.TimeoutError:
            raise BudgetSpent(what) from None


class BudgetSpent(Exception):
    pass


def run_bounded(run, args) -> tuple[dict, str | None]:
    """asyncio.run(run(args, results, budget)) within args.budget seconds: (what was measured,
    None) or, when the budget ran out, (what was measured so far, the step it ran out in)."""
    budget = Budget(args.budget)
    results: dict = {}
    try:
        asyncio.run(run(args, results, budget))
    except BudgetSpent as spent:
        return results, str(spent)
    return results, None


class App:
    """The real app under uvicorn, like `make run` (one worker) or production (`--workers`).

    `root`: the source tree to run (another checkout for a before/after comparison)."""

    def __init__(self, db_url: str, endpoints: list[dict], extra_env: dict | None = None, workers: int = 1,
                 root: Path | None = None):
        self.root = Path(root or ROOT)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DATABASE_URL": db_url, "CALMA_TESTING": "1", "DEBUG": "0", "SECURE_COOKIES": "0",
               "AXES_ENABLED": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost", "LLM_ENDPOINTS": json.dumps(endpoints),
               "CHAT_RATE_LIMIT": "100000/m", "LOG_LEVEL": "WARNING", **(extra_env or {})}
        self.log = open(ROOT / f".bench-server-{self.port}.log", "w")
        # BENCH_PYSPY=out.svg: the server runs under `py-spy record` (a flame graph of the run).
        spy = os.environ.get("BENCH_PYSPY")
        prefix = ([str(Path(sys.executable).with_name("py-spy")), "record", "--subprocesses", "--rate", "100",
                   *os.environ.get("BENCH_PYSPY_ARGS", "").split(),
                   "--format", os.environ.get("BENCH_PYSPY_FORMAT", "speedscope"), "-o", spy, "--"]
                  if spy and root is None else [])
        self.spy = bool(prefix)
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "uvicorn", "calma.asgi:application", "--host", "127.0.0.1", "--port",
             str(self.port), "--log-level", "warning", "--no-access-log", "--workers", str(workers),
             "--timeout-keep-alive", "75"],
            cwd=self.root, env={**env, "PYTHONPATH": str(self.root)}, stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_ready(timeout=120)

    def wait_ready(self, timeout: float) -> None:
        """Until /healthz answers 200 (every worker process can take a while on a loaded machine)."""
        wait_healthy(self.base, self.proc, timeout, log_name=self.log.name)

    def stop(self):
        from tests.fixtures_llm import stop_process

        if self.spy:  # stop the server under py-spy, which then writes its profile and exits
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
            for pid in children.read_text().split() if children.exists() else []:
                os.kill(int(pid), 15)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        stop_process(self.proc)
        self.log.close()
        path = Path(self.log.name)
        text = path.read_text()
        path.unlink()
        if "Traceback" in text:
            print("--- server log (tail) ---\n" + text[-3000:])


async def close_all(participants, direct: "Direct", apps, procs) -> None:
    """The end of a run: the participants' connections, the shared direct client, the apps under
    uvicorn, then the upstream servers."""
    from tests.fixtures_llm import stop_process

    for participant in participants:
        await participant.close()
    await direct.close()
    for app in apps:
        app.stop()
    for proc in procs:
        stop_process(proc)


def make_people(n: int, endpoint_keys: list[str], conversations_each: int = 1):
    """A workshop in Interact, n participants each with conversations; returns (workshop, people).

    people: [(session cookie, membership, [conversation ids per endpoint key order])]."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.test import Client

    from llm_gateway import services as gw
    from llm_gateway.models import WorkshopModel
    from workshops import services

    User = get_user_model()
    tag = uuid.uuid4().hex[:8]
    facilitator = User.objects.create(username=f"gwb-fac-{tag}")
    facilitator.user_permissions.add(Permission.objects.get(codename="add_workshop"))
    workshop = services.workshop_create(
        title="Gateway benchmark", slug=f"gwb-{tag}", created_by=facilitator,
        deployment_context="History educational assistant for high-school students in India.",
        system_prompt="You are an education assistant for high school students studying history in India.",
    )
    services.workshop_set_stage(workshop=workshop, stage="interact", by=facilitator)
    workshop.refresh_from_db()
    gw.workshop_models_set(workshop=workshop, endpoint_keys=endpoint_keys)
    models = {m.endpoint_key: m for m in WorkshopModel.objects.filter(workshop=workshop)}
    people = []
    for i in range(n):
        user = User.objects.create(username=f"gwb-{tag}-{i}")
        membership = services.membership_add(workshop=workshop, user=user, role="participant", display_name=f"P{i}")
        services.membership_consent(membership=membership)
        client = Client()
        client.force_login(user)
        cookie = client.cookies["sessionid"].value
        convs = {key: [gw.conversation_create(membership=membership, workshop_model=models[key]).id
                       for _ in range(conversations_each)] for key in endpoint_keys}
        people.append((cookie, membership, convs))
    return workshop, people


class Participant:
    """One participant's browser: the conversation's websocket (deltas) and Send, either over
    that socket (`via="socket"`: what the page does while its socket is open) or as an htmx POST
    (`via="http"`: the page's fallback, and the only way before the socket took Sends)."""

    def __init__(self, app: App, slug: str, session: str, via: str = "http"):
        import httpx

        self.app, self.slug, self.via = app, slug, via
        self.refs = 0
        self.http = httpx.AsyncClient(base_url=app.base, cookies={"sessionid": session}, timeout=60)
        self.session = session
        self.csrf = None

    async def open(self, conversation_id: int):
        from websockets.asyncio.client import connect

        if self.csrf is None:
            r = await self.http.get(f"/w/{self.slug}/interact/c/{conversation_id}/")
            r.raise_for_status()
            self.csrf = self.http.cookies.get("csrftoken")
        ws = await connect(f"ws://127.0.0.1:{self.app.port}/ws/w/{self.slug}/chat/{conversation_id}/",
                           additional_headers={"Cookie": f"sessionid={self.session}", "Origin": self.app.base},
                           max_size=None)
        hello = json.loads(await ws.recv())
        assert hello == {"t": "hello"}, hello
        return ws

    async def ask(self, ws, conversation_id: int, text: str, timeout: float = 120) -> dict:
        """Send; return timings (s) and the streamed text, measured from just before the Send
        ("post": until the Send's answer, whichever way it went)."""
        t0 = time.perf_counter()
        deadline = t0 + timeout
        first = t_post = None
        parts: list[str] = []
        if self.via == "socket":
            self.refs += 1
            await ws.send(json.dumps({"t": "send", "ref": self.refs, "text": text}))
        else:
            r = await self.http.post(f"/w/{self.slug}/interact/c/{conversation_id}/send/", data={"text": text},
                                     headers={"X-CSRFToken": self.csrf, "HX-Request": "true"})
            t_post = time.perf_counter()
            if r.status_code != 200 or 'data-sent="1"' not in r.text:
                return {"error": f"send refused: HTTP {r.status_code}", "post": t_post - t0}
        status = None
        message_id = None
        while True:
            raw = await asyncio.wait_for(ws.recv(), timeout=max(0.01, deadline - time.perf_counter()))
            event = json.loads(raw)
            if event["t"] == "d":
                if first is None:
                    first = time.perf_counter()
                message_id = event["id"]
                parts.append(event["x"])
            elif event["t"] == "s" and event["status"] != "retrying":
                status = event["status"]
                message_id = event["id"]
                if t_post is not None:
                    break
            elif event["t"] in ("sent", "refused", "http"):
                t_post = time.perf_counter()
                if event["t"] != "sent":
                    return {"error": f"send refused over the socket: {event}", "post": t_post - t0}
                if status is not None:
                    break
        end = time.perf_counter()
        return {"ttft": (first or end) - t0, "total": end - t0, "post": t_post - t0, "text": "".join(parts),
                "chunks": len(parts), "status": status, "message_id": message_id}

    async def close(self):
        await self.http.aclose()


class Direct:
    """The same streamed request straight to the endpoint (no app), through ONE shared client
    with the app's connection limits: both sides reuse connections, so neither pays a new TCP
    connection per call that the other does not."""

    def __init__(self):
        import httpx

        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=5, read=None, write=30, pool=30),
            limits=httpx.Limits(max_connections=500, max_keepalive_connections=100, keepalive_expiry=30))

    async def call(self, base_url: str, model: str, messages: list[dict], max_tokens: int | None = None,
                   params: dict | None = None) -> dict:
        payload = {"model": model, "messages": messages, "stream": True, "stream_options": {"include_usage": True},
                   **(params or {})}
        if max_tokens:
            payload["max_tokens"] = max_tokens
        t0 = time.perf_counter()
        first = None
        parts = []
        async with self.client.stream("POST", base_url + "/chat/completions", json=payload) as r:
            async for line in r.aiter_lines():  # read to the end of the body: the connection is reused
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    continue
                chunk = json.loads(data)
                for choice in chunk.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        if first is None:
                            first = time.perf_counter()
                        parts.append(text)
        end = time.perf_counter()
        return {"ttft": (first or end) - t0, "total": end - t0, "text": "".join(parts), "chunks": len(parts)}

    async def close(self):
        await self.client.aclose()


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def summary(values: list[float]) -> dict:
    ms = [v * 1000 for v in values]
    return {"n": len(ms), "median_ms": round(statistics.median(ms), 2) if ms else None,
            "p95_ms": round(pct(ms, 0.95), 2) if ms else None,
            "p99_ms": round(pct(ms, 0.99), 2) if ms else None}


def side_by_side(label: str, figures: dict[str, dict], floor: str = "direct") -> str:
    """One line: each side's median/p95/p99 and what each adds to the floor (same run)."""
    base = figures.get(floor) or {}
    out = [f"{label:<22}"]
    for name, s in figures.items():
        if not s or not s.get("n"):
            out.append(f"{name}: -")
            continue
        text = f"{name}: {s['median_ms']:.1f}/{s['p95_ms']:.1f}/{s['p99_ms']:.1f} ms (n={s['n']})"
        if name != floor and base.get("n"):
            text += f" [+{s['median_ms'] - base['median_ms']:.1f} med, +{s['p95_ms'] - base['p95_ms']:.1f} p95]"
        out.append(text)
    return "  ".join(out) + "   (median/p95/p99)"
