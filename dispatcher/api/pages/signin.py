"""Signing in and out: a token exchanged for a session cookie, attempts limited per client."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from dispatcher.api.pages.common import form_of, redirect, render, service_of

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only a path of this site (never `//elsewhere` or a full URL) to go back to."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", None, next=_safe_next(next))


@router.post("/login", response_model=None)
def login(
    request: Request, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/"
) -> HTMLResponse | RedirectResponse:
    service = service_of(request)
    client = request.client.host if request.client else "unknown"
    if not service.limiter.allowed(client):
        message = "Too many attempts: wait a minute before trying again."
        return render(request, "login.html", None, 429, error=message, next=_safe_next(next))
    grant = service.tokens.grant_of(token.strip()) if token.strip() else None
    if grant is None:
        service.limiter.failed(client)
        message = "That token is not one of admin.tokens."
        return render(request, "login.html", None, 401, error=message, next=_safe_next(next))
    response = redirect(_safe_next(next))
    service.sessions.issue(response, request, token.strip(), grant)
    return response


@router.post("/logout")
async def logout(request: Request) -> RedirectResponse:
    session, _form = await form_of(request, "viewer")
    response = redirect("/login")
    service_of(request).sessions.end(response, session)
    return response
