"""The guarded transport against real loopback servers, with stub resolvers.

The guard's tests run on both of a transport's paths (`VIA`): a request as httpx sends it
(OAuth2 token requests, on aiohttp) and a delivery's (`exchange`, on the lean client of
http/wire.py). No test here sends a packet beyond loopback: names resolve through
`StubResolver`, and every connection of either path passes `LoopbackOnly`, which refuses
(before connecting) any address that is not loopback, so a guard bug fails a test instead of
reaching the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gzip
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path

import aiohttp
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dispatcher.errors import BlockedDestination, ConfigError
from dispatcher.http.transport import GuardedTransport, ResolutionCache, build_transport
from dispatcher.model.request import Request
from dispatcher.security.guard import GuardPolicy, Resolver

LOOPBACK_ONLY = GuardPolicy.from_config(allow_cidrs=["127.0.0.0/8"])
Reply = tuple[int, dict[str, str], bytes]


class StubResolver:
    """Answers from a table; a host's answers are used in turn, the last one repeating."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        turn = sum(1 for h in self.calls if h == host)
        self.calls.append(host)
        options = self.answers[host]
        return options[min(turn, len(options) - 1)]


class LoopbackOnly:
    """A socket factory that records every address connected to and refuses any not loopback.

    Both paths ask it for each socket they are about to connect, with the address they will
    connect to, so it sees exactly where connections go. It refuses a stray address before a socket
    exists; aiohttp takes that refusal for a failed connect and carries on, so the strays are
    kept and `no_stray_connections` fails the test.
    """

    def __init__(self) -> None:
        self.hosts: list[str] = []
        self.strays: list[str] = []
        RECORDERS.append(self)

    def __call__(self, addr_info: aiohttp.AddrInfoType) -> socket.socket:
        family, kind, proto, _, address = addr_info
        self.hosts.append(address[0])
        if not ip_address(address[0]).is_loopback:
            self.strays.append(address[0])
            raise ConnectionRefusedError(f"the guard let {address[0]} through to connect")
        return socket.socket(family, kind, proto)


RECORDERS: list[LoopbackOnly] = []


@pytest.fixture(autouse=True)
def no_stray_connections() -> Iterator[None]:
    RECORDERS.clear()
    yield
    assert [stray for r in RECORDERS for stray in r.strays] == []


def guarded(
    policy: GuardPolicy,
    resolver: Resolver,
    *,
    dns_ttl: float = 30.0,
    ssl_context: ssl.SSLContext | bool = True,
    timeout: float | None = None,
) -> tuple[GuardedTransport, LoopbackOnly]:
    recorder = LoopbackOnly()
    transport = build_transport(
        policy=policy,
        resolver=resolver,
        dns_ttl=dns_ttl,
        ssl_context=ssl_context,
        socket_factory=recorder,
        timeout=timeout,
    )
    return transport, recorder


VIA = ("httpx", "wire")
CAP = 65_537  # bytes of a response body a delivery reads at most
Answer = tuple[int, bytes]  # status and body
Send = Callable[..., Awaitable[Answer]]


@contextlib.asynccontextmanager
async def sending(
    transport: GuardedTransport, via: str, timeout: float | None = None
) -> AsyncIterator[Send]:
    """`send(url, content=None)`: a GET (a POST with `content`) through `transport` on path
    `via`, answering (status, body); the transport is closed at the end."""
    if via == "httpx":
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:

            async def send_httpx(url: str, content: bytes | None = None) -> Answer:
                method = "GET" if content is None else "POST"
                response = await client.request(method, url, content=content)
                return response.status_code, response.content

            yield send_httpx
        return

    async def send_wire(url: str, content: bytes | None = None) -> Answer:
        method = "GET" if content is None else "POST"
        response = await transport.exchange(Request(method, url, (), content or b""), CAP)
        return response.status, response.body

    try:
        yield send_wire
    finally:
        await transport.aclose()


