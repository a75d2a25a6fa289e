"""Tracing is set up from the OTEL_* environment only when an OTLP endpoint is set."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http import trace_exporter
from opentelemetry.sdk.trace import export

from dispatcher import tracing
from dispatcher.errors import ConfigError

ENDPOINT = "http://127.0.0.1:4318"


def _counting(real: type, name: str, names: list[str]) -> Any:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        names.append(name)
        real.__init__(self, *args, **kwargs)  # type: ignore[misc]

    return __init__


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The exporters and span processors `tracing.start` makes, by class name."""
    names: list[str] = []
    for module, name in ((trace_exporter, "OTLPSpanExporter"), (export, "BatchSpanProcessor")):
        real = getattr(module, name)
        spy = type(name, (real,), {"__init__": _counting(real, name, names)})
        monkeypatch.setattr(module, name, spy)
    for variable in (*tracing.ENDPOINTS, *tracing.PROTOCOLS, "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(variable, raising=False)
    return names


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{ENDPOINT}/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        ({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_only_an_endpoint_turns_tracing_on(environ: dict[str, str], on: bool) -> None:
    assert tracing.enabled(environ) is on


def test_without_an_endpoint_no_exporter_or_span_processor_is_made(made: list[str]) -> None:
    assert tracing.start("worker", {"OTEL_SERVICE_NAME": "svc"}) is None
    assert made == []
    tracing.stop(None)


def test_with_an_endpoint_one_batch_processor_exports_over_otlp_http(
    made: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", ENDPOINT)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    provider = tracing.start("admin")
    try:
        assert provider is not None
        assert made == ["OTLPSpanExporter", "BatchSpanProcessor"]
        attributes = provider.resource.attributes
        assert attributes["service.name"] == "dugaa-dispatcher"
        assert attributes["dispatcher.component"] == "admin"
    finally:
        tracing.stop(provider)


def test_the_service_name_is_the_operators_when_set(
    made: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", ENDPOINT)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "dispatch-eu")
    provider = tracing.start("worker")
    try:
        assert provider is not None
        assert provider.resource.attributes["service.name"] == "dispatch-eu"
    finally:
        tracing.stop(provider)


@pytest.mark.parametrize("variable", tracing.PROTOCOLS)
def test_a_protocol_other_than_http_protobuf_is_refused_by_name(
    made: list[str], monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", ENDPOINT)
    monkeypatch.setenv(variable, "grpc")
    with pytest.raises(ConfigError, match=f"{variable}='grpc'.*http/protobuf only"):
        tracing.start("worker")
    assert made == []


def test_the_worker_path_without_an_endpoint_never_imports_opentelemetry() -> None:
    """In a fresh interpreter: the worker, delivery, replay and CLI modules, and `start`, load
    nothing of OpenTelemetry (not even the API) when no endpoint is set."""
    script = (
        "import sys\n"
        "import dispatcher.cli.main, dispatcher.engine.worker, dispatcher.engine.deliver\n"
        "import dispatcher.engine.processes, dispatcher.ops.replay.run\n"
        "from dispatcher import tracing\n"
        "assert tracing.start('worker') is None\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    environ = {"PATH": "/usr/bin:/bin", "OTEL_SERVICE_NAME": "x"}
    shown = subprocess.run(
        [sys.executable, "-c", script], env=environ, capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == "[]"
