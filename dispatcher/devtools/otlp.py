"""A loopback OTLP/HTTP trace collector for the tests and the benchmark: the receiver answering
`/v1/traces`, its export requests decoded with opentelemetry-proto (which the OTLP exporter
installs)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from dispatcher.devtools.receiver import Behaviour, Receiver

TRACES = "/v1/traces"
KINDS = {
    Span.SPAN_KIND_INTERNAL: "internal",
    Span.SPAN_KIND_SERVER: "server",
    Span.SPAN_KIND_CLIENT: "client",
    Span.SPAN_KIND_PRODUCER: "producer",
    Span.SPAN_KIND_CONSUMER: "consumer",
}


@dataclass(frozen=True, slots=True)
class ExportedSpan:
    """One span as a collector received it: ids in lowercase hex, attributes as plain values."""

    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    trace_state: str
    attributes: dict[str, Any]
    events: tuple[tuple[str, dict[str, Any]], ...]
    links: tuple[tuple[str, str], ...]
    status_code: int
    resource: dict[str, Any]

    @property
    def ids(self) -> str:
        """`trace-id-span-id`: what a W3C traceparent naming this span holds between its version
        and its flags (sampled, and on a trace the dispatcher began, random)."""
        return f"{self.trace_id}-{self.span_id}"


def otlp_receiver(host: str = "127.0.0.1") -> Receiver:
    """A receiver answering OTLP/HTTP export requests with 200 (started by the caller); set
    `OTEL_EXPORTER_OTLP_ENDPOINT` to its `url`."""
    return Receiver({TRACES: Behaviour(body=b"", content_type="application/x-protobuf")}, host)


def exporting_to(receiver: Receiver) -> dict[str, str]:
    """The environment of a process that exports its traces to `receiver`: its endpoint, and
    loopback kept off any proxy the environment names (the exporter honours HTTP(S)_PROXY)."""
    direct = "127.0.0.1,localhost,::1"
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "NO_PROXY": direct, "no_proxy": direct}


def exported_spans(receiver: Receiver) -> list[ExportedSpan]:
    """Every span of every export request `receiver` got so far."""
    return [
        ExportedSpan(
            name=span.name,
            kind=KINDS.get(span.kind, "unspecified"),
            trace_id=span.trace_id.hex(),
            span_id=span.span_id.hex(),
            parent_span_id=span.parent_span_id.hex(),
            trace_state=span.trace_state,
            attributes=_attributes(span.attributes),
            events=tuple((e.name, _attributes(e.attributes)) for e in span.events),
            links=tuple((k.trace_id.hex(), k.span_id.hex()) for k in span.links),
            status_code=span.status.code,
            resource=resource,
        )
        for resource, spans in _exports(receiver)
        for span in spans
    ]


def span_count(receiver: Receiver) -> int:
    """How many spans `receiver` got so far."""
    return sum(len(spans) for _, spans in _exports(receiver))


def export_bodies(receiver: Receiver) -> bytes:
    """The raw bytes of every export request: what a collector would store."""
    return b"".join(request.body for request in receiver.received(TRACES))


def _exports(receiver: Receiver) -> Iterator[tuple[dict[str, Any], Sequence[Span]]]:
    """Each batch of spans received, with its resource's attributes."""
    for request in receiver.received(TRACES):
        export = ExportTraceServiceRequest.FromString(request.body)
        for resource_spans in export.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                yield resource, scope_spans.spans


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return None if which is None else getattr(value, which)
