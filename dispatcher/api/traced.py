"""The admin service's requests as spans: OpenTelemetry's FastAPI instrumentation, with every
URL query value redacted (a look-up's event id, a selection's hook) before a span is exported,
and the headers that carry credentials always redacted when an operator has the
instrumentation capture headers (`OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_*`).

Imported only when tracing is on.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span
from opentelemetry.util.http import (
    OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS,
    get_custom_headers,
)

# an API token (Authorization), a console session (Cookie, Set-Cookie), a proxy's credentials
CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie")
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
        http_capture_headers_sanitize_fields=redacted_headers(),
    )


def redacted_headers() -> list[str]:
    """The headers whose values a captured header's attribute never holds: the credentials, and
    those the operator names (`OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS`, which
    this list replaces in the instrumentation)."""
    named = get_custom_headers(OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS)
    return [*CREDENTIAL_HEADERS, *named]


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