@dataclass
class Seen:
    path: str
    host: str
    peer_port: int


def ok(path: str) -> Reply:
    return 200, {}, b"ok"


@dataclass
class Receiver:
    """A small HTTP/1.1 server on 127.0.0.1 that records what reaches it."""

    reply: Callable[[str], Reply] = ok
    seen: list[Seen] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)
    port: int = 0
    handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                path = head[0].split(" ")[1]
                headers = dict(line.lower().split(": ", 1) for line in head[1:] if line)
                await reader.readexactly(int(headers.get("content-length", "0")))
                self.seen.append(Seen(path, headers["host"], writer.get_extra_info("peername")[1]))
                status, extra, body = self.reply(path)
                length = extra.pop("content-length", str(len(body)))
                lines = [f"HTTP/1.1 {status} X", f"Content-Length: {length}"]
                lines += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
                await writer.drain()
                if extra.get("Connection") == "close" or length != str(len(body)):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    @contextlib.asynccontextmanager
    async def serving(self, tls: ssl.SSLContext | None = None) -> AsyncIterator[Receiver]:
        if tls is not None:
            tls.sni_callback = lambda _obj, name, _ctx: self.sni.append(name)
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0, ssl=tls)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            await server.wait_closed()
            # clients are closed by now: each handler ends on end-of-file
            await asyncio.wait_for(asyncio.gather(*self.handlers), timeout=10)


def closing(path: str) -> Reply:
    return 200, {"Connection": "close"}, b"ok"


@pytest.mark.parametrize("via", VIA)
def test_allowed_loopback_destination_reaches_a_loopback_server(via: str) -> None:
    async def scenario() -> None:
        resolver = StubResolver({"receiver.test": [["127.0.0.1"]]})
        transport, recorder = guarded(GuardPolicy(allow_loopback=True), resolver)
        async with Receiver().serving() as rx, sending(transport, via) as send:
            answer = await send(f"http://receiver.test:{rx.port}/hook", b"{}")
            assert recorder.hosts == ["127.0.0.1"]
            assert answer == (200, b"ok")
            assert rx.seen == [Seen("/hook", f"receiver.test:{rx.port}", rx.seen[0].peer_port)]

    asyncio.run(scenario())


@pytest.mark.parametrize("via", VIA)
def test_default_policy_refuses_a_name_resolving_to_loopback(via: str) -> None:
    async def scenario() -> None:
        resolver = StubResolver({"receiver.test": [["127.0.0.1"]]})
        transport, recorder = guarded(GuardPolicy(), resolver)
        async with Receiver().serving() as rx, sending(transport, via) as send:
            with pytest.raises(BlockedDestination, match="allow_loopback: true"):
                await send(f"http://receiver.test:{rx.port}/")
            assert rx.seen == []
            assert recorder.hosts == []

    asyncio.run(scenario())


@pytest.mark.parametrize("via", VIA)
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/",
        "http://127.1:9/",
        "http://2130706433:9/",
        "http://[::1]:9/",
        "http://[::ffff:127.0.0.1]:9/",
        "http://[64:ff9b::a00:1]/",
        "http://0.0.0.0:9/",
        "http://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "http://10.0.0.1/",
    ],
)
def test_ip_literal_urls_are_checked_without_resolving(url: str, via: str) -> None:
    async def scenario() -> None:
        resolver = StubResolver({})
        transport, recorder = guarded(GuardPolicy(), resolver)
        async with sending(transport, via) as send:
            with pytest.raises(BlockedDestination):
                await send(url)
        assert (resolver.calls, recorder.hosts) == ([], [])

    asyncio.run(scenario())


