"""Runs receivers made of the README's Node and Go snippets, with the libraries those snippets
name at the versions tests/receivers pins (`make receivers` installs them: npm packages into
.tools/receivers, Go modules into the module cache, as tests/receivers/install.sh says).

The snippets go in as the README writes them; what this module adds around them (reading the
request from files, printing what came out) is the least a program needs to run them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PINS = REPO / "tests" / "receivers"
INSTALLED = REPO / ".tools" / "receivers"
PIN_FILES = ("package.json", "package-lock.json", "go.mod", "go.sum")  # as install.sh hashes them

# Node: the request from the files named on the command line, as a server has it: the body as
# received (a Buffer), the headers with lowercase names (Node's `req.headers`).
NODE_PRELUDE = """\
import { readFileSync } from "node:fs";

const body = readFileSync(process.argv[2]);
const headers = JSON.parse(readFileSync(process.argv[3], "utf8"));
"""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a receiver program did: its exit code and what it printed."""

    returncode: int
    stdout: bytes
    stderr: str


def require_receivers() -> None:
    """Fails the test, saying what to run, unless node and go are here and `make receivers`
    installed the pinned libraries (`make test` does: a skip here would hide a broken snippet)."""
    for tool in ("node", "go"):
        if shutil.which(tool) is None:
            pytest.fail(
                f"{tool} is not installed: the README's receivers need it (`make receivers`)"
            )
    stamp = INSTALLED / ".installed"
    installed = stamp.read_text().strip() if stamp.is_file() else None
    if installed != pins_fingerprint():
        pytest.fail(
            "the README receivers' libraries are not installed from tests/receivers' pins: "
            "run `make receivers`"
        )


def pins_fingerprint() -> str:
    """The hash install.sh stamps an install with: `cat PIN_FILES | sha256sum`, cut to 16."""
    pins = b"".join((PINS / name).read_bytes() for name in PIN_FILES)
    return hashlib.sha256(pins).hexdigest()[:16]


def write_request(where: Path, body: bytes, headers: dict[str, str]) -> list[str]:
    """The request as the receivers read it: two files, their paths as arguments."""
    (where / "body").write_bytes(body)
    (where / "headers.json").write_text(json.dumps({k.lower(): v for k, v in headers.items()}))
    return [str(where / "body"), str(where / "headers.json")]


def run(command: list[str], env: dict[str, str], cwd: Path) -> Outcome:
    done = subprocess.run(
        command, env={**os.environ, **env}, cwd=cwd, capture_output=True, timeout=60, check=False
    )
    return Outcome(done.returncode, done.stdout, done.stderr.decode(errors="replace"))


def node_command(where: Path, program: str) -> list[str]:
    """The command running `program` (an ES module: NODE_PRELUDE, snippets, what it prints),
    written into `where`, where it sees the pinned npm packages."""
    (where / "node_modules").symlink_to(INSTALLED / "node_modules", target_is_directory=True)
    (where / "receiver.mjs").write_text(program, encoding="utf-8")
    return ["node", str(where / "receiver.mjs")]


def go_environment() -> dict[str, str]:
    """Where install.sh put the Go modules and their build cache; no module is fetched here."""
    gopath = os.environ.get("GOPATH", str(REPO / ".cache" / "go"))
    return {
        "GOPATH": gopath,
        "GOCACHE": os.environ.get("GOCACHE", str(REPO / ".cache" / "go" / "build")),
        "GOMODCACHE": os.environ.get("GOMODCACHE", str(Path(gopath) / "pkg" / "mod")),
        "GOFLAGS": "-mod=readonly -buildvcs=false",
        "GOPROXY": "off",
        "GOWORK": "off",
        "CGO_ENABLED": "0",
    }


def build_go(where: Path, sources: dict[str, str]) -> Outcome:
    """tests/receivers/main.go with `sources` (file name: text, each a README snippet below a
    package clause) built into `where`/receiver; the outcome is the compiler's."""
    for name in ("go.mod", "go.sum", "main.go"):
        shutil.copy(PINS / name, where / name)
    for name, text in sources.items():
        (where / name).write_text(f"package main\n\n{text}", encoding="utf-8")
    return run(["go", "build", "-o", "receiver", "."], go_environment(), where)
