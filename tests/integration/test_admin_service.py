"""`dispatcher admin` as a process: it refuses to start without usable tokens, binds loopback by
default, bounds requests on the wire, and workers no longer serve the API."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from admin_support import ADMIN, ADMIN_TOKEN, TOKEN_ENV, AdminDeployment
from dispatch_support import free_port, hook
from kafka_support import wait_for


def admin_command(config: Path, env: dict[str, str]) -> list[str]:
    return [sys.executable, "-m", "dispatcher", "admin", "--config", str(config)]


@pytest.fixture
def deployment(kafka_bootstrap: str, tmp_path: Path) -> AdminDeployment:
    return AdminDeployment(kafka_bootstrap, tmp_path, [hook("a", "http://127.0.0.1:9/a", ["x"])])


@pytest.fixture
def admin_process(deployment: AdminDeployment) -> Iterator[int]:
    """`dispatcher admin` with the default host, on a free port; its port."""
    config = yaml.safe_load(deployment.config_path.read_text())
    del config["admin"]["host"]
    port = config["admin"]["port"] = free_port()
    config["admin"]["max_body_bytes"] = 1000
    config["admin"]["trusted_proxies"] = ["127.0.0.2/32"]  # loopback, as a proxy would connect
    deployment.config_path.write_text(yaml.safe_dump(config))
    env = {**os.environ, **TOKEN_ENV}
    log = deployment.directory / "admin.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            admin_command(deployment.config_path, env), env=env, stdout=sink, stderr=sink
        )
    try:
        wait_for(lambda: answers(port), 60, message="dispatcher admin")
        yield port
    finally:
        process.terminate()
        code = process.wait(timeout=30)
    assert code == 0, log.read_text()
    assert "admin service stopped" in log.read_text()  # its clients closed, not cut off


def answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on TCP `port` (from /proc/net/tcp*)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                packed = bytes.fromhex(address)
                if len(packed) == 4:
                    found.add(socket.inet_ntop(socket.AF_INET, packed[::-1]))
                else:
                    words = b"".join(packed[i : i + 4][::-1] for i in range(0, 16, 4))
                    found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


RESET = 0  # the status `raw` gives a connection reset before any answer reached it


def raw(port: int, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send bytes as they are (no client fixes them up); the status and the body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        data = b""
        try:
            conn.sendall(head + b"\r\n\r\n" + body)
            while chunk := conn.recv(65536):
                data += chunk
        except ConnectionResetError:
            # a server that refuses a request before reading all of it closes with our bytes
            # unread, so its kernel resets the connection and drops what it had not sent yet
            if not data:
                return RESET, b""
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


def test_the_admin_binds_loopback_by_default_and_bounds_requests_on_the_wire(
    admin_process: int,
) -> None:
    port = admin_process
    assert listening_addresses(port) == {"127.0.0.1"}

    auth = ADMIN["Authorization"].encode()
    request = b"POST /api/hooks HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth
    status, _ = raw(port, request + b"\r\nContent-Length: -1")
    assert status == 400
    status, _ = raw(port, request + b"\r\nContent-Length: 12abc")
    assert status == 400
    status, body = raw(port, request + b"\r\nContent-Length: 1001", b"{}")
    assert status == 413
    assert b"at most" in body
    status, _ = raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000)
    # refused, however the 70 KB arrive: whole, the head reaches `Bounds` (431); in pieces, h11
    # stops at 16 KB still incomplete (400); and the reset of our unread bytes can overtake both
    assert status in (431, 400, RESET)
    chunked = request + b"\r\nTransfer-Encoding: chunked"
    status, _ = raw(port, chunked, (b"320\r\n" + b"x" * 0x320 + b"\r\n") * 2 + b"0\r\n\r\n")
    assert status == 413
    answer = httpx.get(f"http://127.0.0.1:{port}/api/hooks/a", headers=ADMIN)
    assert answer.status_code == 200
    assert answer.headers["x-frame-options"] == "DENY"


def test_only_a_trusted_proxy_makes_the_session_cookie_secure(admin_process: int) -> None:
    def session_cookie(source: str) -> str:
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(transport=transport) as client:
            answer = client.post(
                f"http://127.0.0.1:{admin_process}/login",
                data={"token": ADMIN_TOKEN, "next": "/"},
                headers={"X-Forwarded-Proto": "https"},
            )
        assert answer.status_code == 303, answer.text
        return answer.headers["set-cookie"]

    assert "Secure" in session_cookie("127.0.0.2")  # the listed proxy: its https counts
    assert "Secure" not in session_cookie("127.0.0.1")  # anyone else: the header is ignored


def test_an_empty_or_short_token_stops_the_start(deployment: AdminDeployment) -> None:
    for value, said in (("", "empty"), ("short", "too short")):
        env = {**os.environ, **TOKEN_ENV, "DUGAA_TEST_VIEWER_TOKEN": value}
        done = subprocess.run(
            admin_command(deployment.config_path, env), env=env, capture_output=True, timeout=60
        )
        assert done.returncode == 1, done.stderr
        assert said.encode() in done.stderr
        assert b"admin.tokens[1].token" in done.stderr
        assert b"Traceback" not in done.stderr


def test_an_admin_port_another_process_holds_exits_1_naming_the_setting_before_kafka(
    deployment: AdminDeployment,
) -> None:
    """uvicorn, left to bind it, logged its own line and exited 3, which says that Kafka could
    not be reached; the address is taken first, so Kafka is not even asked (a closed port)."""
    with socket.socket() as taken, socket.socket() as closed:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        closed.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        config = yaml.safe_load(deployment.config_path.read_text())
        config["admin"]["port"] = port
        config["kafka"]["bootstrap.servers"] = f"127.0.0.1:{closed.getsockname()[1]}"
        deployment.config_path.write_text(yaml.safe_dump(config))
        env = {**os.environ, **TOKEN_ENV}
        done = subprocess.run(
            admin_command(deployment.config_path, env), env=env, capture_output=True, timeout=60
        )
    assert done.returncode == 1, done.stderr
    assert done.stderr.decode().splitlines()[-1] == (
        f"error: cannot listen on 127.0.0.1:{port} (admin.host, admin.port): Address already in"
        " use; another process listens there: stop it, or choose another port"
    )
    assert b"Traceback" not in done.stderr


def test_a_worker_serves_only_metrics_and_health(deployment: AdminDeployment) -> None:
    with deployment.worker() as worker:
        wait_for(lambda: worker.status is not None, 30, message="the status server")
        assert worker.status is not None
        base = f"http://127.0.0.1:{worker.status.port}"
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/metrics").status_code == 200
        assert httpx.get(f"{base}/api/hooks", headers=ADMIN).status_code == 404
        assert httpx.get(f"{base}/openapi.json").status_code == 404
        assert httpx.post(f"{base}/healthz", content=b"x" * 10).status_code == 405
