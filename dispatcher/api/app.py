"""The admin service as an ASGI app: the API under /api/, the console's pages, /healthz."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse

from dispatcher import __version__
from dispatcher.api import pages, problems
from dispatcher.api.auth import VIEWER
from dispatcher.api.bounds import Bounds, SecurityHeaders
from dispatcher.api.openapi import openapi_document
from dispatcher.api.pages.common import SignIn, error_page, to_sign_in
from dispatcher.api.routes import hooks, records, replays
from dispatcher.api.service import AdminService

API_ROUTERS = (hooks.router, records.router, replays.router)


def create_app(service: AdminService) -> FastAPI:
    """The app around `service`; `dispatcher.api.server` runs it."""
    app = FastAPI(
        title="DUGAA dispatcher admin",
        version=__version__,
        openapi_url=None,  # served below, behind a token like every route
        docs_url=None,
        redoc_url=None,
    )
    app.state.admin = service
    problems.install(app)
    app.add_exception_handler(SignIn, to_sign_in)
    for router in API_ROUTERS:
        app.include_router(router)
    pages.mount(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/api/openapi.json", include_in_schema=False, dependencies=[Depends(VIEWER)])
    def openapi() -> JSONResponse:
        return JSONResponse(openapi_document(app))

    admin = service.settings.admin
    app.add_middleware(
        Bounds, max_body=admin.max_body_bytes, timeout=admin.request_timeout, page=error_page
    )
    app.add_middleware(problems.Failures)  # inside SecurityHeaders: its 500 gets them too
    app.add_middleware(SecurityHeaders)
    if service.tracing is not None:
        from dispatcher.api.traced import instrument

        instrument(app, service.tracing)
    return app
