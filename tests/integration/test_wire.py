"""The delivery path's own HTTP/1.1 client (http/wire.py) against real servers on loopback: what
only it does. The guard, TLS by host name on the vetted address, keep-alive and the errors of
resolving and connecting are tested on both of a transport's paths in test_transport.py."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_transport import (
    CAP,
    LOOPBACK_ONLY,
    Receiver,
    StubResolver,
    guarded,
    no_stray_connections,
    raw_server,
    read_head,
)
from tls_support import issue_pki

from dispatcher.http.transport import build_transport
from dispatcher.model.request import Request

__all__ = ["no_stray_connections"]  # autouse here too: every connection made is to loopback


def post(url: str, *headers: tuple[str, str]) -> Request:
    return Request("POST", url, (("content-type", "application/json"), *headers), b'{"a":1}')


def test_a_connection_the_server_closed_after_answering_is_not_reused() -> None:
    """The server answers keep-alive, then hangs up: each request still gets its answer."""
    peers: list[int] = []

    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        length = int(head.split("content-length: ", 1)[1].split("\r\n", 1)[0])
        await reader.readexactly(length)
        peers.append(writer.get_extra_info("peername")[1])
        writer.write(b"HTTP/1.1 200 X\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def scenario() -> None:
        server = await asyncio.start_server(answer_once, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = guarded(LOOPBACK_ONLY, StubResolver({"rx.test": [["127.0.0.1"]]}))[0]
        async with server:
            for _ in range(3):
                response = await transport.exchange(post(f"http://rx.test:{port}/"), CAP)
                assert (response.status, response.body) == (200, b"ok")
            await transport.aclose()
        assert len(set(peers)) == 3

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "header", [("x-note", "a\r\nx-injected: yes"), ("x-note", "a\nb"), ("x-n\rote", "a")]
)
def test_a_line_break_in_a_header_never_reaches_the_wire(header: tuple[str, str]) -> None:
    async def scenario() -> None:
        transport = guarded(LOOPBACK_ONLY, StubResolver({"rx.test": [["127.0.0.1"]]}))[0]
        async with Receiver().serving() as rx:
            with pytest.raises(ValueError, match="line break"):
                await transport.exchange(post(f"http://rx.test:{rx.port}/", header), CAP)
            await transport.aclose()
        assert rx.seen == []

    asyncio.run(scenario())


def test_a_body_past_the_cap_is_cut_there_and_its_connection_dropped() -> None:
    async def scenario() -> None:
        big = b"x" * 100_000
        transport = guarded(LOOPBACK_ONLY, StubResolver({"rx.test": [["127.0.0.1"]]}))[0]
        async with Receiver(lambda _path: (200, {}, big)).serving() as rx:
            response = await transport.exchange(post(f"http://rx.test:{rx.port}/"), 1000)
            assert response.body == big[:1000]
            response = await transport.exchange(post(f"http://rx.test:{rx.port}/"), 1000)
            assert len({seen.peer_port for seen in rx.seen}) == 2
            await transport.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("interim", "limit"),
    [
        (b"HTTP/1.1 100 Continue\r\n\r\n", "head larger than"),
        (b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n", "too many headers"),
    ],
)
def test_an_endless_run_of_interim_answers_ends_at_the_head_limits(
    interim: bytes, limit: str
) -> None:
    """Interim answers count toward the limits of the head they come before: bytes, headers."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        while True:  # until the client hangs up
            writer.write(interim * 100)
            await writer.drain()

    async def scenario() -> None:
        transport = guarded(LOOPBACK_ONLY, StubResolver({"rx.test": [["127.0.0.1"]]}))[0]
        async with raw_server(handler) as port:
            with pytest.raises(httpx.RemoteProtocolError, match=limit):
                await transport.exchange(post(f"http://rx.test:{port}/"), CAP)
            await transport.aclose()

    asyncio.run(scenario())


