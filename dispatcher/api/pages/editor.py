"""The hook editor: a definition as YAML (secrets masked) with each problem beside its line, a
form for the common fields, a diff against the stored version before saving; duplicate. Saving
goes to the hook store (`editing`). A tenant's session edits only its tenant's hooks (`scope`),
and what it saves gets its tenant."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Any

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
from dispatcher.api.pages.fields import (
    FORM_FIELDS,
    FORMATS,
    METHODS,
    SKELETON,
    loose,
    posted_text,
    shown_yaml,
    yaml_text,
)
from dispatcher.api.service import AdminService
from dispatcher.api.sessions import Session
from dispatcher.hooks.definitions import Definition, examine_text
from dispatcher.hooks.loader import Problem
from dispatcher.hooks.masking import mask_definition

router = APIRouter(include_in_schema=False)
DRAFT = ("yaml", "original", "base", "mode", *FORM_FIELDS)  # kept when the session has ended
RESUMED = (
    "Signed in again: here is your edit as it was when the session ended. Nothing was checked"
    " or saved: check and review it to go on."
)


def _editor(
    request: Request,
    session: Session,
    *,
    text: str,
    original: str,
    base: str,
    definition: dict[str, Any] | None = None,
    problems: Sequence[Problem] = (),
    status: int = 200,
    note: str = "",
) -> HTMLResponse:
    """The editor showing `text`; its fields form from `definition`, else from what of `text`
    reads as a mapping (a posted definition, which may have problems)."""
    if definition is None:
        definition = loose(text)
    by_line: dict[int, list[str]] = {}
    for problem in problems:
        if problem.line:
            by_line.setdefault(problem.line, []).append(_said(problem))
    lines = [(n, line, by_line.get(n, [])) for n, line in enumerate(text.splitlines(), 1)]
    elsewhere = [_said(p) for p in problems if not p.line or p.line > len(lines)]
    fields = {
        "id": definition.get("id", ""),
        "events": ", ".join(str(e) for e in definition.get("events") or []),
        "url": mask_definition(definition).get("url", ""),
        "method": definition.get("method", "POST"),
        "format": definition.get("format", "json"),
        "timeout": definition.get("timeout", ""),
        "enabled": definition.get("enabled", True) is not False,
    }
    return render(
        request,
        "editor.html",
        session,
        status,
        text=text,
        lines=lines,
        problems=problems,
        elsewhere=elsewhere,
        fields=fields,
        beside=_by_field(problems),
        formats=FORMATS,
        methods=METHODS,
        original=original,
        base=base,
        note=note,
    )


def _by_field(problems: Sequence[Problem]) -> dict[str, list[str]]:
    """The problems of each field of the common fields' form (`url`, `events[1]` ...), to show
    beside that field as well as beside their lines."""
    found: dict[str, list[str]] = {}
    for problem in problems:
        field = re.split(r"[.\[]", problem.path, maxsplit=1)[0]
        if field in FORM_FIELDS:
            found.setdefault(field, []).append(_said(problem))
    return found


def _said(problem: Problem) -> str:
    return f"{problem.path}: {problem.message}" if problem.path else problem.message


@router.get("/hooks/new", response_class=HTMLResponse)
def new_hook(request: Request) -> HTMLResponse:
    session = session_of(request, "admin")
    skeleton = {**SKELETON, "tenant": session.tenant} if session.tenant else SKELETON
    return _editor(
        request, session, text=yaml_text(skeleton), definition=skeleton, original="", base=""
    )


@router.get("/hooks/{hook_id}/edit", response_class=HTMLResponse)
def edit_hook(request: Request, hook_id: str, saved: str = "") -> HTMLResponse:
    session = session_of(request, "admin")
    definition = definition_of(request, session, hook_id)
    note = "Saved to the hook store: every worker takes it within seconds." if saved else ""
    return _editor(
        request,
        session,
        text=shown_yaml(definition),
        definition=definition,
        original=hook_id,
        base=hook_id,
        note=note,
    )


@router.get("/hooks/{hook_id}/duplicate", response_class=HTMLResponse)
def duplicate_hook(request: Request, hook_id: str) -> HTMLResponse:
    session = session_of(request, "admin")
    copy = {**definition_of(request, session, hook_id), "id": f"{hook_id}-copy"}
    return _editor(
        request, session, text=shown_yaml(copy), definition=copy, original="", base=hook_id
    )


@router.post("/hooks/check", response_class=HTMLResponse)
async def check_hook(request: Request) -> HTMLResponse:
    """The edited definition checked: its problems beside its lines, or the diff to confirm.
    The checks run off the event loop: a large definition would hold every other request."""
    session, form = await form_of(request, keep=DRAFT)
    return await run_in_threadpool(_checked, request, session, form)


def _checked(request: Request, session: Session, form: dict[str, str]) -> HTMLResponse:
    original, base, previous = _seen(request, session, form)
    service = service_of(request)
    text = posted_text(form, previous)
    checked = examine_text(text, previous, service.settings.secrets)
    if isinstance(checked, list):
        return _editor(
            request,
            session,
            text=text,
            original=original,
            base=base,
            problems=checked,
            status=422,
        )
    stored = service.definition(original) if original else None
    diff = list(
        difflib.unified_diff(
            shown_yaml(stored).splitlines(),
            shown_yaml(checked.raw).splitlines(),
            "stored" if stored else "(new)",
            "edited",
            lineterm="",
        )
    )
    return render(
        request,
        "review.html",
        session,
        text=text,
        diff=diff,
        hook_id=checked.hook.id,
        original=original,
        base=base,
    )


@router.post("/hooks/save", response_model=None)
async def save_hook(request: Request) -> HTMLResponse | RedirectResponse:
    """The edited definition checked again and saved; off the event loop, as `check_hook`, and
    for the wait until it is in force."""
    session, form = await form_of(request, keep=DRAFT)
    return await run_in_threadpool(_saved, request, session, form)


def _saved(
    request: Request, session: Session, form: dict[str, str]
) -> HTMLResponse | RedirectResponse:
    original, base, previous = _seen(request, session, form)
    text = form.get("yaml", "")
    service = service_of(request)
    examined = examine_text(text, previous, service.settings.secrets)
    checked = (
        editing.Refused(422, "invalid hook definition", examined)
        if isinstance(examined, list)
        else _refusal(service, examined, original)
        or editing.runnable(examined, service.settings.consume)
        or editing.claimed(examined, session.tenant, service.settings.secrets)
    )
    if isinstance(checked, editing.Refused):
        problems = checked.problems or [Problem("hook", None, "", checked.error)]
        return _editor(
            request,
            session,
            text=text,
            original=original,
            base=base,
            problems=problems,
            status=checked.status,
        )
    saved = editing.save(service, checked)
    return redirect(f"/hooks/{saved.hook_id}/edit?saved=1")


def resumed(request: Request, session: Session, draft: dict[str, str]) -> HTMLResponse | None:
    """The editor with `draft`, its form as posted after the session had ended, for the new
    `session` to check it again; None when that session may not edit it (another role or
    tenant). Nothing is checked or saved without a click: a draft may come from elsewhere."""
    if not session.principal.may("admin"):
        return None
    try:
        original, base, previous = _seen(request, session, draft)
    except HTTPException:
        return None
    text = posted_text(draft, previous)
    return _editor(
        request,
        session,
        text=text,
        original=original,
        base=base,
        note=RESUMED,
    )


def _refusal(service: AdminService, checked: Definition, original: str) -> editing.Refused | None:
    """Why a checked definition may still not be saved from the editor."""
    if service.store is None:
        return editing.Refused(409, "the hook store is switched off (topics.hooks is empty)")
    if original and checked.hook.id != original:
        return editing.Refused(422, "the id cannot change: duplicate the hook instead")
    if not original and service.hooks().get(checked.hook.id) is not None:
        return editing.Refused(409, f"hook {checked.hook.id!r} exists already")
    return None


def _seen(
    request: Request, session: Session, form: dict[str, str]
) -> tuple[str, str, dict[str, Any] | None]:
    """The form's hook being edited and hook edited from, once the session sees both (404),
    and the stored definition of the latter: its secrets fill in the masked values sent back."""
    service = service_of(request)
    original, base = form.get("original", ""), form.get("base", "")
    for hook_id in (original, base):
        if hook_id:
            scope.hook(service, session.principal, hook_id)
    return original, base, service.definition(base) if base else None
