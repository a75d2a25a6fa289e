"""The admin service's requests as spans: OpenTelemetry's FastAPI instrumentation, with every
URL query value redacted (a look-up's event id, a selection's hook) before a span is exported.

Imported only when tracing is on.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span

URL_ATTRIBUTES = ("http.url", "url.full")
QUERY_ATTRIBUTE = "url.query"
REDACTED = "REDACTED"  # the semantic conventions' word for a scrubbed value


def instrument(app: FastAPI, provider: TracerProvider) -> None:
    """A SERVER span per request but /healthz (no spans of its own for each ASGI message)."""
    FastAPIInstrumentor.instrument_app(
        app,
        server_request_hook=redact_query,
        tracer_provider=provider,
        excluded_urls="/healthz",
        exclude_spans=["receive", "send"],
    )


def redact_query(span: Span, scope: dict[str, Any]) -> None:
    """Overwrite the query values the instrumentation put in the span's URL attributes."""
    raw = scope.get("query_string") or b""
    if not raw or not span.is_recording():
        return
    names = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    query = "&".join(f"{name}={REDACTED}" for name, _ in names)
    attributes = getattr(span, "attributes", None) or {}
    for name in URL_ATTRIBUTES:
        url = attributes.get(name)
        if isinstance(url, str):
            span.set_attribute(name, f"{url.split('?', 1)[0]}?{query}")
    if QUERY_ATTRIBUTE in attributes:
        span.set_attribute(QUERY_ATTRIBUTE, query)