def test_an_idle_connection_the_server_closed_is_not_reused_though_unread() -> None:
    """The server closes a kept-alive connection while it is idle, and the loop has not read
    that end yet when the next request is sent (the race at a server's idle timeout): the
    connection is seen readable and left, and the request goes on a new one, answered."""
    listener = socket.create_server(("127.0.0.1", 0))
    closed = threading.Event()
    requests: list[int] = []  # the connection each request came on

    def serve() -> None:
        for number in (1, 2):
            peer, _ = listener.accept()
            with peer:
                while b"\r\n\r\n" not in peer.recv(65_536):
                    pass  # a small request: its head and body come together
                requests.append(number)
                peer.sendall(b"HTTP/1.1 200 X\r\nContent-Length: 2\r\n\r\nok")
                if number == 1:
                    peer.shutdown(socket.SHUT_RDWR)  # idle, then closed by the server
            closed.set()

    async def scenario() -> None:
        port = listener.getsockname()[1]
        transport = guarded(LOOPBACK_ONLY, StubResolver({"rx.test": [["127.0.0.1"]]}))[0]
        assert (await transport.exchange(post(f"http://rx.test:{port}/"), CAP)).status == 200
        assert closed.wait(10)  # blocks the loop on purpose: it must not read the end first
        assert (await transport.exchange(post(f"http://rx.test:{port}/"), CAP)).status == 200
        await transport.aclose()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    with listener:
        asyncio.run(scenario())
        server.join(10)
    assert requests == [1, 2]


def test_an_exchange_cancelled_after_its_answer_came_closes_its_connection() -> None:
    """A deadline or a revoke may cancel a delivery between its answer's arrival and its
    task's next step: the connection is then neither returned nor left open."""
    ended = asyncio.Event()

    async def answer_all(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await read_head(reader)
                writer.write(b"HTTP/1.1 200 X\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        finally:
            ended.set()

    async def scenario() -> None:
        transport = guarded(LOOPBACK_ONLY, StubResolver({"rx.test": [["127.0.0.1"]]}))[0]
        async with raw_server(answer_all) as port:
            url = f"http://rx.test:{port}/"
            await transport.exchange(post(url), CAP)
            (connection,) = transport._wire._idle[("http", "rx.test", port)]
            task = asyncio.create_task(transport.exchange(post(url), CAP))
            for _ in range(10_000):  # until the answer is in, the task not yet woken by it
                await asyncio.sleep(0)
                if connection._waiter is not None and connection._waiter.done():
                    break
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert connection.closed
            await asyncio.wait_for(ended.wait(), 10)  # the server saw it go
            await transport.aclose()

    asyncio.run(scenario())


def test_closing_the_transport_closes_an_idle_tls_connection_at_once(tmp_path: Path) -> None:
    """An idle TLS connection is aborted when the transport closes, not shut down politely: the
    polite close waits for the server's close_notify, and a server that never sends one (or a
    loop that ends first, as `hooks test --send`'s does) left the socket open, a
    `ResourceWarning` when it was collected."""
    pki = issue_pki(tmp_path, "wire test ca")
    answered, release = threading.Event(), threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:  # answers once, keeping the connection, then reads nothing more
        conn, _ = listener.accept()
        with pki.server_context().wrap_socket(conn, server_side=True) as tls:
            tls.recv(65536)
            tls.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            answered.set()
            release.wait(timeout=30)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    made: list[socket.socket] = []

    def recording(info: Any) -> socket.socket:
        made.append(socket.socket(info[0], info[1], info[2]))
        return made[-1]

    async def scenario() -> None:
        trust = ssl.create_default_context(cafile=str(pki.ca))
        transport = build_transport(
            policy=LOOPBACK_ONLY, ssl_context=trust, socket_factory=recording
        )
        response = await transport.exchange(post(f"https://127.0.0.1:{port}/in"), CAP)
        assert response.status == 200
        await transport.aclose()
        for _ in range(3):  # a few turns of the loop, no round trip to the server
            await asyncio.sleep(0)
        assert [s.fileno() for s in made] == [-1]

    try:
        asyncio.run(scenario())
        assert answered.is_set()
    finally:
        release.set()
        server.join(timeout=10)
        listener.close()
