"""Signals before a service is up: a quiet end while it starts, stacks on request; and a stop
asked of a one-off command that ends its work in order (a replay)."""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

STACKS_SIGNAL = signal.SIGUSR1
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_quietly_until_started() -> None:
    """Until the service is up (a worker's own handlers; the admin's `stop_with`), SIGTERM and
    SIGINT end the process with 0: nothing has been consumed or served, so nothing to drain.

    The process ends on the spot (`os._exit`) rather than by raising `SystemExit`: an
    exception raised by a signal handler lands wherever the main thread happens to be, and while
    an import formats an ImportError's message CPython 3.11 drops it or puts a TypeError in its
    place (cpython#112660). A clean-clone CI run stopped a worker as it imported `ssl`, and got
    `TypeError: expected a message argument` and exit 1; a lost stop would run on instead."""

    def leave(_signum: int, _frame: FrameType | None) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # best effort: it may be mid-write
                stream.flush()
        os._exit(0)

    for sig in STOP_SIGNALS:
        signal.signal(sig, leave)


def stop_with(stop: Callable[[], None]) -> None:
    """From here on SIGTERM/SIGINT call `stop`, a service's own orderly stop, rather than end
    the process: a server that takes them over while it runs (uvicorn) puts this handler back
    when it is done and raises the signal again, which must not cut short the clean-up after."""

    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda _signum, _frame: stop())


class StopRequest:
    """From its making on, SIGTERM and SIGINT ask the command to stop rather than end the
    process at once: a replay cut short in the middle of its requests would leave outcomes
    unwritten, and its next run would send those letters again. The first signal sets `event`
    and is kept in `signum`."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._asked)

    def _asked(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        self.event.set()

    @property
    def exit_code(self) -> int:
        """How a command stopped this way exits: 128 + the signal's number, as a shell reports
        a process that signal ended (130 for SIGINT, 143 for SIGTERM); 0 when none came."""
        return 0 if self.signum is None else 128 + self.signum


def dump_stacks_on_request() -> None:
    """SIGUSR1 writes every thread's stack to stderr (the log), and the process goes on: what
    a worker that will not stop, or stands still, is doing (`kill -USR1 PID`)."""
    faulthandler.register(STACKS_SIGNAL, file=sys.stderr, all_threads=True)
