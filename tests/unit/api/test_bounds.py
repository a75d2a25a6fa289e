"""Bounded requests at the ASGI edge: a malformed or negative Content-Length is a 400, a body
past the limit a 413 (declared or streamed), a request past its time a 503."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from dispatcher.api.bounds import Bounds


async def echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    if scope["path"] == "/slow":
        await asyncio.sleep(5)
    if scope["path"] == "/late":  # its answer begun, it runs past its time
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(5)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def exchange(
    headers: list[tuple[bytes, bytes]], chunks: list[bytes], path: str = "/"
) -> list[Message]:
    """What `Bounds` around `echo_length` sends for a request of `headers` and body `chunks`."""
    sent: list[Message] = []
    pending = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> Message:
        return pending.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "path": path, "headers": headers}
    asyncio.run(Bounds(echo_length, max_body=10, timeout=0.2)(scope, receive, send))
    return sent


def call(
    headers: list[tuple[bytes, bytes]], chunks: list[bytes], path: str = "/"
) -> dict[str, Any]:
    sent = exchange(headers, chunks, path)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return {"status": sent[0]["status"], "body": body}


@pytest.mark.parametrize("length", [b"-1", b"ten", b"1e3", b" ", b"+5", b"0x10"])
def test_a_malformed_or_negative_content_length_is_a_400(length: bytes) -> None:
    answer = call([(b"content-length", length)], [b""])
    assert answer["status"] == 400
    assert "Content-Length" in json.loads(answer["body"])["error"]


def test_two_different_content_lengths_are_a_400() -> None:
    answer = call([(b"content-length", b"3"), (b"content-length", b"4")], [b"abc"])
    assert answer["status"] == 400


def test_a_declared_body_past_the_limit_is_a_413_before_it_is_read() -> None:
    assert call([(b"content-length", b"11")], [b"x" * 11])["status"] == 413


def test_a_streamed_body_past_the_limit_is_a_413() -> None:
    assert call([], [b"x" * 6, b"x" * 6])["status"] == 413


def test_a_body_within_the_limit_passes() -> None:
    assert call([(b"content-length", b"10")], [b"x" * 10]) == {"status": 200, "body": b"10"}


def test_a_request_past_its_time_is_a_503() -> None:
    answer = call([], [b""], path="/slow")
    assert answer["status"] == 503
    assert "longer than" in json.loads(answer["body"])["error"]


def test_a_request_past_its_time_after_its_answer_began_gets_no_second_answer() -> None:
    sent = exchange([], [b""], path="/late")
    assert [m.get("status") for m in sent] == [200]


def test_a_request_head_past_the_limit_is_a_431() -> None:
    answer = call([(b"x-big", b"a" * 20_000)], [b""])
    assert answer["status"] == 431
