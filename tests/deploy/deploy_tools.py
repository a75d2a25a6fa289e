"""Where the deploy tests find their tools: PATH first, then the repo's .tools/bin (make tools)."""

from __future__ import annotations

import os
import shutil
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
