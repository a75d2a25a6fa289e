"""The delivery path's own HTTP/1.1 client (http/wire.py) against real servers on loopback:
the guard, TLS by host name on the vetted address, keep-alive, and what never reaches the wire."""

from __future__ import annotations

import asyncio
import ssl

import httpx
import pytest
from test_transport import (
    LOOPBACK_ONLY,
    Certificates,
    Receiver,
    StubResolver,
    certificates,
    guarded,
)

from dispatcher.errors import BlockedDestination
from dispatcher.http.transport import GuardedTransport
from dispatcher.model.request import Request
from dispatcher.security.guard import GuardPolicy

__all__ = ["certificates"]  # the module's fixture, used here
CAP = 65_537


def post(url: str, *headers: tuple[str, str]) -> Request:
    return Request("POST", url, (("content-type", "application/json"), *headers), b'{"a":1}')


def lean(policy: GuardPolicy, resolver: StubResolver, **extra: object) -> GuardedTransport:
    transport, _ = guarded(policy, resolver, **extra)  # type: ignore[arg-type]
    assert isinstance(transport, GuardedTransport)
    return transport


@pytest.mark.parametrize(("name", "accepted"), [("receiver.test", True), ("wrong.test", False)])
def test_tls_checks_the_certificate_and_sends_sni_for_the_host_name(
    certificates: Certificates, name: str, accepted: bool
) -> None:
    async def scenario() -> None:
        trust = ssl.create_default_context(cadata=certificates.ca_pem)
        transport = lean(LOOPBACK_ONLY, StubResolver({name: [["127.0.0.1"]]}), ssl_context=trust)
        rx = Receiver()
        async with rx.serving(certificates.server_context()):
            request = post(f"https://{name}:{rx.port}/secure")
            if accepted:
                assert (await transport.exchange(request, CAP)).status == 200
            else:
                with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
                    await transport.exchange(request, CAP)
            await transport.aclose()
        assert rx.sni == [name]
        assert len(rx.seen) == int(accepted)

    asyncio.run(scenario())


def test_a_name_resolving_to_loopback_is_refused_without_connecting() -> None:
    async def scenario() -> None:
        transport = lean(GuardPolicy(), StubResolver({"rx.test": [["127.0.0.1"]]}))
        async with Receiver().serving() as rx:
            with pytest.raises(BlockedDestination):
                await transport.exchange(post(f"http://rx.test:{rx.port}/"), CAP)
            await transport.aclose()
        assert rx.seen == []

    asyncio.run(scenario())


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "2130706433", "[::1]"])
def test_an_address_in_the_url_is_checked_as_written(host: str) -> None:
    async def scenario() -> None:
        transport = lean(GuardPolicy(), StubResolver({}))
        with pytest.raises(BlockedDestination):
            await transport.exchange(post(f"http://{host}:9/"), CAP)
        await transport.aclose()

    asyncio.run(scenario())


def test_keep_alive_reuses_one_connection() -> None:
    async def scenario() -> None:
        transport = lean(LOOPBACK_ONLY, StubResolver({"rx.test": [["127.0.0.1"]]}))
        async with Receiver().serving() as rx:
            for _ in range(3):
                response = await transport.exchange(post(f"http://rx.test:{rx.port}/a"), CAP)
                assert (response.status, response.body) == (200, b"ok")
            await transport.aclose()
        assert len({seen.peer_port for seen in rx.seen}) == 1
        assert rx.seen[0].host == f"rx.test:{rx.port}"

    asyncio.run(scenario())


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
        transport = lean(LOOPBACK_ONLY, StubResolver({"rx.test": [["127.0.0.1"]]}))
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
        transport = lean(LOOPBACK_ONLY, StubResolver({"rx.test": [["127.0.0.1"]]}))
        async with Receiver().serving() as rx:
            with pytest.raises(ValueError, match="line break"):
                await transport.exchange(post(f"http://rx.test:{rx.port}/", header), CAP)
            await transport.aclose()
        assert rx.seen == []

    asyncio.run(scenario())


def test_a_body_past_the_cap_is_cut_there_and_its_connection_dropped() -> None:
    async def scenario() -> None:
        big = b"x" * 100_000
        transport = lean(LOOPBACK_ONLY, StubResolver({"rx.test": [["127.0.0.1"]]}))
        async with Receiver(lambda _path: (200, {}, big)).serving() as rx:
            response = await transport.exchange(post(f"http://rx.test:{rx.port}/"), 1000)
            assert response.body == big[:1000]
            response = await transport.exchange(post(f"http://rx.test:{rx.port}/"), 1000)
            assert len({seen.peer_port for seen in rx.seen}) == 2
            await transport.aclose()

    asyncio.run(scenario())
