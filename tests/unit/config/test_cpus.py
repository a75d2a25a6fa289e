"""The `cpu_affinity` setting: off, auto or a CPU list, checked where the configuration is read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dispatcher.config.cpus import format_cpu_affinity, parse_cpu_affinity
from dispatcher.config.settings import load_settings
from dispatcher.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("off", None),
        ("", None),
        ("OFF", None),
        ("auto", "auto"),
        (" Auto ", "auto"),
        ("3", (3,)),
        ("2,3", (2, 3)),
        ("0-3", (0, 1, 2, 3)),
        ("1,4-5", (1, 4, 5)),
        ("5,1", (5, 1)),  # the order written: worker 0 on CPU 5
        ("2-3,3,2", (2, 3)),  # each CPU once
    ],
)
def test_the_setting_reads_off_auto_and_lists_of_cpus(text: str, parsed: object) -> None:
    assert parse_cpu_affinity(text) == parsed


@pytest.mark.parametrize("text", ["on", "all", "1;2", "a-b", "3-1", "-1", "1,,2", "4096"])
def test_anything_else_is_refused_saying_what_is_meant(text: str) -> None:
    with pytest.raises(ValueError, match=r"(off, auto or a list of CPUs|must run upwards)"):
        parse_cpu_affinity(text)


@pytest.mark.parametrize("affinity", [None, "auto", (2,), (0, 1, 2, 3), (5, 1)])
def test_formatted_it_reads_back_the_same(affinity: object) -> None:
    assert parse_cpu_affinity(format_cpu_affinity(affinity)) == affinity  # type: ignore[arg-type]


def test_off_by_default_and_set_from_the_file_or_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "dispatcher.yaml"
    path.write_text("cpu_affinity: 2-3\n", encoding="utf-8")

    assert load_settings(None, environ={}).cpu_affinity is None
    assert load_settings(str(path), environ={}).cpu_affinity == (2, 3)
    assert load_settings(str(path), environ={"DISPATCHER_CPU_AFFINITY": "auto"}).cpu_affinity == (
        "auto"
    )


def test_a_bad_value_names_the_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "dispatcher.yaml"
    path.write_text("group_id: g\ncpu_affinity: all\n", encoding="utf-8")

    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:2: cpu_affinity: must be"):
        load_settings(str(path), environ={})
