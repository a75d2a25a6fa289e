"""The delivery path's spans (contract section 10): one per (event, hook) pair, continuing the
trace its event (or its retry-tier record) names, and one CLIENT span per HTTP attempt, whose
context the request carries as `traceparent`.

Imported only when tracing is on. Spans hold ids, kinds, statuses and the hook's host and port:
never a URL, a header value, a body or an error message (those may carry secrets).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import lru_cache
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Link, Span, SpanKind, StatusCode, format_trace_id
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from dispatcher import __version__
from dispatcher.http.sender import Attempt, HookClient
from dispatcher.model.pair import Pair
from dispatcher.model.request import Request
from dispatcher.pipeline.retry import Handoff, Result

PROPAGATOR = TraceContextTextMapPropagator()
DEFAULT_PORTS = {"http": 80, "https": 443}


class PairTracer:
    """Starts the span of each pair; `links` go on every pair span (a replay's run)."""

    def __init__(self, provider: TracerProvider, links: Sequence[Link] = ()) -> None:
        self.tracer = provider.get_tracer("dugaa-dispatcher", __version__)
        self.links = tuple(links)

    def begin(self, pair: Pair) -> PairSpan:
        return PairSpan(self.tracer, pair, self.links)


class PairSpan:
    """One pair's span, the attempt spans under it, and the trace id its records carry."""

    def __init__(self, tracer: trace.Tracer, pair: Pair, links: Sequence[Link]) -> None:
        hook, event = pair.hook, pair.event
        attributes: dict[str, str | int] = {
            "dispatcher.hook.id": hook.id,
            "dispatcher.event.id": event.id,
            "dispatcher.event.type": event.type,
        }
        if event.tenant is not None:
            attributes["dispatcher.tenant"] = event.tenant
        if pair.tier >= 0:
            attributes["dispatcher.retry.tier"] = pair.tier
        self.tracer = tracer
        self.span = tracer.start_span(
            f"deliver {hook.id}",
            context=parent_context(*pair.trace_context),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=links,
        )
        self.context = trace.set_span_in_context(self.span)
        self.method = hook.method
        self.address, self.port = server_of(hook.url)
        self.sent = 0

    async def send(
        self, client: HookClient, request: Request, wanted: Callable[[], bool]
    ) -> Attempt:
        """One attempt through `client`, with its CLIENT span (none when the breaker held it)."""
        opened: list[Span] = []

        def open_attempt(request: Request) -> Request:
            attributes: dict[str, str | int] = {
                "http.request.method": self.method,
                "server.address": self.address,
                "server.port": self.port,
            }
            if self.sent:
                attributes["http.request.resend_count"] = self.sent
            self.sent += 1
            span = self.tracer.start_span(
                self.method, context=self.context, kind=SpanKind.CLIENT, attributes=attributes
            )
            opened.append(span)
            carrier: dict[str, str] = {}
            PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
            return request.with_headers(*carrier.items())

        try:
            attempt = await client.send(request, wanted, open_attempt)
        except BaseException as exc:
            for span in opened:
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(StatusCode.ERROR)
                span.end()
            raise
        for span in opened:
            close_attempt(span, attempt)
        return attempt

    def end(self, result: Result, error: BaseException | None = None) -> Result:
        """End the span with the pair's result; the result, carrying the trace. `error`: the
        exception the dispatcher failed on (an `internal` dead letter), named by its class."""
        span = self.span
        if error is not None:
            span.set_attribute("error.type", type(error).__qualname__)
        context = span.get_span_context()
        if isinstance(result, Handoff):
            carrier: dict[str, str] = {}
            PROPAGATOR.inject(carrier, context=self.context)
            span.add_event(
                "dispatcher.retry.handoff",
                {
                    "dispatcher.retry.tier": result.tier,
                    "dispatcher.attempts": result.attempts,
                    "dispatcher.error.kind": result.last.kind or "",
                },
            )
            span.set_attribute("dispatcher.outcome", "retry_tier")
            span.set_attribute("dispatcher.error.kind", result.last.kind or "")
            span.end()
            return replace(
                result,
                traceparent=carrier.get("traceparent"),
                tracestate=carrier.get("tracestate"),
            )
        span.set_attribute("dispatcher.outcome", result.outcome)
        if result.error_kind is not None:
            span.set_attribute("dispatcher.error.kind", result.error_kind)
            span.set_status(StatusCode.ERROR)
        span.end()
        return replace(result, trace_id=format_trace_id(context.trace_id))

    def fail(self, exc: BaseException) -> None:
        """End the span of a pair whose delivery raised (its message is not recorded)."""
        self.span.set_attribute("error.type", type(exc).__qualname__)
        self.span.set_status(StatusCode.ERROR)
        self.span.end()


def replay_tracer(provider: TracerProvider, selected: int) -> tuple[PairTracer, Span]:
    """A replay run's span (a trace of its own), and the tracer of its pairs: each continues the
    trace of its event, as its first delivery did, with a link to the run."""
    run = provider.get_tracer("dugaa-dispatcher", __version__).start_span(
        "dispatcher replay",
        context=Context(),
        kind=SpanKind.INTERNAL,
        attributes={"dispatcher.replay.selected": selected},
    )
    return PairTracer(provider, [Link(run.get_span_context())]), run


def parent_context(traceparent: str | None, tracestate: str | None) -> Context:
    """The context a W3C `traceparent` names; an empty one (a new trace) when it is absent or
    malformed, whatever span is current (a replay started by an admin request)."""
    if traceparent is None:
        return Context()
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    context = PROPAGATOR.extract(carrier)
    if not trace.get_current_span(context).get_span_context().is_valid:
        return Context()
    return context


def close_attempt(span: Span, attempt: Attempt) -> None:
    """The attempt's status code or error type, then its end."""
    verdict = attempt.verdict
    if verdict.status is not None:
        span.set_attribute("http.response.status_code", verdict.status)
    if not verdict.ok:
        error = str(verdict.status) if verdict.kind == "http_status" else verdict.kind
        span.set_attribute("error.type", error or "_OTHER")
        span.set_status(StatusCode.ERROR)
    span.end()


@lru_cache(maxsize=1024)
def server_of(url: str) -> tuple[str, int]:
    """The host and port a hook's URL names (no userinfo, path or query: those may be secret)."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
