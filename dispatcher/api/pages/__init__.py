"""The console: server-rendered pages behind the sign-in page, no script inline or fetched from
outside (the stylesheet is served from the package)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent.parent / "static"


def mount(app: FastAPI) -> None:
    """Put the console's pages and static files on `app`."""
    from dispatcher.api.pages import (
        deadletters,
        editor,
        hooks,
        lifecycle,
        pausing,
        records,
        signin,
        trying,
    )

    for module in (signin, hooks, editor, lifecycle, pausing, trying, records, deadletters):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
