"""deploy/Dockerfile: hadolint when it is installed, and the properties the issue asks for."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from deploy_tools import REPO, find_tool, run_in_image
from prometheus_client import CollectorRegistry

from dispatcher.engine.status import StatusServer

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


def healthcheck_command() -> list[str]:
    (healthcheck,) = instructions("HEALTHCHECK")
    command: list[str] = json.loads(healthcheck.partition(" CMD ")[2])
    return command


@pytest.mark.parametrize("set_by", ["file", "environment"])
def test_the_healthcheck_asks_the_worker_on_the_port_its_configuration_gives(
    tmp_path: Path, set_by: str
) -> None:
    """It asked 127.0.0.1:9400 whatever `http_port` (or DISPATCHER_HTTP_PORT) said: a worker
    on another port was unhealthy, and one that stopped answering there was not."""
    server = StatusServer(0, CollectorRegistry(), lambda: False, host="127.0.0.1")
    config = tmp_path / "dispatcher.yaml"
    env = {"DISPATCHER_CONFIG": str(config)}
    if set_by == "file":
        config.write_text(f"http_port: {server.port}\n")
    else:
        config.write_text("group_id: dugaa-dispatcher\n")
        env["DISPATCHER_HTTP_PORT"] = str(server.port)
    server.start()
    try:
        alive = run_in_image(healthcheck_command(), env)
    finally:
        server.stop()
    assert alive.returncode == 0, alive.stderr  # alive, if not ready: a restart would not help
    gone = run_in_image(healthcheck_command(), env)
    assert gone.returncode == 1, gone.stderr
    assert f"127.0.0.1:{server.port}" in gone.stderr
