"""Every error as a short answer, never a traceback: JSON (`{"error": ...}`) for the API, the
error page for a console page asked for by a browser."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from dispatcher.api.bounds import SECURITY_HEADERS, wants_page
from dispatcher.api.pages.common import render, signed_in
from dispatcher.api.sessions import Session
from dispatcher.errors import KafkaUnavailable

log = logging.getLogger(__name__)
INTERNAL = "internal error"


def install(app: FastAPI) -> None:
    """Put the handlers on `app`."""
    app.add_exception_handler(HTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(KafkaUnavailable, _kafka)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal)


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


async def _internal(request: Request, exc: Exception) -> Response:
    """A failure nothing expected: logged, and answered without a word of it. Starlette sends
    this answer from outside every middleware, so it adds the security headers itself."""
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    if _wants_page(request):
        answer = _error_page(request, 500, INTERNAL, _session_or_none(request))
    else:
        answer = JSONResponse({"error": INTERNAL}, 500)
    answer.headers.update({name.decode(): value.decode() for name, value in SECURITY_HEADERS})
    return answer


def _session_or_none(request: Request) -> Session | None:
    """The request's session for the error page's header; None when reading it fails too (the
    failure may be its own), so the error page never fails in turn."""
    try:
        return signed_in(request)
    except Exception:
        return None
