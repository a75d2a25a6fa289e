"""The lock files: every install takes exact versions, checked by hash, and CI tests what the
image runs."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

import pytest
from deploy_tools import REPO

LOCKS = REPO / "requirements"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)
NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: str) -> dict[str, str]:
    return {canonical(n): v for n, v in PIN.findall((LOCKS / lock).read_text())}


def declared(*extras: str) -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    found = set()
    for requirement in requirements:
        match = NAME.match(requirement)
        assert match is not None, requirement
        found.add(canonical(match.group(1)))
    return found


@pytest.mark.parametrize(
    ("lock", "extras"),
    [("runtime.lock", ()), ("dev.lock", ("dev",)), ("bench.lock", ("dev", "bench"))],
)
def test_each_lock_pins_every_declared_dependency_with_hashes(
    lock: str, extras: tuple[str, ...]
) -> None:
    text = (LOCKS / lock).read_text()
    pinned = pins(lock)
    missing = declared(*extras) - set(pinned)
    assert not missing, f"{lock} lacks {sorted(missing)}: run `make lock`"
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 1)[1])
    unhashed = [e.split()[0] for e in entries if PIN.match(e) and "--hash=sha256:" not in e]
    assert not unhashed, unhashed


def test_the_image_runs_the_versions_ci_tests() -> None:
    runtime, dev = pins("runtime.lock"), pins("dev.lock")
    assert {name: dev.get(name) for name in runtime} == runtime


def test_the_benchmark_runs_the_versions_ci_tests() -> None:
    """`make bench` installs bench.lock over dev.lock in the same venv: it may add, never move
    (an older confluent-kafka there once left the workers without a ShareConsumer)."""
    dev, bench = pins("dev.lock"), pins("bench.lock")
    assert {name: bench.get(name) for name in dev} == dev


def test_the_quix_contender_has_its_own_hashed_lock() -> None:
    """Quix Streams pins an older confluent-kafka: it runs in .venv-quix, from quix.lock."""
    text = (LOCKS / "quix.lock").read_text()
    assert "quixstreams" in pins("quix.lock")
    assert "quixstreams" not in pins("bench.lock")
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 1)[1])
    unhashed = [e.split()[0] for e in entries if PIN.match(e) and "--hash=sha256:" not in e]
    assert not unhashed, unhashed


def test_this_environment_holds_exactly_the_locked_versions() -> None:
    """`make install` installs from dev.lock: every locked package is here at its version."""
    wrong = {}
    for name, version in pins("dev.lock").items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"locked vs installed: {wrong}"


def test_this_environment_holds_nothing_beyond_the_locks() -> None:
    """A fresh `make install` is exactly dev.lock: no distribution is here that the locks do not
    pin, none at another version (the project itself aside, installed from the work tree;
    `make bench` may add bench.lock's extras, which agree with dev.lock)."""
    pinned = {**pins("bench.lock"), **pins("dev.lock")}
    installed = {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    installed.pop("dugaa-dispatcher", None)
    unlocked = {name: v for name, v in installed.items() if pinned.get(name) != v}
    assert not unlocked, f"installed but not locked at that version: {unlocked}"
