"""Keep a worker's Python threads on one CPU (the `cpu_affinity` setting).

A worker's delivery loop and its consumer threads share one GIL: they never run Python at the
same time, so two CPUs gain them nothing. Left to the scheduler they still move between CPUs,
and every object one makes and the other reads (a pair, a record, a delivery report), with
every reference count it touches, then crosses between the CPUs' caches. Pinned together on
one CPU, a worker took 4-12% less CPU per delivery on the benchmark's scenario 1 than the same
worker unpinned, run side by side (the `make bench` runs of 2026-12-06), and about 17% less on
scenario 3 in alternated runs before it was a setting.
librdkafka's threads, made before the pin, stay free to run on the other CPUs.

Off by default: on a node shared with other work, a pinned worker cannot move off a busy CPU,
and `auto` puts the first worker of every process on the same one. Use it where the worker's
CPUs are its own (Kubernetes' static CPU manager policy, a VM or a host of its own).
"""

from __future__ import annotations

import logging
import os

from dispatcher.config.cpus import CpuAffinity, format_cpu_affinity

log = logging.getLogger(__name__)


def chosen_cpu(affinity: CpuAffinity, index: int, allowed: set[int]) -> int | None:
    """The CPU for worker `index` (0 for a lone worker) of the `allowed` ones, or None: not
    pinned (off, one CPU only anyway, or none of the listed CPUs is allowed)."""
    if affinity is None or len(allowed) < 2:
        return None
    candidates = sorted(allowed) if affinity == "auto" else [c for c in affinity if c in allowed]
    if not candidates:
        return None
    return candidates[index % len(candidates)]


def pin_this_thread(affinity: CpuAffinity, index: int) -> int | None:
    """Pin the calling thread (and the threads it starts from now on) to worker `index`'s CPU;
    returns the CPU, or None when it is left where it was."""
    if affinity is None:
        return None
    if not hasattr(os, "sched_setaffinity"):
        log.warning("cpu_affinity %s: not supported on this system", format_cpu_affinity(affinity))
        return None
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        return None  # one CPU: the threads share it already
    cpu = chosen_cpu(affinity, index, allowed)
    if cpu is None:
        log.warning(
            "cpu_affinity %s: nothing to pin to among the CPUs this process may use (%s)",
            format_cpu_affinity(affinity),
            ",".join(map(str, sorted(allowed))),
        )
        return None
    os.sched_setaffinity(0, {cpu})  # Linux: 0 is the calling thread, not the whole process
    log.info("worker %d: its Python threads run on CPU %d", index, cpu)
    return cpu
