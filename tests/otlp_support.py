"""A loopback OTLP/HTTP trace receiver for tests: the devtools receiver on `/v1/traces`, its
export requests decoded with opentelemetry-proto."""

from __future__ import annotations

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


@dataclass(frozen=True)
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


def otlp_receiver() -> Receiver:
    """A receiver answering OTLP/HTTP export requests with 200 (started by the caller)."""
    return Receiver({TRACES: Behaviour(body=b"", content_type="application/x-protobuf")})


def exported_spans(receiver: Receiver) -> list[ExportedSpan]:
    """Every span of every export request `receiver` got so far."""
    spans = []
    for request in receiver.received(TRACES):
        export = ExportTraceServiceRequest.FromString(request.body)
        for resource_spans in export.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
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
                    )
    return spans


def export_bodies(receiver: Receiver) -> bytes:
    """The raw bytes of every export request: what a collector would store."""
    return b"".join(request.body for request in receiver.received(TRACES))


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return None if which is None else getattr(value, which)
