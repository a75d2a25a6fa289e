"""deploy/Dockerfile: hadolint when it is installed, and the properties the issue asks for."""

from __future__ import annotations

import re
import subprocess

import pytest
from deploy_tools import REPO, find_tool

DOCKERFILE = REPO / "deploy" / "Dockerfile"
TEXT = DOCKERFILE.read_text()


def instructions(name: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", TEXT)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(name + " ")]


def test_hadolint_passes() -> None:
    hadolint = find_tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed: run `make tools`")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_is_multi_stage_on_slim_python_311() -> None:
    stages = instructions("FROM")
    assert len(stages) == 2
    assert stages[0] == "${PYTHON_IMAGE} AS build"
    assert re.search(r"ARG PYTHON_IMAGE=python:3\.11-slim", TEXT)
    assert instructions("COPY")[-1] == "--from=build /opt/venv /opt/venv"


def test_image_runs_as_a_numeric_non_root_user() -> None:
    (user,) = instructions("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit()
    assert int(uid) != 0
    assert gid.isdigit()
    assert int(gid) != 0
    assert TEXT.index("USER ") > TEXT.rindex("FROM ")


def test_entrypoint_is_the_dispatcher_command() -> None:
    assert instructions("ENTRYPOINT") == ['["dispatcher"]']
    assert instructions("CMD") == ['["run", "--config", "/etc/dispatcher/dispatcher.yaml"]']
    assert instructions("EXPOSE") == ["9400 9401"]  # a worker's metrics, the admin service


def test_build_context_holds_only_what_the_image_copies() -> None:
    ignore = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line]
    rules = [line for line in ignore if not line.startswith("#")]
    assert rules[0] == "*", "the context starts from nothing and lets files in one by one"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", TEXT, flags=re.MULTILINE):
        for path in source.split():
            assert path in allowed, f"{path} is copied but excluded by .dockerignore"
            assert (REPO / path).exists(), path
