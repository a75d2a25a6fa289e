"""What every page needs: the templates, the signed-in user (or a way to the sign-in page), the
CSRF check on forms, and rendering."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.routing import Match

from dispatcher.api import scope
from dispatcher.api.service import AdminService
from dispatcher.api.sessions import Session
from dispatcher.config.admin import Role
from dispatcher.model.moments import iso

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")
TEMPLATES.env.filters["iso"] = lambda value: "" if value is None else iso(value)
ENDED = "Your session ended before this was sent: sign in again to go on where you were."


class SignIn(Exception):
    """Raised by a page that needs a session the request does not have: the sign-in page, then
    `next_path`; `draft`, the fields of a form posted without a session that are worth keeping,
    goes through the sign-in too (`form_of`)."""

    def __init__(self, next_path: str, draft: dict[str, str] | None = None) -> None:
        super().__init__(next_path)
        self.next_path = next_path
        self.draft = draft or {}


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


async def form_of(
    request: Request, role: Role = "admin", keep: Collection[str] = ()
) -> tuple[Session, dict[str, str]]:
    """A posted form and its session, once its CSRF token matches (403 otherwise). Without a
    session (it expired, or the service restarted with a key of its own), `SignIn` back to the
    page the form is on, never to the form's own address, which only takes a POST; its fields
    named in `keep` come along as the draft."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if signed_in(request) is None:
        draft = {k: v for k, v in fields.items() if k in keep} if same_site(request) else {}
        raise SignIn(page_of(request), draft)
    session = session_of(request, role)
    if not session.csrf_matches(fields.get("csrf")):
        raise HTTPException(403, "the form's CSRF token does not match the session")
    return session, fields


def same_site(request: Request) -> bool:
    """Whether the browser says a form came from one of the console's own pages: only such a
    form's fields are kept as a draft through the sign-in. Another site's form, posted with no
    cookie, could otherwise fill the editor for the admin about to sign in. Browsers send
    `Sec-Fetch-Site`; without it, `Origin` must be the console's own; without either, no."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("origin")
    return origin is not None and origin == f"{request.url.scheme}://{request.url.netloc}"


def cross_site(request: Request) -> bool:
    """Whether the browser says a request came from another site's page (`Sec-Fetch-Site`
    `cross-site`, or `same-site`: another port or subdomain of the host): a sign-in such a page
    posts is refused, so no page elsewhere signs this browser in with a token of its choosing,
    nor spends this address's sign-in attempts. `Origin` alone does not decide it: behind a
    proxy that rewrites the Host header (nginx's default) the console's own origin would look
    foreign; every current browser sends `Sec-Fetch-Site`."""
    return request.headers.get("sec-fetch-site") in ("cross-site", "same-site")


def page_of(request: Request) -> str:
    """The page a posted form goes back to: its own address when that is a page too (GET),
    else the hooks page."""
    as_page = {**request.scope, "method": "GET"}
    if any(route.matches(as_page)[0] is Match.FULL for route in request.app.router.routes):
        return request.url.path
    return "/"


def definition_of(request: Request, session: Session, hook_id: str) -> dict[str, Any]:
    """The stored definition of `hook_id`, once the session sees the hook (404 otherwise)."""
    service = service_of(request)
    definition = service.definition(scope.hook(service, session.principal, hook_id).id)
    if definition is None:
        raise HTTPException(404, f"the definition of {hook_id!r} cannot be read")
    return definition


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


def error_page(status: int, message: str) -> bytes:
    """The console's error page for a request refused before any page ran (`Bounds`): no
    session is read for it, so its header has no way to the other pages."""
    page = TEMPLATES.get_template("error.html")
    return page.render(session=None, csrf="", status=status, message=message).encode()


def to_sign_in(request: Request, exc: Exception) -> Response:
    """The handler of `SignIn`: the sign-in page, coming back afterwards; with a draft, the
    sign-in page at once, the draft in its form, so signing in brings it back."""
    assert isinstance(exc, SignIn)
    if exc.draft:
        return render(
            request, "login.html", None, 401, next=exc.next_path, draft=exc.draft, note=ENDED
        )
    return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", 303)


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, 303)
