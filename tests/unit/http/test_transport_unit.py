"""The transport's pieces that need no server: error translation, the resolver, host checks."""

from __future__ import annotations

import asyncio
import socket
import ssl

import aiohttp
import httpx
import pytest
from aiohttp.client_reqrep import ConnectionKey

from dispatcher.errors import BlockedDestination
from dispatcher.http.aiosession import GuardedResolver, translate
from dispatcher.http.resolution import ResolutionCache
from dispatcher.http.transport import build_transport
from dispatcher.security.guard import GuardPolicy

KEY = ConnectionKey("h.test", 443, True, True, None, None, None)


class Table:
    """A resolver answering from a dict."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers

    async def resolve(self, host: str, port: int) -> list[str]:
        return self.answers[host]


def _wrapped(inner: BaseException) -> aiohttp.ClientOSError:
    outer = aiohttp.ClientOSError(1, "wrapped")
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (aiohttp.ClientConnectorDNSError(KEY, socket.gaierror(-2, "no name")), httpx.ConnectError),
        (aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "no")), httpx.ConnectError),
        (aiohttp.ConnectionTimeoutError("slow"), httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError("slow"), httpx.ReadTimeout),
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError("cut"), httpx.RemoteProtocolError),
        (_wrapped(ssl.SSLError(1, "alert certificate required")), httpx.ConnectError),
        (ssl.SSLError(1, "handshake"), httpx.ConnectError),
        (aiohttp.ClientOSError(104, "reset"), httpx.ReadError),
        (ConnectionResetError(104, "reset"), httpx.ReadError),
    ],
)
def test_engine_errors_become_httpx_errors(error: Exception, expected: type[Exception]) -> None:
    assert type(translate(error, "h.test")) is expected


def test_a_dns_failure_names_the_host() -> None:
    error = aiohttp.ClientConnectorDNSError(KEY, socket.gaierror(-2, "Name unknown"))
    assert "cannot resolve h.test" in str(translate(error, "h.test"))


def test_a_refusal_is_unwrapped_from_any_depth() -> None:
    refusal = BlockedDestination("destination refused")
    assert translate(_wrapped(_wrapped(refusal)), "h.test") is refusal


def test_an_unrelated_exception_is_left_alone() -> None:
    error = KeyError("bug")
    assert translate(error, "h.test") is error


def _resolve(policy: GuardPolicy, answers: list[str], family: int = 0) -> list[str]:
    resolver = GuardedResolver(policy, ResolutionCache(Table({"h.test": answers}), ttl=0))

    async def run() -> list[str]:
        results = await resolver.resolve("h.test", 443, socket.AddressFamily(family))
        assert {r["hostname"] for r in results} == {"h.test"}  # TLS checks the name
        return [r["host"] for r in results]

    return asyncio.run(run())


def test_the_resolver_answers_only_with_vetted_addresses() -> None:
    admitted = GuardPolicy(allow_loopback=True)
    assert _resolve(admitted, ["127.0.0.1", "::1"]) == ["127.0.0.1", "::1"]
    assert _resolve(admitted, ["127.0.0.1", "::1"], socket.AF_INET6) == ["::1"]
    with pytest.raises(BlockedDestination, match=r"h\.test resolves to 10\.0\.0\.1"):
        _resolve(GuardPolicy(), ["93.184.216.34", "10.0.0.1"])


@pytest.mark.parametrize(
    "answer",
    ["169.254.169.254", "169.254.170.2", "169.254.170.23", "100.100.100.200", "fd00:ec2::23"],
)
def test_a_name_resolving_to_a_metadata_endpoint_is_refused_whatever_the_switches(
    answer: str,
) -> None:
    # a stub resolver: the answer is checked, never connected to
    everything = GuardPolicy(allow_private=True, allow_loopback=True)
    with pytest.raises(BlockedDestination, match="cloud metadata endpoint"):
        _resolve(everything, ["127.0.0.1", answer])


def test_a_family_with_no_address_is_a_resolution_error() -> None:
    with pytest.raises(socket.gaierror, match="no usable address"):
        _resolve(GuardPolicy(allow_loopback=True), ["127.0.0.1"], socket.AF_INET6)


@pytest.mark.parametrize(
    "host",
    ["127.1", "2130706433", "127.0.0.1.", "[::ffff:7f00:1]", "[fe80::1%25eth0]", "0.0.0.0"],
)
def test_ip_literal_hosts_in_any_form_are_refused_before_sending(host: str) -> None:
    transport = build_transport(policy=GuardPolicy())

    async def run() -> None:
        with pytest.raises(BlockedDestination):
            await transport.handle_async_request(httpx.Request("POST", f"http://{host}/"))
        await transport.aclose()

    asyncio.run(run())
