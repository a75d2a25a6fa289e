"""The console's browser tests: screenshots kept in test-results/console/ (the README's copied to
docs/console/ with DUGAA_SCREENSHOTS_TO_DOCS=1, `make screenshots`), and signing in."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from playwright.sync_api import Page, expect

ROOT = Path(__file__).parents[1]
SHOTS = ROOT / "test-results" / "console"
DOCS = ROOT / "docs" / "console"
README_SHOTS = {
    "01-hooks",
    "02-editor-error",
    "03-review",
    "04-try",
    "05-event",
    "06-dead-letters",
    "07-dry-run",
    "08-replayed",
    "10-outcomes",
    "11-tenant-hooks",
    "15-event-attempts",
    "16-paused",
}


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)
    if os.environ.get("DUGAA_SCREENSHOTS_TO_DOCS") == "1" and name in README_SHOTS:
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHOTS / f"{name}.png", DOCS / f"{name}.png")


def sign_in(page: Page, url: str, token: str) -> None:
    page.goto(url + "/")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Hooks")).to_be_visible()
