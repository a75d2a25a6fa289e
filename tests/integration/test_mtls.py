"""mTLS against a loopback TLS server that requires a client certificate from its own CA."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dispatcher.errors import ConfigError
from dispatcher.model.hook import Hook
from dispatcher.security.tls import ssl_context_for

KEY_PASSWORD = "key-passphrase"
# The refusal arrives as an alert after the TLS 1.3 handshake; depending on timing, httpcore
# reports it as a transport error or lets anyio's ssl.SSLError through.
REFUSED = (httpx.TransportError, ssl.SSLError)


@dataclass(frozen=True, slots=True)
class Pki:
    """File paths of a test CA, a server certificate for 127.0.0.1 and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_key_encrypted: Path
    stranger_cert: Path  # a client certificate from a CA the server does not trust
    stranger_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    usage: x509.ObjectIdentifier | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer or (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if usage == ExtendedKeyUsageOID.SERVER_AUTH:
        san = x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate | None = None, key: Any = None, pw: str = "") -> Path:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    else:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(pw.encode())
            if pw
            else serialization.NoEncryption()
        )
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
            )
        )
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    keys = {n: ec.generate_private_key(ec.SECP256R1()) for n in ("ca", "srv", "cli", "oca", "str")}
    ca = _issue("dugaa test ca", keys["ca"], None, ca=True)
    other_ca = _issue("some other ca", keys["oca"], None, ca=True)
    server = _issue("127.0.0.1", keys["srv"], (ca.subject, keys["ca"]), usage=_SERVER)
    client = _issue("dugaa-dispatcher", keys["cli"], (ca.subject, keys["ca"]), usage=_CLIENT)
    stranger = _issue("stranger", keys["str"], (other_ca.subject, keys["oca"]), usage=_CLIENT)
    return Pki(
        ca=_write(d / "ca.pem", ca),
        server_cert=_write(d / "server.pem", server),
        server_key=_write(d / "server.key", key=keys["srv"]),
        client_cert=_write(d / "client.pem", client),
        client_key=_write(d / "client.key", key=keys["cli"]),
        client_key_encrypted=_write(d / "client-enc.key", key=keys["cli"], pw=KEY_PASSWORD),
        stranger_cert=_write(d / "stranger.pem", stranger),
        stranger_key=_write(d / "stranger.key", key=keys["str"]),
    )


_SERVER, _CLIENT = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: TlsServer

    def handle(self) -> None:
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            self.server.refused.append(exc)
            self.server.refusal.set()
            return
        super().handle()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        peer = self.request.getpeercert()
        subject = dict(item for rdn in peer["subject"] for item in rdn)
        body = subject["commonName"].encode()
        self.server.served.append(subject["commonName"])
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class TlsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, pki: Pki) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.server_cert, pki.server_key)
        context.load_verify_locations(cafile=pki.ca)
        context.verify_mode = ssl.CERT_REQUIRED
        self.socket = context.wrap_socket(
            self.socket, server_side=True, do_handshake_on_connect=False
        )
        self.refused: list[BaseException] = []
        self.refusal = threading.Event()
        self.served: list[str] = []

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}/hook"


@pytest.fixture
def server(pki: Pki) -> Iterator[TlsServer]:
    srv = TlsServer(pki)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def _hook(url: str, auth: dict[str, Any], tls: dict[str, Any] | None = None) -> Hook:
    return Hook.from_dict({"id": "h", "events": ["x"], "url": url, "auth": auth, "tls": tls or {}})


def _post(hook: Hook) -> httpx.Response:
    async def main() -> httpx.Response:
        async with httpx.AsyncClient(verify=ssl_context_for(hook), timeout=10) as client:
            return await client.post(hook.url, content=b"{}")

    return asyncio.run(main())


def test_client_certificate_is_presented_and_accepted(server: TlsServer, pki: Pki) -> None:
    auth = {"type": "mtls", "cert": str(pki.client_cert), "key": str(pki.client_key)}
    response = _post(_hook(server.url, {**auth, "ca": str(pki.ca)}))
    assert (response.status_code, response.text) == (200, "dugaa-dispatcher")
    assert server.served == ["dugaa-dispatcher"]


def test_encrypted_client_key_with_its_password(server: TlsServer, pki: Pki) -> None:
    auth = {
        "type": "mtls",
        "cert": str(pki.client_cert),
        "key": str(pki.client_key_encrypted),
        "password": KEY_PASSWORD,
    }
    assert _post(_hook(server.url, auth, {"ca": str(pki.ca)})).text == "dugaa-dispatcher"


def test_without_a_client_certificate_the_server_refuses(server: TlsServer, pki: Pki) -> None:
    with pytest.raises(REFUSED):
        _post(_hook(server.url, {"type": "none"}, {"ca": str(pki.ca)}))
    assert server.refusal.wait(timeout=5)
    assert server.served == []
    assert len(server.refused) == 1


def test_a_certificate_from_another_ca_is_refused(server: TlsServer, pki: Pki) -> None:
    auth = {"type": "mtls", "cert": str(pki.stranger_cert), "key": str(pki.stranger_key)}
    with pytest.raises(REFUSED):
        _post(_hook(server.url, {**auth, "ca": str(pki.ca)}))
    assert server.refusal.wait(timeout=5)
    assert server.served == []
    assert len(server.refused) == 1


def test_server_outside_the_trusted_roots_is_refused(server: TlsServer, pki: Pki) -> None:
    auth = {"type": "mtls", "cert": str(pki.client_cert), "key": str(pki.client_key)}
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        _post(_hook(server.url, auth))  # default roots: our test CA is not among them
    assert server.served == []


def test_verify_false_skips_server_verification(server: TlsServer, pki: Pki) -> None:
    auth = {"type": "mtls", "cert": str(pki.client_cert), "key": str(pki.client_key)}
    assert _post(_hook(server.url, auth, {"verify": False})).status_code == 200


def test_unreadable_client_key_is_a_config_error_naming_the_file(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "nope.key"
    hook = _hook(
        "https://127.0.0.1/", {"type": "mtls", "cert": str(pki.client_cert), "key": str(missing)}
    )
    with pytest.raises(ConfigError, match=r"hook h: auth\.cert/auth\.key"):
        ssl_context_for(hook)
    auth = {"type": "mtls", "cert": str(pki.client_cert), "key": str(pki.client_key_encrypted)}
    wrong = _hook("https://127.0.0.1/", {**auth, "password": "not-it"})
    with pytest.raises(ConfigError) as caught:
        ssl_context_for(wrong)
    assert "not-it" not in str(caught.value)


def test_an_encrypted_key_without_a_password_is_a_config_error_never_a_prompt(
    pki: Pki, capfd: pytest.CaptureFixture[str]
) -> None:
    """OpenSSL asks for a missing password on the terminal: `hooks test --send` (and a worker
    started by hand) waited there at "Enter PEM pass phrase:", and without a terminal the
    error said "Invalid argument"."""
    auth = {"type": "mtls", "cert": str(pki.client_cert), "key": str(pki.client_key_encrypted)}
    hook = _hook("https://127.0.0.1/", auth)
    with pytest.raises(ConfigError, match=r"auth\.key: the private key is encrypted, and no"):
        ssl_context_for(hook)
    assert "pass phrase" not in capfd.readouterr().err


def test_missing_ca_bundle_is_a_config_error(tmp_path: Path) -> None:
    hook = _hook("https://127.0.0.1/", {"type": "none"}, {"ca": str(tmp_path / "ca.pem")})
    with pytest.raises(ConfigError, match=r"tls\.ca"):
        ssl_context_for(hook)