@pytest.mark.parametrize("via", VIA)
@pytest.mark.parametrize("url", ["ftp://receiver.test/", "ws://receiver.test/", "file:///etc/x"])
def test_only_http_and_https_schemes_are_sent(url: str, via: str) -> None:
    async def scenario() -> None:
        transport, recorder = guarded(LOOPBACK_ONLY, StubResolver({}))
        sent = (  # httpx's client would refuse the scheme itself: the transport is asked
            transport.handle_async_request(httpx.Request("POST", url))
            if via == "httpx"
            else transport.exchange(Request("POST", url, (), b"{}"), CAP)
        )
        with pytest.raises(BlockedDestination, match="only http and https"):
            await sent
        assert recorder.hosts == []

    asyncio.run(scenario())


@pytest.mark.parametrize("via", VIA)
def test_a_name_resolving_to_a_public_and_a_private_address_is_refused(via: str) -> None:
    async def scenario() -> None:
        resolver = StubResolver({"mixed.test": [["93.184.216.34", "10.0.0.1"]]})
        transport, recorder = guarded(GuardPolicy(), resolver)
        async with sending(transport, via) as send:
            with pytest.raises(BlockedDestination, match=r"mixed\.test resolves to 10\.0\.0\.1"):
                await send("https://mixed.test/")
        assert recorder.hosts == []

    asyncio.run(scenario())


@pytest.mark.parametrize("via", VIA)
def test_dns_rebinding_connects_to_the_vetted_address_then_refuses_the_rebound_one(
    via: str,
) -> None:
    async def scenario() -> None:
        resolver = StubResolver({"rebind.test": [["127.0.0.1"], ["10.0.0.1"]]})
        transport, recorder = guarded(LOOPBACK_ONLY, resolver, dns_ttl=0)
        async with Receiver(closing).serving() as rx, sending(transport, via) as send:
            assert (await send(f"http://rebind.test:{rx.port}/"))[0] == 200
            assert recorder.hosts == ["127.0.0.1"]
            with pytest.raises(BlockedDestination, match=r"10\.0\.0\.1"):
                await send(f"http://rebind.test:{rx.port}/again")
            assert recorder.hosts == ["127.0.0.1"]  # refused before any connect
            assert [s.path for s in rx.seen] == ["/"]
            assert resolver.calls == ["rebind.test", "rebind.test"]

    asyncio.run(scenario())


@pytest.mark.parametrize("via", VIA)
def test_within_the_ttl_new_connections_reuse_the_vetted_answer(via: str) -> None:
    async def scenario() -> None:
        resolver = StubResolver({"rebind.test": [["127.0.0.1"], ["10.0.0.1"]]})
        transport, recorder = guarded(LOOPBACK_ONLY, resolver)
        async with Receiver(closing).serving() as rx, sending(transport, via) as send:
            for _ in range(3):
                assert (await send(f"http://rebind.test:{rx.port}/"))[0] == 200
            assert len({s.peer_port for s in rx.seen}) == 3  # three connections
        assert resolver.calls == ["rebind.test"]
        assert recorder.hosts == ["127.0.0.1"] * 3

    asyncio.run(scenario())


@pytest.mark.parametrize("via", VIA)
def test_keep_alive_reuses_one_connection(via: str) -> None:
    async def scenario() -> None:
        resolver = StubResolver({"receiver.test": [["127.0.0.1"]]})
        transport, recorder = guarded(LOOPBACK_ONLY, resolver)
        async with Receiver().serving() as rx, sending(transport, via) as send:
            for _ in range(5):
                assert await send(f"http://receiver.test:{rx.port}/", b"x") == (200, b"ok")
        assert len(rx.seen) == 5
        assert len({s.peer_port for s in rx.seen}) == 1
        assert rx.seen[0].host == f"receiver.test:{rx.port}"
        assert recorder.hosts == ["127.0.0.1"]

    asyncio.run(scenario())


