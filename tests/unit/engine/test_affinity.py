"""A worker's Python threads pinned to one CPU: which CPU, and that only they are pinned."""

from __future__ import annotations

import logging
import os
import threading

import pytest

from dispatcher.engine.affinity import chosen_cpu, pin_this_thread


@pytest.mark.parametrize(
    ("affinity", "index", "allowed", "cpu"),
    [
        (None, 0, {0, 1, 2, 3}, None),  # off
        ("auto", 0, {0, 1, 2, 3}, 0),
        ("auto", 2, {0, 1, 2, 3}, 2),
        ("auto", 5, {0, 1, 2, 3}, 1),  # more workers than CPUs: round again
        ("auto", 1, {4, 6, 9}, 6),  # the CPUs the process may use, in order
        ((3, 1), 0, {0, 1, 2, 3}, 3),  # a list: in its own order
        ((3, 1), 1, {0, 1, 2, 3}, 1),
        ((7, 1), 0, {0, 1, 2, 3}, 1),  # a listed CPU the process may not use is passed over
        ((7, 8), 0, {0, 1, 2, 3}, None),  # none of them: left unpinned
        ("auto", 0, {2}, None),  # one CPU: nothing to choose
    ],
)
def test_the_cpu_of_worker_i(
    affinity: object, index: int, allowed: set[int], cpu: int | None
) -> None:
    assert chosen_cpu(affinity, index, allowed) == cpu  # type: ignore[arg-type]


needs_two_cpus = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="pinning needs sched_setaffinity and two CPUs",
)


def _in_thread(work):  # type: ignore[no-untyped-def]
    """Run `work` on a new thread (pinning there leaves the test's own thread alone)."""
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(work()))
    thread.start()
    thread.join()
    return out[0]


@needs_two_cpus
def test_the_calling_thread_and_the_threads_it_starts_are_pinned_and_no_other() -> None:
    before = os.sched_getaffinity(0)
    second = sorted(before)[1]
    started_before = threading.Event()
    seen: dict[str, set[int]] = {}

    def worker_thread() -> int | None:
        # a thread started before the pin (as librdkafka's are): it keeps every CPU
        early = threading.Thread(
            target=lambda: (started_before.wait(), seen.update(early=os.sched_getaffinity(0)))
        )
        early.start()
        cpu = pin_this_thread("auto", 1)
        seen["pinned"] = os.sched_getaffinity(0)
        late = threading.Thread(target=lambda: seen.update(late=os.sched_getaffinity(0)))
        late.start()
        late.join()
        started_before.set()
        early.join()
        return cpu

    assert _in_thread(worker_thread) == second
    assert seen == {"pinned": {second}, "late": {second}, "early": before}
    assert os.sched_getaffinity(0) == before  # the test's own thread is untouched


@needs_two_cpus
def test_off_or_nothing_to_pin_to_leaves_the_thread_where_it_was(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = os.sched_getaffinity(0)
    elsewhere = max(before) + 1

    assert _in_thread(lambda: (pin_this_thread(None, 0), os.sched_getaffinity(0))) == (
        None,
        before,
    )
    with caplog.at_level(logging.WARNING):
        assert _in_thread(lambda: (pin_this_thread((elsewhere,), 0), os.sched_getaffinity(0))) == (
            None,
            before,
        )
    assert f"cpu_affinity {elsewhere}: nothing to pin to" in caplog.text
