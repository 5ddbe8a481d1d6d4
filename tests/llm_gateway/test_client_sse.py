"""The client's reading of server-sent events (httpx-sse's decoders, fed line by line) and its
connection reuse: a stream is read to the end of its body, so the next call needs no new TCP
connection."""

from __future__ import annotations

import json

import httpx
import pytest

from llm_gateway import client
from llm_gateway.registry import Endpoint

ENDPOINT = Endpoint(key="mock", name="Mock", base_url="http://mock.invalid/v1", model="m")


def _chunk(content=None, finish=None) -> str:
    delta = {"content": content} if content is not None else {}
    return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}, ensure_ascii=False)


async def _events(body: str, monkeypatch) -> list:
    def handler(request):
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body.encode())

    mock = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    monkeypatch.setattr(client, "http_client", lambda: mock)
    try:
        return [event async for event in client.stream_chat(ENDPOINT, [{"role": "user", "content": "hi"}])]
    finally:
        await mock.aclose()


async def test_unicode_line_separators_inside_data_do_not_split_events(monkeypatch):
    # U+2028 and U+0085 are line breaks to str.splitlines() (and httpx's aiter_lines), not to SSE.
    text = "one\u2028two\x85three"
    events = await _events(f"data: {_chunk(text)}\n\ndata: {_chunk(finish='stop')}\n\ndata: [DONE]\n\n", monkeypatch)
    assert [e.text for e in events if isinstance(e, client.Delta)] == [text]
    assert events[-1] == client.Finish("stop", 0)


async def test_crlf_comments_event_fields_and_bare_json_lines(monkeypatch):
    body = (": keep-alive\r\nevent: message\r\nid: 1\r\ndata: " + _chunk("Hi") + "\r\n\r\n"
            "not an sse line\r\n"
            + _chunk(" there") + "\r\n\r\n"  # a bare JSON line (non-conforming servers)
            "data: " + _chunk(finish="length") + "\r\n\r\n")  # no [DONE]: the finish reason ends it
    events = await _events(body, monkeypatch)
    assert "".join(e.text for e in events if isinstance(e, client.Delta)) == "Hi there"
    assert events[-1] == client.Finish("length", 1)


async def test_bare_json_error_line_is_an_upstream_error(monkeypatch):
    with pytest.raises(client.UpstreamError) as raised:
        await _events('{"error": {"message": "overloaded", "code": "overloaded"}}\n', monkeypatch)
    assert raised.value.kind == "upstream_error" and "(overloaded)" in raised.value.message


async def test_the_connection_is_reused_after_done(fault_upstream):
    endpoint = Endpoint(key="fault", name="Fault", base_url=fault_upstream.base_url, model="fault:ok:4")
    try:
        for _ in range(3):
            events = [e async for e in client.stream_chat(endpoint, [{"role": "user", "content": "hi"}])]
            assert isinstance(events[-1], client.Finish)
        # httpcore's pool (no public API): one connection, which served all three calls.
        connections = client.http_client()._transport._pool.connections
        assert len(connections) == 1 and "Request Count: 3" in repr(connections[0])
    finally:
        await client.close_client()
