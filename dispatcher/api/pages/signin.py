"""Signing in and out: a token exchanged for a session cookie, attempts limited per client, a
sign-in another site's page posts refused (`cross_site`). A draft kept from a form posted after
the session ended (`SignIn.draft`) comes back once signed in: shown again in its page, never
sent again by itself."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from dispatcher.api.pages import editor
from dispatcher.api.pages.common import (
    ENDED,
    cross_site,
    form_of,
    redirect,
    render,
    same_site,
    service_of,
    signed_in,
)
from dispatcher.api.sessions import Session

router = APIRouter(include_in_schema=False)
DRAFT = "draft."  # the prefix of a draft's fields in the sign-in form
ELSEWHERE = "Sign in on the console's own sign-in page: this form came from another site."


def _safe_next(target: str | None) -> str:
    """Only a path of this site (never `//elsewhere` or a full URL) to go back to."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", None, next=_safe_next(next))


@router.post("/login", response_model=None)
async def login(request: Request) -> HTMLResponse | RedirectResponse:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    if cross_site(request):
        return render(request, "login.html", None, 403, error=ELSEWHERE, next="/")
    token, next_path = form.get("token", "").strip(), _safe_next(form.get("next"))
    draft = {k.removeprefix(DRAFT): v for k, v in form.items() if k.startswith(DRAFT)}
    draft = draft if same_site(request) else {}  # never another site's, into the editor
    kept = {"next": next_path, "draft": draft, "note": ENDED if draft else ""}
    service = service_of(request)
    client = request.client.host if request.client else "unknown"
    if not service.limiter.allowed(client):
        message = "Too many attempts: wait a minute before trying again."
        return render(request, "login.html", None, 429, error=message, **kept)
    grant = service.tokens.grant_of(token) if token else None
    if grant is None:
        service.limiter.failed(client)
        message = "That token is not one of admin.tokens."
        return render(request, "login.html", None, 401, error=message, **kept)
    cookie, session = service.sessions.cookie(token, grant)
    # a draft is read (its YAML) for the editor: off the event loop, as the editor's checks
    response = await run_in_threadpool(_signed_in, request, session, next_path, draft)
    service.sessions.set_cookie(response, request, cookie)
    return response


def _signed_in(
    request: Request, session: Session, next_path: str, draft: dict[str, str]
) -> HTMLResponse | RedirectResponse:
    """Where a sign-in leads: the editor with the draft, when there is one the new session may
    edit; else `next_path`."""
    resumed = editor.resumed(request, session, draft) if draft else None
    return resumed if resumed is not None else redirect(next_path)


@router.post("/logout")
async def logout(request: Request) -> RedirectResponse:
    """Sign out; a session that has ended already (expired, signed out in another tab) has
    nothing to check: only its cookie goes."""
    response = redirect("/login")
    if signed_in(request) is None:
        service_of(request).sessions.end(response)
        return response
    session, _form = await form_of(request, "viewer")
    service_of(request).sessions.end(response, session)
    return response
