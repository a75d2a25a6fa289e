"""The `cpu_affinity` setting: where a worker's Python threads run. Pure.

`off` (the default): wherever the operating system puts them. `auto`: each worker process on one
CPU of those the process may use, worker i on the i-th. A list (`2`, `2,3`, `0-3`, `1,4-5`): the
same over those CPUs only.
"""

from __future__ import annotations

from typing import Literal

CpuAffinity = tuple[int, ...] | Literal["auto"] | None
"""None: off; "auto": the CPUs the process may use; else these CPUs, in this order."""

MAX_CPU = 4095  # Linux's CONFIG_NR_CPUS at its largest


def parse_cpu_affinity(text: str) -> CpuAffinity:
    """`off`, `auto` or a CPU list, as the setting holds it; `ValueError` saying why not."""
    spec = text.strip().lower()
    if spec in ("", "off", "none", "false"):
        return None
    if spec == "auto":
        return "auto"
    cpus: list[int] = []
    for item in spec.split(","):
        first, dash, last = item.strip().partition("-")
        try:
            low, high = int(first), int(last if dash else first)
        except ValueError:
            raise ValueError(
                f"must be off, auto or a list of CPUs such as 2,3 or 0-3, not {text!r}"
            ) from None
        if not 0 <= low <= high <= MAX_CPU:
            raise ValueError(f"CPU range {item.strip()!r} must run upwards from 0 to {MAX_CPU}")
        cpus += [cpu for cpu in range(low, high + 1) if cpu not in cpus]
    return tuple(cpus)


def format_cpu_affinity(affinity: CpuAffinity) -> str:
    """The setting as written (`off`, `auto`, or the list)."""
    if affinity is None:
        return "off"
    if affinity == "auto":
        return "auto"
    return ",".join(map(str, affinity))
