"""Signals before a worker has installed its own handlers."""

from __future__ import annotations

import faulthandler
import signal
import sys
from types import FrameType

STACKS_SIGNAL = signal.SIGUSR1


def stop_quietly_until_started() -> None:
    """Until a worker installs its own handlers, SIGTERM/SIGINT end the process with 0:
    nothing has been consumed yet, so there is nothing to drain."""

    def leave(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)


def dump_stacks_on_request() -> None:
    """SIGUSR1 writes every thread's stack to stderr (the log), and the process goes on: what
    a worker that will not stop, or stands still, is doing (`kill -USR1 PID`)."""
    faulthandler.register(STACKS_SIGNAL, file=sys.stderr, all_threads=True)