@pytest.mark.parametrize("via", VIA)
def test_the_next_vetted_address_is_tried_when_one_refuses(via: str) -> None:
    async def scenario() -> None:
        resolver = StubResolver({"two.test": [["127.0.0.2", "127.0.0.1"]]})
        transport, recorder = guarded(LOOPBACK_ONLY, resolver)
        async with Receiver().serving() as rx, sending(transport, via) as send:
            assert (await send(f"http://two.test:{rx.port}/"))[0] == 200
        assert recorder.hosts == ["127.0.0.2", "127.0.0.1"]

    asyncio.run(scenario())


@pytest.mark.parametrize("via", VIA)
def test_a_url_beyond_ascii_reaches_the_receiver_as_httpx_writes_it(via: str) -> None:
    """An IDN host is resolved, vetted and named in IDNA; a space and letters beyond ASCII in
    the path and query are percent-encoded as UTF-8: never written raw into the request line."""

    async def scenario() -> None:
        resolver = StubResolver({"xn--bcher-kva.test": [["127.0.0.1"]]})
        transport, recorder = guarded(LOOPBACK_ONLY, resolver)
        async with Receiver().serving() as rx, sending(transport, via) as send:
            answer = await send(f"http://bücher.test:{rx.port}/envío?q=ü x", b"{}")
            assert answer == (200, b"ok")
        assert resolver.calls == ["xn--bcher-kva.test"]
        assert recorder.hosts == ["127.0.0.1"]
        assert [(s.path, s.host) for s in rx.seen] == [
            ("/env%C3%ADo?q=%C3%BC%20x", f"xn--bcher-kva.test:{rx.port}")
        ]

    asyncio.run(scenario())


def redirect_inward(path: str) -> Reply:
    if path == "/start":
        return 302, {"Location": "http://10.0.0.1/admin"}, b""
    return 200, {}, b"internal"


def test_a_redirect_to_an_internal_address_is_not_followed() -> None:
    async def scenario() -> None:
        resolver = StubResolver({"receiver.test": [["127.0.0.1"]]})
        transport, recorder = guarded(LOOPBACK_ONLY, resolver)
        rx = Receiver(redirect_inward)
        async with rx.serving(), httpx.AsyncClient(transport=transport) as client:
            response = await client.get(f"http://receiver.test:{rx.port}/start")
        assert response.status_code == 302
        assert [s.path for s in rx.seen] == ["/start"]
        assert recorder.hosts == ["127.0.0.1"]

    asyncio.run(scenario())


def test_a_followed_redirect_is_still_guarded_at_every_hop() -> None:
    async def scenario() -> None:
        resolver = StubResolver({"receiver.test": [["127.0.0.1"]]})
        transport, recorder = guarded(LOOPBACK_ONLY, resolver)
        rx = Receiver(redirect_inward)
        async with rx.serving(), httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(BlockedDestination, match=r"10\.0\.0\.1"):
                await client.get(f"http://receiver.test:{rx.port}/start", follow_redirects=True)
        assert recorder.hosts == ["127.0.0.1"]

    asyncio.run(scenario())


@dataclass(frozen=True)
class Certificates:
    ca_pem: str
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    signer: ec.EllipticCurvePrivateKey,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
        )
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), False)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False
        )
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A throw-away CA and a server certificate for receiver.test signed by it."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("test CA", ca_key, None, ca_key)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate("receiver.test", key, ca, ca_key)
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificates(ca.public_bytes(serialization.Encoding.PEM).decode(), cert_file, key_file)


@pytest.mark.parametrize("via", VIA)
@pytest.mark.parametrize(("name", "accepted"), [("receiver.test", True), ("wrong.test", False)])
def test_tls_checks_the_certificate_and_sends_sni_for_the_host_name(
    certificates: Certificates, name: str, accepted: bool, via: str
) -> None:
    async def scenario() -> None:
        resolver = StubResolver({name: [["127.0.0.1"]]})
        trust = ssl.create_default_context(cadata=certificates.ca_pem)
        transport, _ = guarded(LOOPBACK_ONLY, resolver, ssl_context=trust)
        rx = Receiver()
        async with rx.serving(certificates.server_context()), sending(transport, via) as send:
            url = f"https://{name}:{rx.port}/secure"
            if accepted:
                assert (await send(url))[0] == 200
            else:
                with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
                    await send(url)
        assert rx.sni == [name]
        assert len(rx.seen) == int(accepted)

    asyncio.run(scenario())


