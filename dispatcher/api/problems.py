"""Every error as a short answer, never a traceback: JSON (`{"error": ...}`) for the API, the
error page for a console page asked for by a browser. A failure nothing expected is logged once,
with its traceback, by `Failures`."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from dispatcher.api.bounds import Tracked, wants_page
from dispatcher.api.pages.common import render, signed_in
from dispatcher.api.sessions import Session
from dispatcher.errors import KafkaUnavailable

log = logging.getLogger(__name__)
INTERNAL = "internal error"


def install(app: FastAPI) -> None:
    """Put the handlers of the expected errors on `app` (the unexpected: `Failures`)."""
    app.add_exception_handler(HTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(KafkaUnavailable, _kafka)  # type: ignore[arg-type]


class Failures:
    """Answers a failure nothing expected with a 500 and logs it, once, with its traceback: the
    method and path only (never the query, a header or a cookie). An exception handler for
    `Exception` would not do: Starlette re-raises the exception after its answer, and the
    server logged it a second time. A failure after the answer began is logged, and the answer
    left unfinished (the server closes the connection)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = Tracked(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            request = Request(scope, receive)
            log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
            if not tracked.started:
                await _internal(request)(scope, receive, send)


async def _http(request: Request, exc: HTTPException) -> Response:
    if _wants_page(request):
        return _error_page(request, exc.status_code, str(exc.detail), signed_in(request))
    return JSONResponse({"error": str(exc.detail)}, exc.status_code, headers=exc.headers)


def _wants_page(request: Request) -> bool:
    return wants_page(request.url.path, request.headers.get("accept", ""))


def _error_page(request: Request, status: int, message: str, session: Session | None) -> Response:
    """The console's error page; signed in, its header keeps the way to the other pages and
    out."""
    return render(request, "error.html", session, status, status=status, message=message)


async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return JSONResponse({"error": "the body is not JSON"}, 400)
    problems = [
        {"path": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "message": e["msg"]}
        for e in errors
    ]
    return JSONResponse({"error": "invalid request", "problems": problems}, 422)


async def _kafka(request: Request, exc: KafkaUnavailable) -> Response:
    if _wants_page(request):
        return _error_page(request, 503, str(exc), signed_in(request))
    return JSONResponse({"error": str(exc)}, 503)


def _internal(request: Request) -> Response:
    """The answer to a failure nothing expected, without a word of it."""
    if _wants_page(request):
        return _error_page(request, 500, INTERNAL, _session_or_none(request))
    return JSONResponse({"error": INTERNAL}, 500)


def _session_or_none(request: Request) -> Session | None:
    """The request's session for the error page's header; None when reading it fails too (the
    failure may be its own), so the error page never fails in turn."""
    try:
        return signed_in(request)
    except Exception:
        return None
