"""`dispatcher healthcheck`: the image's HEALTHCHECK asks the port the configuration gives,
and says why it finds a service unhealthy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from dispatcher.cli.healthcheck import health_url
from dispatcher.cli.main import main
from dispatcher.config.admin import Admin
from dispatcher.config.settings import Settings
from dispatcher.engine.status import StatusServer


@pytest.fixture
def worker() -> Iterator[StatusServer]:
    """A worker's status server on loopback, not ready (it holds no partitions)."""
    server = StatusServer(0, CollectorRegistry(), lambda: False, host="127.0.0.1")
    server.start()
    yield server
    server.stop()


def configured(tmp_path: Path, text: str) -> str:
    config = tmp_path / "dispatcher.yaml"
    config.write_text(text)
    return str(config)


def test_a_worker_that_answers_is_healthy_even_before_it_is_ready(
    worker: StatusServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = configured(tmp_path, f"http_port: {worker.port}\n")
    assert main(["healthcheck", "--config", config]) == 0
    assert main(["healthcheck", "--ready", "--config", config]) == 1
    assert capsys.readouterr().err == (
        f"unhealthy: http://127.0.0.1:{worker.port}/readyz: HTTP 503\n"
    )


def test_a_worker_with_a_hung_part_is_unhealthy_and_the_reason_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stalled = {"delivery loop": 131.2}
    server = StatusServer(
        0, CollectorRegistry(), lambda: True, host="127.0.0.1", stalled=lambda: stalled
    )
    server.start()
    try:
        config = configured(tmp_path, f"http_port: {server.port}\n")
        assert main(["healthcheck", "--config", config]) == 1
    finally:
        server.stop()
    assert capsys.readouterr().err == (
        f"unhealthy: http://127.0.0.1:{server.port}/healthz: HTTP 503: stalled: delivery loop"
        " 131.2s\n"
    )


def test_nothing_answering_on_the_port_is_unhealthy(
    worker: StatusServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = worker.port
    worker.stop()
    assert main(["healthcheck", "--config", configured(tmp_path, f"http_port: {port}\n")]) == 1
    assert capsys.readouterr().err.startswith(f"unhealthy: http://127.0.0.1:{port}/healthz: ")


def test_the_admin_service_is_asked_on_admin_port(
    worker: StatusServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPATCHER_ADMIN_PORT", str(worker.port))  # it answers /healthz too
    config = configured(tmp_path, "http_port: 1\n")
    assert main(["healthcheck", "--admin", "--config", config]) == 0


def test_a_worker_on_any_free_port_cannot_be_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["healthcheck", "--config", configured(tmp_path, "http_port: 0\n")]) == 1
    assert "http_port is 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:9401/healthz"),
        ("::", "http://[::1]:9401/healthz"),
        ("127.0.0.1", "http://127.0.0.1:9401/healthz"),
        ("10.1.2.3", "http://10.1.2.3:9401/healthz"),
        ("fd00::5", "http://[fd00::5]:9401/healthz"),
    ],
)
def test_the_admin_service_is_asked_where_it_listens(host: str, url: str) -> None:
    assert health_url(Settings(admin=Admin(host=host)), admin=True) == url


def test_ready_and_admin_together_are_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["healthcheck", "--ready", "--admin"])
    assert exited.value.code == 2
