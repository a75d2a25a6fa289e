"""A single-node Kafka broker on this machine, for the demo, the benchmark and the tests.

`LocalKafka` drives deploy/kafka-dev/kafka.sh, which needs Java 17+ and (once, to fetch the
broker's jars) Maven. It is a development aid: a packaged install has no such script.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from dispatcher.errors import KafkaUnavailable

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "kafka-dev" / "kafka.sh"

# First use fetches the jars and records a class-data archive; later starts take seconds.
_START_TIMEOUT = 300.0
_STOP_TIMEOUT = 60.0


class LocalKafka:
    """A broker whose configuration, data and logs live in one directory, on 127.0.0.1.

    By default the broker is tied to this process: should the process die without
    calling `stop()`, the broker stops too.
    """

    def __init__(self, *, script: Path = SCRIPT, tie_to_process: bool = True) -> None:
        self._script = script
        self._tie_to_process = tie_to_process
        self._directory: Path | None = None
        self._bootstrap: str | None = None

    def __repr__(self) -> str:
        return f"LocalKafka(directory={self._directory}, bootstrap={self._bootstrap})"

    @property
    def directory(self) -> Path | None:
        """The broker's directory, once started."""
        return self._directory

    @property
    def bootstrap(self) -> str | None:
        """`127.0.0.1:PORT` once started."""
        return self._bootstrap

    @property
    def log_file(self) -> Path | None:
        """The broker's own log, for a failing test to show."""
        return None if self._directory is None else self._directory / "logs" / "server.log"

    def start(self, directory: Path | str | None = None) -> str:
        """Starts the broker in `directory` (a new temporary one by default); returns bootstrap."""
        if directory is None:
            directory = self._directory or tempfile.mkdtemp(prefix="dugaa-kafka-")
        self._directory = Path(directory).resolve()
        self._bootstrap = self._run("start", _START_TIMEOUT)
        return self._bootstrap

    def stop(self) -> None:
        """Stops the broker (a no-op when it is not running); data and logs stay."""
        if self._directory is not None:
            self._run("stop", _STOP_TIMEOUT)

    def restart(self) -> str:
        """Stops and starts the broker on the same address and data; returns bootstrap."""
        if self._directory is None:
            raise RuntimeError("restart() before start()")
        self._bootstrap = self._run("restart", _START_TIMEOUT + _STOP_TIMEOUT)
        return self._bootstrap

    def pid(self) -> int | None:
        """The broker's process id while one was started (its JVM's), else None."""
        if self._directory is None:
            return None
        try:
            return int((self._directory / "kafka.pid").read_text())
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        """Whether the broker process is alive."""
        if self._directory is None:
            return False
        status = subprocess.run(
            ["bash", str(self._script), "status", str(self._directory)],
            capture_output=True,
            check=False,
            timeout=_STOP_TIMEOUT,
        )
        return status.returncode == 0

    def __enter__(self) -> LocalKafka:
        if self._bootstrap is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, command: str, timeout: float) -> str:
        if not self._script.is_file():
            raise KafkaUnavailable(
                f"no local Kafka broker: {self._script} is missing (it comes with a source "
                "checkout); point the dispatcher at a running broker instead"
            )
        env = dict(os.environ)
        if self._tie_to_process:
            env["KAFKA_OWNER_PID"] = str(os.getpid())
        try:
            done = subprocess.run(
                ["bash", str(self._script), command, str(self._directory)],
                capture_output=True,
                check=False,
                env=env,
                text=True,
                timeout=timeout,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise KafkaUnavailable(f"local Kafka broker: {command} failed: {exc}") from exc
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-20:])
            raise KafkaUnavailable(f"local Kafka broker: {command} failed:\n{tail}")
        return done.stdout.strip()
