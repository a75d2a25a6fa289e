"""Enable or disable a hook, and delete one with a confirmation (admin, CSRF-checked forms):
each a change of the hook store (`editing`), for a tenant's session only of its tenant's hooks."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from dispatcher.api import editing, scope
from dispatcher.api.pages.common import (
    definition_of,
    form_of,
    redirect,
    render,
    service_of,
    session_of,
)
from dispatcher.api.sessions import Session

router = APIRouter(include_in_schema=False)


@router.post("/hooks/{hook_id}/toggle", response_model=None)
async def toggle_hook(request: Request, hook_id: str) -> RedirectResponse:
    """Enable a disabled hook, or disable it: the definition checked again and saved, off the
    event loop (a large definition's checks would hold every other request)."""
    session, _form = await form_of(request)
    await run_in_threadpool(_toggle, request, session, hook_id)
    return redirect("/")


def _toggle(request: Request, session: Session, hook_id: str) -> None:
    service = service_of(request)
    definition = definition_of(request, session, hook_id)
    flipped = {**definition, "enabled": definition.get("enabled", True) is False}
    checked = editing.checked(service, flipped, path_id=hook_id, tenant=session.tenant)
    if isinstance(checked, editing.Refused):
        raise HTTPException(checked.status, checked.error)
    editing.save(service, checked)


@router.get("/hooks/{hook_id}/delete", response_class=HTMLResponse)
def confirm_delete(request: Request, hook_id: str) -> HTMLResponse:
    session = session_of(request, "admin")
    service = service_of(request)
    source = service.source_of(scope.hook(service, session.principal, hook_id).id)
    return render(request, "delete.html", session, hook_id=hook_id, source=source)


@router.post("/hooks/{hook_id}/delete", response_model=None)
async def delete_hook(request: Request, hook_id: str) -> RedirectResponse:
    session, _form = await form_of(request)
    service = service_of(request)
    scope.hook(service, session.principal, hook_id)
    refused = await run_in_threadpool(editing.delete, service, hook_id)
    if refused is not None:
        raise HTTPException(refused.status, refused.error)
    return redirect("/")
