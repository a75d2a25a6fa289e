"""Hostile third parties through a running worker: real broker, a misbehaving server on loopback.

Each case points one hook at a server that misbehaves in one way and checks the judged outcome
(with retries bounded by `max_attempts`); then a good event to another hook on the same server
is delivered, /healthz answers and the consumer thread is alive: the worker never dies.
"""

from __future__ import annotations

import re
import threading
import time
import tracemalloc
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dispatch_support import Deployment, cloud_event, collect_until, hook, wait_ready
from hostile_server import (
    BILLION_LAUGHS,
    GZIP_GARBAGE,
    HostileServer,
    Request,
    Script,
    Stream,
    encoded,
    endless_chunked,
    gzip_bomb,
    head,
    header_flood,
    huge_body,
    one_huge_header,
    respond,
    slow_drip,
)
from kafka_support import Record, wait_for

from dispatcher.engine.worker import Worker

ATTEMPTS = 2
ONCE = 1  # a 200 whose body fails its checks or cannot be read is permanent: never sent again
EXPECT_OK_JSON = {"format": "json", "expect": [{"path": "status", "equals": "ok"}]}


@dataclass
class Run:
    """What one hostile case came to."""

    result: dict[str, Any]
    dead_letter: Record | None
    server: HostileServer
    seconds: float

    @property
    def message(self) -> str:
        assert self.dead_letter is not None
        return (self.dead_letter.header("dispatcher.error.message") or b"").decode()


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as running:
        yield running


def alive(worker: Worker) -> bool:
    """The worker's consumer thread runs and its /healthz answers 200."""
    assert worker.status is not None
    url = f"http://127.0.0.1:{worker.status.port}/healthz"
    with urllib.request.urlopen(url, timeout=5) as answer:
        healthy = answer.status == 200
    return healthy and any(
        t.name.startswith("consumer") and t.is_alive() for t in threading.enumerate()
    )


def run_case(
    bootstrap: str, directory: Path, server: HostileServer, script: Script, **hook_extra: Any
) -> Run:
    """One hostile event, its outcome, then a good event delivered by the same worker."""
    server.routes["/hostile"] = script
    deployment = Deployment(
        bootstrap,
        directory,
        [
            hook(
                "hostile",
                f"{server.url}/hostile",
                ["hostile.event"],
                retry={"max_attempts": ATTEMPTS},
                **hook_extra,
            ),
            hook("good", f"{server.url}/good", ["good.event"], response=EXPECT_OK_JSON),
        ],
    )
    deployment.produce_events([cloud_event("hostile.event", {"n": 1})])
    with deployment.worker() as worker:
        started = time.monotonic()
        results = collect_until(bootstrap, deployment.results, lambda rs: len(rs) >= 1, 60)
        seconds = time.monotonic() - started
        result = results[0].json()
        dead = None
        if result["outcome"] == "dead_lettered":
            dead = collect_until(bootstrap, deployment.dead_letter, lambda rs: len(rs) >= 1, 30)[0]
        wait_ready(worker)
        good = cloud_event("good.event", {"n": 2})
        deployment.produce_events([good])
        # the results topic has several partitions: find the good one by its id
        delivered = collect_until(
            bootstrap,
            deployment.results,
            lambda rs: any(r.json()["event_id"] == good["id"] for r in rs),
            60,
        )
        (after,) = [r.json() for r in delivered if r.json()["event_id"] == good["id"]]
        assert after["outcome"] == "delivered"
        assert alive(worker)
    assert result["hook_id"] == "hostile"
    return Run(result, dead, server, seconds)


def assert_dead(
    run: Run, kind: str, attempts: int, message: str, requests: int | None = None
) -> None:
    assert run.result["outcome"] == "dead_lettered"
    assert run.result["error_kind"] == kind
    assert run.result["attempts"] == attempts
    assert run.dead_letter is not None
    assert run.dead_letter.header("dispatcher.error.kind") == kind.encode()
    assert run.dead_letter.header("dispatcher.attempts") == str(attempts).encode()
    assert re.search(message, run.message), run.message
    # retries are bounded: exactly `attempts` requests reached the server, no more
    expected = attempts if requests is None else requests
    assert len(run.server.requests("/hostile")) == expected


