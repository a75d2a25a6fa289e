"""Playwright for the console's browser tests: Debian's Chromium (`make browser`), headless."""

from __future__ import annotations

import shutil
from typing import Any

import pytest


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("Chromium is not installed: `make browser` installs Debian's package")
    return {**browser_type_launch_args, "executable_path": chromium, "headless": True}


@pytest.fixture(scope="session")
def base_url() -> str | None:
    """No base URL: each test opens its own admin service (this also keeps pytest-base-url's
    own fixture, deprecated under this pytest, from running)."""
    return None
