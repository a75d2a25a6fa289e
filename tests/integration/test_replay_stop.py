"""`dispatcher replay` stopped by SIGINT or SIGTERM, on the real broker against a real receiver:
the request under way ends and is recorded, the rest is left for the next run, which sends
each letter the first did not, and none that it did."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from dispatch_support import Deployment, cloud_event, hook
from kafka_support import consume_all, wait_for

from dispatcher.devtools.receiver import Behaviour, Receiver
from dispatcher.kafka.store import hooks_in_force
from dispatcher.ops.replay.run import ReplayOptions, run_replay
from dispatcher.ops.replay.selection import Selection


class Stderr:
    """What a process writes to its stderr, read as it comes (its logs)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stderr is not None
        stream = process.stderr
        self._thread = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self._thread.start()

    def text(self) -> str:
        return "".join(self.lines)

    def read_to_end(self) -> str:
        """All of it, once the process has ended (its end closes the stream)."""
        self._thread.join(timeout=30)
        return self.text()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_replay_stopped_by_a_signal_records_what_it_sent_and_the_next_run_sends_the_rest(
    kafka_bootstrap: str, tmp_path: Path, sig: signal.Signals
) -> None:
    with Receiver({"/erp": Behaviour(status=400)}) as receiver:
        erp = hook(
            "erp", f"{receiver.url}/erp", ["order.*"], concurrency=1, retry={"max_attempts": 1}
        )
        deployment = Deployment(kafka_bootstrap, tmp_path, [erp])
        deployment.produce_events([cloud_event("order.placed", {"n": i}) for i in range(3)])
        with deployment.worker():
            letters = consume_all(kafka_bootstrap, deployment.dead_letter, 3, timeout=60)
        release = threading.Event()
        receiver.routes["/erp"] = Behaviour(release=release)  # fixed, and holds each request
        with subprocess.Popen(
            [sys.executable, "-m", "dispatcher", "replay", "--config", str(deployment.config_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as replay:
            stderr = Stderr(replay)
            try:
                wait_for(lambda: len(receiver.received("/erp")) == 4, 60, message="a request")
                replay.send_signal(sig)

                def taken() -> bool:  # the stop said, or the replay gone without a word
                    return "replay stopping" in stderr.text() or replay.poll() is not None

                wait_for(taken, 30, message="the replay to take the stop")
                release.set()  # the request under way is answered: delivered
                replay.wait(timeout=60)
            finally:
                release.set()
                if replay.poll() is None:
                    replay.kill()
                logged = stderr.read_to_end()
            assert replay.stdout is not None
            out = replay.stdout.read()
        settings = deployment.settings
        _, again = run_replay(settings, hooks_in_force(settings), ReplayOptions(Selection()))
        assert (again.delivered, again.failed, again.skipped) == (2, 0, 1)
        assert again.skipped_reasons == {"already delivered": 1}
        replayed = [r.headers["webhook-id"] for r in receiver.received("/erp")[3:]]
        keys = sorted((d.header("dispatcher.idempotency.key") or b"").decode() for d in letters)
        assert sorted(replayed) == keys  # each letter sent once by the two runs together
        assert replay.returncode == 128 + sig, logged
        assert out.strip() == (
            "selected 3, delivered 1, failed again 0, skipped 0;"
            " stopped: 2 not sent, left for the next run"
        )
