"""The loopback OTLP collector decodes what the SDK's own OTLP/HTTP exporter sends."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from dispatcher.devtools.otlp import (
    TRACES,
    exported_spans,
    exporting_to,
    otlp_receiver,
    span_count,
)


def test_spans_exported_over_otlp_http_are_read_back_with_their_ids_and_attributes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with otlp_receiver() as collector:
        for name, value in exporting_to(collector).items():
            monkeypatch.setenv(name, value)
        provider = TracerProvider(resource=Resource({"service.name": "probe"}))
        provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.url}{TRACES}"))
        )
        tracer = provider.get_tracer("probe")
        with tracer.start_as_current_span("outer", kind=SpanKind.CONSUMER) as outer:
            inner = tracer.start_span("inner", attributes={"n": 3, "ok": True, "s": "x"})
            inner.add_event("handoff", {"tier": 1})
            inner.end()
        provider.shutdown()
        spans = {s.name: s for s in exported_spans(collector)}
        assert span_count(collector) == 2
    context = outer.get_span_context()
    assert spans["outer"].kind == "consumer"
    assert spans["outer"].ids == f"{context.trace_id:032x}-{context.span_id:016x}"
    assert spans["outer"].parent_span_id == ""
    assert spans["inner"].parent_span_id == f"{context.span_id:016x}"
    assert spans["inner"].attributes == {"n": 3, "ok": True, "s": "x"}
    assert spans["inner"].events == (("handoff", {"tier": 1}),)
    assert spans["inner"].resource["service.name"] == "probe"
