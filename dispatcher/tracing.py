"""OpenTelemetry tracing, set up from the standard `OTEL_*` environment variables (contract 10).

Only an endpoint (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`) turns it
on. Without one, `start` returns None having imported nothing of OpenTelemetry: no exporter, no
span processor, and the delivery path takes its untraced branch. With one, the SDK reads the rest
itself: `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER(_ARG)`,
`OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`, `_TIMEOUT`, `_COMPRESSION`, `_CERTIFICATE`, and
`OTEL_BSP_*` for the batch span processor.

A worker's stop bounds the final export by its stop deadline (`stop(provider, by)`): a trace
collector that does not answer costs the stop no more, and the spans it did not take are
dropped, said in one line.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from dispatcher.errors import ConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
PROTOCOL = "http/protobuf"  # the one exporter installed
SERVICE_NAME = "dugaa-dispatcher"  # unless OTEL_SERVICE_NAME (or service.name) says otherwise
STOP_SECONDS = 10.0  # a stop with no deadline of its own waits for the collector this long
log = logging.getLogger(__name__)
# each provider's count of the spans ended and not exported yet (queued, or being sent)
_unexported: weakref.WeakKeyDictionary[TracerProvider, Callable[[], int]] = (
    weakref.WeakKeyDictionary()
)


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
    exporter = _in_flight(OTLPSpanExporter())
    processor = BatchSpanProcessor(exporter)
    provider.add_span_processor(processor)

    def unexported() -> int:
        # the batch processor's queue (the SDK has no public count of it), and the batch sent
        queued = getattr(getattr(processor, "_batch_processor", None), "_queue", ())
        return len(queued) + int(exporter.in_flight)

    _unexported[provider] = unexported
    return provider


def stop(provider: TracerProvider | None, by: float | None = None) -> None:
    """Export what is still buffered, then shut the exporter down (no-op when tracing is off).

    Waits no longer than `by` (a `time.monotonic()` deadline: a worker's stop deadline), or
    `STOP_SECONDS` from now without one (the admin service, `replay`): the SDK's own waits
    (`OTEL_EXPORTER_OTLP_TIMEOUT` an export, 30 s its shutdown) are not bounded by it. The
    spans not exported by then are dropped, said in one warning."""
    if provider is None:
        return
    if by is None:
        by = time.monotonic() + STOP_SECONDS

    def shut_down() -> None:
        try:
            provider.shutdown()
        except Exception as exc:  # a line, not a thread's traceback on stderr
            log.warning("tracing: shutting the span exporter down failed: %s", type(exc).__name__)

    stopping = threading.Thread(target=shut_down, name="tracing stop", daemon=True)
    stopping.start()
    stopping.join(max(by - time.monotonic(), 0.0))
    if stopping.is_alive():  # left behind: a daemon thread, ended with the process
        count = _unexported[provider]() if provider in _unexported else 0
        log.warning(
            "tracing: %d spans not exported by the stop deadline (the trace collector did not"
            " answer in time): dropped",
            count,
        )


def _in_flight(exporter: Any) -> Any:
    """`exporter`, counting the spans of the export under way (`in_flight`)."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class InFlight(SpanExporter):
        def __init__(self) -> None:
            self.in_flight = 0

        def export(self, spans: Any) -> SpanExportResult:
            self.in_flight = len(spans)
            try:
                result: SpanExportResult = exporter.export(spans)
            finally:
                self.in_flight = 0
            return result

        def shutdown(self) -> None:
            exporter.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            flushed: bool = exporter.force_flush(timeout_millis)
            return flushed

    return InFlight()
