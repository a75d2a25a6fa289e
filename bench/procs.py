"""CPU seconds and memory of a process and its descendants, read from /proc (Linux only)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """`pid` and every live process below it."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                queue.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue
    return found


@contextmanager
def stopped(pid: int) -> Iterator[None]:
    """`pid` and its descendants stopped (SIGSTOP) for the block, continued (SIGCONT) after:
    a backlog produced meanwhile waits whole for the contender, as a backlog does."""
    members = descendants(pid)
    for member in members:
        _signal(member, signal.SIGSTOP)
    try:
        yield
    finally:
        for member in members:
            _signal(member, signal.SIGCONT)


def _signal(pid: int, number: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, number)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # fields from `state` on; comm may hold spaces


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of the tree: live processes, plus the children they have reaped."""
    ticks = 0
    for member in descendants(pid):
        fields = _stat_fields(member)
        if fields is not None:
            # utime, stime, cutime, cstime (stat fields 14-17)
            ticks += sum(int(f) for f in fields[11:15])
    return ticks / TICKS


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine since boot, summed over its CPUs."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle, iowait; then irq, softirq, steal (guest is in user)
    total = sum(fields)
    return (total - idle) / TICKS, total / TICKS


def _status_kb(pid: int, name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_peak_rss_mb(pid: int) -> float:
    """The sum of each live member's peak resident set (VmHWM), in MiB."""
    return sum(_status_kb(p, "VmHWM") for p in descendants(pid)) / 1024


def tree_rss_mb(pid: int) -> float:
    """The sum of each live member's current resident set (VmRSS), in MiB."""
    return sum(_status_kb(p, "VmRSS") for p in descendants(pid)) / 1024


def thread_cpu_seconds(pid: int) -> Iterator[tuple[str, float]]:
    """(name, user + system CPU seconds) of each live thread of process `pid`."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return
    for task in tasks:
        try:
            text = (task / "stat").read_text()
        except OSError:
            continue  # a thread may end between the listing and the read
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        yield name, (int(fields[11]) + int(fields[12])) / TICKS


def tree_thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds of the tree's live threads by kind: librdkafka's own (`rdk:*`) and the rest."""
    kinds = {"librdkafka": 0.0, "other": 0.0}
    for member in descendants(pid):
        for name, seconds in thread_cpu_seconds(member):
            kinds["librdkafka" if name.startswith("rdk:") else "other"] += seconds
    return kinds
