"""Signals before a worker has installed its own handlers."""

from __future__ import annotations

import signal
from types import FrameType


def stop_quietly_until_started() -> None:
    """Until a worker installs its own handlers, SIGTERM/SIGINT end the process with 0:
    nothing has been consumed yet, so there is nothing to drain."""

    def leave(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)
