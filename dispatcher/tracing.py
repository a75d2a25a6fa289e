"""OpenTelemetry tracing, set up from the standard `OTEL_*` environment variables (contract 10).

Only an endpoint (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`) turns it
on. Without one, `start` returns None having imported nothing of OpenTelemetry: no exporter, no
span processor, and the delivery path takes its untraced branch. With one, the SDK reads the rest
itself: `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER(_ARG)`,
`OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`, `_TIMEOUT`, `_COMPRESSION`, `_CERTIFICATE`, and
`OTEL_BSP_*` for the batch span processor.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from dispatcher.errors import ConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
PROTOCOL = "http/protobuf"  # the one exporter installed
SERVICE_NAME = "dugaa-dispatcher"  # unless OTEL_SERVICE_NAME (or service.name) says otherwise


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether traces are to be exported: an OTLP endpoint is set and the SDK is not disabled."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINTS)


def start(component: str, environ: Mapping[str, str] = os.environ) -> TracerProvider | None:
    """A tracer provider exporting over OTLP in batches, or None when tracing is off.

    `component` (worker, admin, replay) becomes the resource attribute `dispatcher.component`.
    Each process calls it for itself (`--workers N` starts N fresh processes). Raises
    `ConfigError` for a protocol other than http/protobuf, naming the variable.
    """
    if not enabled(environ):
        return None
    for name in PROTOCOLS:
        protocol = environ.get(name, "").strip()
        if protocol:
            if protocol != PROTOCOL:
                raise ConfigError(
                    f"{name}={protocol!r}: the dispatcher exports traces over OTLP "
                    f"{PROTOCOL} only (unset it, or set it to {PROTOCOL})"
                )
            break
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"dispatcher.component": component})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource)  # its sampler from OTEL_TRACES_SAMPLER
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def stop(provider: TracerProvider | None) -> None:
    """Export what is still buffered, then shut the exporter down (no-op when tracing is off)."""
    if provider is not None:
        provider.shutdown()
