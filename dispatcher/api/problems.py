"""Every error as a short JSON answer (`{"error": ...}`), never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from dispatcher.api.pages.common import render, signed_in
from dispatcher.errors import KafkaUnavailable

log = logging.getLogger(__name__)


def install(app: FastAPI) -> None:
    """Put the handlers on `app`."""
    app.add_exception_handler(HTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(KafkaUnavailable, _kafka)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal)


async def _http(request: Request, exc: HTTPException) -> Response:
    if _wants_page(request):
        page = render(  # signed in, the header keeps the way to the other pages and out
            request,
            "error.html",
            signed_in(request),
            exc.status_code,
            status=exc.status_code,
            message=str(exc.detail),
        )
        return page
    return JSONResponse({"error": str(exc.detail)}, exc.status_code, headers=exc.headers)


def _wants_page(request: Request) -> bool:
    """A console page asked for by a browser: it gets its error as a page."""
    path = request.url.path
    return (
        not path.startswith(("/api/", "/static/"))
        and path != "/healthz"
        and "text/html" in request.headers.get("accept", "")
    )


async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return JSONResponse({"error": "the body is not JSON"}, 400)
    problems = [
        {"path": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "message": e["msg"]}
        for e in errors
    ]
    return JSONResponse({"error": "invalid request", "problems": problems}, 422)


async def _kafka(_request: Request, exc: KafkaUnavailable) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, 503)


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal error"}, 500)
