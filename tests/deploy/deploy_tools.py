"""Where the deploy tests find their tools: PATH first, then the repo's .tools/bin (make tools)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS_BIN = REPO / ".tools" / "bin"


def find_tool(name: str) -> str | None:
    """Path of the tool `name`, or None when neither PATH nor .tools/bin has it."""
    local = TOOLS_BIN / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


def require_tool(name: str) -> str:
    """Path of the tool `name`; skips the test, saying how to install it, when it is absent."""
    path = find_tool(name)
    if path is None:
        pytest.skip(f"{name} is not installed: run `make tools` (bash deploy/tools/install.sh)")
    return path


def run_in_image(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`command` (a HEALTHCHECK's or compose healthcheck's exec form) as the image runs it: its
    `python` or `dispatcher` is this checkout's, `env` the container's variables."""
    program, *rest = command
    head = {"python": [sys.executable], "dispatcher": [sys.executable, "-m", "dispatcher"]}
    return subprocess.run(
        [*head[program], *rest],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