def test_a_50_mb_body_is_read_only_up_to_the_cap_and_judged(
    kafka_bootstrap: str, tmp_path: Path, server: HostileServer
) -> None:
    size = 50 << 20
    run = run_case(kafka_bootstrap, tmp_path, server, huge_body(size))
    assert run.result["outcome"] == "delivered"
    assert run.result["http_status"] == 200
    (stream,) = run.server.streams("/hostile")
    wait_for(lambda: stream.ended_at is not None, 10, message="the server to notice")
    assert stream.client_left
    assert stream.sent < size // 4  # the worker hung up after the cap, not after 50 MB


def test_a_body_larger_than_the_cap_fails_its_expect_checks_rather_than_being_judged_on_a_prefix(
    kafka_bootstrap: str, tmp_path: Path, server: HostileServer
) -> None:
    # the first 64 KiB match; a check on a prefix would pass
    response = {"format": "text", "expect": [{"path": "", "matches": "^x+$"}]}
    run = run_case(kafka_bootstrap, tmp_path, server, huge_body(50 << 20), response=response)
    assert_dead(run, "response_invalid", ONCE, r"larger than 65536 bytes")
    assert run.result["http_status"] == 200


def test_an_endless_chunked_body_is_cut_at_the_cap(
    kafka_bootstrap: str, tmp_path: Path, server: HostileServer
) -> None:
    run = run_case(kafka_bootstrap, tmp_path, server, endless_chunked())
    assert run.result["outcome"] == "delivered"
    (stream,) = run.server.streams("/hostile")
    wait_for(lambda: stream.ended_at is not None, 10, message="the endless body to end")
    assert stream.client_left


@pytest.mark.parametrize("whole_response", [False, True], ids=["body", "status-line-too"])
def test_a_slow_drip_ends_at_the_total_deadline_as_a_timeout(
    kafka_bootstrap: str, tmp_path: Path, server: HostileServer, whole_response: bool
) -> None:
    # one byte a second never lets the 2.5 s read timeout fire: only the total deadline can
    script = slow_drip(1.0, whole_response=whole_response)
    run = run_case(kafka_bootstrap, tmp_path, server, script, timeout="2500ms")
    assert_dead(run, "timeout", ATTEMPTS, r"no complete answer within 2\.5s")
    assert run.seconds < 20
    for stream in run.server.streams("/hostile"):
        wait_for(lambda s=stream: s.ended_at is not None, 10, message="the drip to stop")
        assert stream.client_left


def test_garbage_under_content_encoding_gzip_is_response_invalid_with_its_status(
    kafka_bootstrap: str, tmp_path: Path, server: HostileServer
) -> None:
    run = run_case(kafka_bootstrap, tmp_path, server, encoded("gzip", GZIP_GARBAGE))
    assert_dead(run, "response_invalid", ONCE, r"HTTP 200: .*gzip body cannot be decoded")
    assert run.result["http_status"] == 200