@pytest.mark.parametrize("via", VIA)
def test_resolution_failure_is_a_connect_error(via: str) -> None:
    class Failing:
        async def resolve(self, host: str, port: int) -> list[str]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def scenario() -> None:
        transport, _ = guarded(GuardPolicy(), Failing())
        async with sending(transport, via) as send:
            with pytest.raises(httpx.ConnectError, match=r"cannot resolve nowhere\.test"):
                await send("http://nowhere.test/")

    asyncio.run(scenario())


@pytest.mark.parametrize("via", VIA)
def test_a_resolver_that_never_answers_times_out_as_a_connect_timeout(via: str) -> None:
    class Hanging:
        async def resolve(self, host: str, port: int) -> list[str]:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    async def scenario() -> None:
        transport, _ = guarded(GuardPolicy(), Hanging(), timeout=0.05)  # the wire's
        async with sending(transport, via, timeout=0.05) as send:  # httpx's, per request
            with pytest.raises(httpx.ConnectTimeout):
                await send("http://slow.test/")

    asyncio.run(scenario())


@pytest.mark.parametrize("via", VIA)
def test_a_refused_connection_and_a_cut_body_are_httpx_errors(via: str) -> None:
    def cut(path: str) -> Reply:
        return 200, {"content-length": "100"}, b"partial"

    async def scenario() -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        resolver = StubResolver({"receiver.test": [["127.0.0.1"]]})
        transport, _ = guarded(LOOPBACK_ONLY, resolver)
        async with Receiver(cut).serving() as rx, sending(transport, via) as send:
            with pytest.raises(httpx.ConnectError):
                await send(f"http://receiver.test:{closed_port}/")
            with pytest.raises(httpx.RemoteProtocolError):
                await send(f"http://receiver.test:{rx.port}/")

    asyncio.run(scenario())


def test_concurrent_lookups_of_one_host_share_one_answer_until_the_ttl_ends() -> None:
    class Gated:
        def __init__(self) -> None:
            self.gate = asyncio.Event()
            self.calls = 0

        async def resolve(self, host: str, port: int) -> list[str]:
            self.calls += 1
            await self.gate.wait()
            return [f"127.0.0.{self.calls}"]

    async def scenario() -> None:
        now = [0.0]
        resolver = Gated()
        cache = ResolutionCache(resolver, ttl=30.0, clock=lambda: now[0])
        waiting = [asyncio.ensure_future(cache.resolve("a.test", 80)) for _ in range(5)]

        async def release() -> None:  # runs after the five have started: tasks start in order
            resolver.gate.set()

        answers = await asyncio.gather(*waiting, release())
        assert answers[:5] == [["127.0.0.1"]] * 5
        now[0] = 29.0
        assert await cache.resolve("a.test", 80) == ["127.0.0.1"]
        now[0] = 31.0
        assert await cache.resolve("a.test", 80) == ["127.0.0.2"]
        assert resolver.calls == 2

    asyncio.run(scenario())


def test_http2_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="http2 is not supported"):
        build_transport(policy=GuardPolicy(), http2=True)


