"""What every page needs: the templates, the signed-in user (or a way to the sign-in page), the
CSRF check on forms, and rendering."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from dispatcher.api.service import AdminService
from dispatcher.api.sessions import Session
from dispatcher.config.settings import Role
from dispatcher.model.moments import iso

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")
TEMPLATES.env.filters["iso"] = lambda value: "" if value is None else iso(value)


class SignIn(Exception):
    """Raised by a page that needs a session the request does not have."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def service_of(request: Request) -> AdminService:
    service: AdminService = request.app.state.admin
    return service


def signed_in(request: Request) -> Session | None:
    """The request's session; None when it has none (or one no longer valid)."""
    service = service_of(request)
    return service.sessions.read(request, service.tokens)


def session_of(request: Request, role: Role = "viewer") -> Session:
    """The request's session with `role` or more; `SignIn` without one, 403 with too little."""
    session = signed_in(request)
    if session is None:
        raise SignIn(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    if not session.principal.may(role):
        raise HTTPException(403, f"this page needs the {role} role")
    return session


async def form_of(request: Request, role: Role = "admin") -> tuple[Session, dict[str, str]]:
    """A posted form and its session, once its CSRF token matches (403 otherwise)."""
    session = session_of(request, role)
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if not session.csrf_matches(fields.get("csrf")):
        raise HTTPException(403, "the form's CSRF token does not match the session")
    return session, fields


def render(
    request: Request, template: str, session: Session | None, code: int = 200, **context: Any
) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {"session": session, "csrf": session.csrf if session else "", **context},
        status_code=code,
        headers={"cache-control": "no-store"},
    )


def to_sign_in(request: Request, exc: Exception) -> RedirectResponse:
    """The handler of `SignIn`: the sign-in page, coming back afterwards."""
    assert isinstance(exc, SignIn)
    return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", 303)


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, 303)