def test_a_gzip_bomb_is_inflated_only_up_to_the_cap(
    kafka_bootstrap: str, tmp_path: Path, server: HostileServer
) -> None:
    bomb = gzip_bomb(256 << 20)  # 256 MiB of zeros in about 250 KiB
    tracemalloc.start()
    try:
        run = run_case(
            kafka_bootstrap, tmp_path, server, encoded("gzip", bomb), response=EXPECT_OK_JSON
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # inflated one byte past the cap and no further: never to 256 MiB on the way
    assert_dead(run, "response_invalid", ONCE, r"larger than 65536 bytes; not checked")
    assert peak < 32 << 20, f"peak {peak >> 20} MiB"


def test_an_xml_entity_bomb_is_refused_unexpanded(
    kafka_bootstrap: str, tmp_path: Path, server: HostileServer
) -> None:
    script = respond(200, BILLION_LAUGHS, [("content-type", "application/xml")])
    response = {"format": "xml", "expect": [{"path": "status", "equals": "lol"}]}
    run = run_case(kafka_bootstrap, tmp_path, server, script, response=response)
    assert_dead(run, "response_invalid", ONCE, r"not acceptable XML: DTDForbidden")


@pytest.mark.parametrize(
    ("script", "message"),
    [(header_flood(10_000), r"(?i)too many headers"), (one_huge_header(1 << 20), r"8190 bytes")],
    ids=["10000-headers", "one-1MiB-header"],
)
def test_a_flood_of_headers_is_a_network_failure(
    kafka_bootstrap: str, tmp_path: Path, server: HostileServer, script: Script, message: str
) -> None:
    run = run_case(kafka_bootstrap, tmp_path, server, script)
    assert_dead(run, "network", ATTEMPTS, message)
    assert run.result["http_status"] is None


def test_interim_answers_before_the_final_one_deliver_the_event_once(
    kafka_bootstrap: str, tmp_path: Path, server: HostileServer
) -> None:
    """100 Continue and 103 Early Hints, unasked, then 201: delivered on the first request
    (judged on the 1xx, it was retried: the receiver got the event twice)."""
    final = b'{"status":"ok"}'

    async def script(_request: Request, stream: Stream) -> None:
        await stream.write(head(100, reason="Continue"))
        await stream.write(head(103, [("link", "</a.css>; rel=preload")], reason="Early Hints"))
        await stream.write(head(201, [("content-length", str(len(final)))]) + final)
        stream.keep_alive = True

    run = run_case(kafka_bootstrap, tmp_path, server, script, response=EXPECT_OK_JSON)
    assert (run.result["outcome"], run.result["attempts"]) == ("delivered", 1)
    assert run.result["http_status"] == 201
    assert len(server.requests("/hostile")) == 1


def test_a_credential_with_a_line_break_never_reaches_the_wire(
    kafka_bootstrap: str, tmp_path: Path, server: HostileServer
) -> None:
    """An access token with a line break is refused as the token endpoint's answer, as one
    without an access_token is (an `auth` failure, retried): never kept, never a header's
    value. (A credential of the definition itself is refused at load:
    tests/unit/hooks/test_schema_agreement.py.)"""
    token = b'{"access_token":"abc\\r\\nX-Injected: yes","token_type":"Bearer","expires_in":3600}'
    server.routes["/token"] = respond(body=token)
    auth = {
        "type": "oauth2_client_credentials",
        "token_url": f"{server.url}/token",
        "insecure_token_url": True,  # a loopback server without TLS
        "client_id": "dispatcher",
        "client_secret": "s3cr3t",
    }
    run = run_case(kafka_bootstrap, tmp_path, server, respond(), auth=auth)
    assert len(server.requests("/token")) == ATTEMPTS  # not kept: each attempt asks again
    # refused before a byte was sent: no request, injected or not
    assert_dead(run, "auth", ATTEMPTS, r"access_token no header can carry", requests=0)
    assert "X-Injected" not in run.message


def test_a_retry_after_in_unicode_digits_is_ignored_not_fatal(
    kafka_bootstrap: str, tmp_path: Path, server: HostileServer
) -> None:
    # "\xb9" is latin-1 for a superscript one: str.isdigit() says yes, float() says no
    async def script(_request: Request, stream: Stream) -> None:
        await stream.write(b"HTTP/1.1 503 X\r\nretry-after: \xb9\r\ncontent-length: 0\r\n\r\n")
        stream.keep_alive = True

    run = run_case(kafka_bootstrap, tmp_path, server, script)
    assert_dead(run, "http_status", ATTEMPTS, r"HTTP 503")
    assert run.result["http_status"] == 503