# --- hostile responses: each through the real engine, against a raw loopback server ---

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """A loopback server running `handler` per connection; yields its port."""
    tasks: set[asyncio.Task[None]] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(tracked, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def read_head(reader: asyncio.StreamReader) -> list[bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")[:-2]
    length = [int(h.split(b":")[1]) for h in head if h.lower().startswith(b"content-length:")]
    await reader.readexactly(length[0] if length else 0)
    return head


def client_for(transport: httpx.AsyncBaseTransport, **timeouts: float) -> httpx.AsyncClient:
    timeout = httpx.Timeout(10.0, **timeouts)
    return httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False)


def test_the_request_reaches_the_receiver_with_httpx_headers_once_each() -> None:
    heads: list[list[bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            heads.append(await read_head(reader))
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()

    async def streamed() -> AsyncIterator[bytes]:
        yield b'{"a":'
        yield b"1}"

    async def scenario() -> None:
        transport, _ = guarded(LOOPBACK_ONLY, StubResolver({"rx.test": [["127.0.0.1"]]}))
        async with raw_server(handler) as port, client_for(transport) as client:
            url = f"http://rx.test:{port}/p?q=a%20b"
            headers = {"User-Agent": "dugaa-dispatcher/0.1", "X-Tenant": "acme"}
            assert (await client.post(url, content=b'{"a":1}', headers=headers)).status_code == 204
            assert (await client.post(url, content=streamed())).status_code == 204

    asyncio.run(scenario())
    first, second = ([h.decode().lower() for h in head] for head in heads)
    assert first[0] == "post /p?q=a%20b http/1.1"
    names = [line.split(":")[0] for line in first[1:]]
    assert sorted(names) == sorted(set(names))  # nothing duplicated
    assert {"host: rx.test:" + first[1].split(":")[-1], "content-length: 7"} <= set(first)
    assert "user-agent: dugaa-dispatcher/0.1" in first
    assert "content-type" not in names  # httpx set none; aiohttp must not invent one
    assert "content-length: 7" in second  # a streamed body goes out whole, with its length
    assert not any(line.startswith("transfer-encoding") for line in second)


def test_a_body_is_read_only_as_far_as_the_caller_reads_and_its_connection_is_dropped() -> None:
    peers: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await read_head(reader)
            peers.append(writer.get_extra_info("peername")[1])
            if head[0].startswith(b"GET /endless"):
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                while True:  # never ends: a transport that reads it all never returns
                    writer.write(b"10000\r\n" + b"x" * 0x10000 + b"\r\n")
                    await writer.drain()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    async def scenario() -> None:
        transport, _ = guarded(LOOPBACK_ONLY, StubResolver({"rx.test": [["127.0.0.1"]]}))
        async with raw_server(handler) as port, client_for(transport) as client:
            async with client.stream("GET", f"http://rx.test:{port}/endless") as response:
                got = 0
                async for chunk in response.aiter_bytes():
                    got += len(chunk)
                    if got >= 64 * 1024:
                        break
            assert (await client.get(f"http://rx.test:{port}/next")).text == "ok"
        assert got >= 64 * 1024
        assert len(set(peers)) == 2  # the half-read connection was not reused

    asyncio.run(asyncio.wait_for(scenario(), timeout=20))


@pytest.mark.parametrize("via", VIA)
@pytest.mark.parametrize(
    "interim",
    [
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
        b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n",
    ],
)
def test_an_interim_answer_is_read_past_to_the_final_one(interim: bytes, via: str) -> None:
    """A 1xx answer is not the answer: judged on it, a request the receiver took would be
    retried (sent twice)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_head(reader)
            writer.write(interim)
            await writer.drain()  # apart from the final answer: each parsed as it comes
            writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    async def scenario() -> None:
        transport, recorder = guarded(LOOPBACK_ONLY, StubResolver({"rx.test": [["127.0.0.1"]]}))
        async with raw_server(handler) as port, sending(transport, via) as send:
            for _ in range(2):  # and the connection goes on serving
                assert await send(f"http://rx.test:{port}/", b"{}") == (201, b"ok")
        assert recorder.hosts == ["127.0.0.1"]

    asyncio.run(scenario())


def test_a_flood_of_headers_is_a_protocol_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        flood = b"".join(b"X-Flood-%d: y\r\n" % i for i in range(10_000))
        writer.write(b"HTTP/1.1 200 OK\r\n" + flood + b"Content-Length: 0\r\n\r\n")
        await writer.drain()

    async def scenario() -> None:
        transport, _ = guarded(LOOPBACK_ONLY, StubResolver({"rx.test": [["127.0.0.1"]]}))
        async with raw_server(handler) as port, client_for(transport) as client:
            with pytest.raises(httpx.RemoteProtocolError, match=r"(?i)header"):
                await client.get(f"http://rx.test:{port}/")

    asyncio.run(scenario())


def test_a_stalled_response_is_a_read_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        await reader.read()  # until the client gives up

    async def scenario() -> None:
        transport, _ = guarded(LOOPBACK_ONLY, StubResolver({"rx.test": [["127.0.0.1"]]}))
        async with raw_server(handler) as port, client_for(transport, read=0.1) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(f"http://rx.test:{port}/")

    asyncio.run(scenario())


def test_content_encoding_is_decoded_once_by_httpx() -> None:
    body = gzip.compress(b'{"status":"ok"}')

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        head = f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(body)}\r\n\r\n"
        writer.write(head.encode() + body)
        await writer.drain()

    async def scenario() -> None:
        transport, _ = guarded(LOOPBACK_ONLY, StubResolver({"rx.test": [["127.0.0.1"]]}))
        async with raw_server(handler) as port, client_for(transport) as client:
            response = await client.get(f"http://rx.test:{port}/")
            assert response.json() == {"status": "ok"}
            assert response.headers["content-length"] == str(len(body))

    asyncio.run(scenario())


def test_cookies_set_by_a_receiver_are_not_sent_back_by_the_transport() -> None:
    heads: list[list[bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            heads.append(await read_head(reader))
            writer.write(b"HTTP/1.1 200 OK\r\nSet-Cookie: s=1\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()

    async def scenario() -> None:
        transport, _ = guarded(LOOPBACK_ONLY, StubResolver({"rx.test": [["127.0.0.1"]]}))
        async with raw_server(handler) as port:
            for _ in range(2):
                request = httpx.Request("GET", f"http://rx.test:{port}/")
                response = await transport.handle_async_request(request)
                await response.aclose()
            await transport.aclose()

    asyncio.run(scenario())
    assert len(heads) == 2
    assert not any(line.lower().startswith(b"cookie") for line in heads[1])


def test_a_refused_client_certificate_is_a_connect_error(certificates: Certificates) -> None:
    server = certificates.server_context()
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_verify_locations(cadata=certificates.ca_pem)  # the client presents none
    listener = socket.create_server(("127.0.0.1", 0))
    refusals: list[Exception] = []

    def serve_one() -> None:  # a blocking server: it sends the TLS alert before closing
        connection, _ = listener.accept()
        tls = server.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        try:
            tls.do_handshake()
        except ssl.SSLError as exc:
            refusals.append(exc)
            # read what the client sent meanwhile until it hangs up: closing with unread bytes
            # would reset the connection, and the reset could reach the client before the alert
            with socket.socket(fileno=tls.detach()) as raw, contextlib.suppress(OSError):
                raw.settimeout(10)
                while raw.recv(65536):
                    pass
        finally:
            tls.close()

    async def scenario() -> None:
        trust = ssl.create_default_context(cadata=certificates.ca_pem)
        resolver = StubResolver({"receiver.test": [["127.0.0.1"]]})
        transport, _ = guarded(LOOPBACK_ONLY, resolver, ssl_context=trust)
        port = listener.getsockname()[1]
        async with client_for(transport) as client:
            with pytest.raises(httpx.ConnectError, match="certificate required"):
                await client.post(f"https://receiver.test:{port}/", content=b"{}")

    thread = threading.Thread(target=serve_one)
    thread.start()
    try:
        asyncio.run(scenario())
    finally:
        thread.join(timeout=10)
        listener.close()
    assert len(refusals) == 1
