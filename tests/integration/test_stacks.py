"""SIGUSR1 asks a running worker for its threads' stacks: `dispatcher run --workers 2` passes it
to each worker, each writes every thread's stack to its log, and both go on and stop cleanly."""

from __future__ import annotations

import signal
from pathlib import Path

from dispatch_support import Deployment, hook, stop
from kafka_support import wait_for

from dispatcher.devtools.receiver import Receiver


def test_sigusr1_writes_each_workers_thread_stacks_and_they_go_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("crm", f"{receiver.url}/crm", ["customer.created"])],
            partitions=2,
        )
        log = deployment.directory / f"{deployment.group}.log"
        process = deployment.process("--workers", "2")
        wait_for(lambda: deployment.workers_started() == 2, 60, message="two workers up")

        process.send_signal(signal.SIGUSR1)

        def dumps() -> int:  # one "Current thread" per process that wrote its stacks
            return log.read_text(errors="replace").count("Current thread 0x")

        wait_for(lambda: dumps() >= 2, 30, message="both workers' stacks in the log")
        text = log.read_text(errors="replace")
        assert process.poll() is None  # still running
        assert stop(process) == 0

    assert dumps() == 2  # the two workers, not the parent
    assert "dispatcher/engine/consumer.py" in text  # a consumer thread, where it was
