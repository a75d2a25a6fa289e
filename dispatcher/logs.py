"""Logging set-up shared by every entry point: one line per record, quiet HTTP libraries."""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Callable

QUIET = ("httpx", "httpcore", "aiohttp", "hpack")
REPEAT_WINDOW = 30.0  # seconds within which a librdkafka line said again is counted, not logged
_TIMING = re.compile(r"\(after \d+ms")  # "Connect to ... failed (after 0ms in state CONNECT)"


class Repeats(logging.Filter):
    """Lets a line through once per `window` seconds; the next one let through says how many
    like it were left out since the last (debug lines all pass). With its broker gone a
    librdkafka client retries every `reconnect.backoff.ms` (100 ms), and every retry is an
    error line: twenty a second per client, which would drown what the worker says about the
    outage itself."""

    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()  # every polling thread logs through here
        self._seen: dict[str, tuple[float, int]] = {}  # line -> (when let through, held back)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG:  # asked for (`debug` contexts): all of it
            return True
        line = _TIMING.sub("(after", f"{record.levelno} {record.getMessage()}")
        now = self.clock()
        with self._lock:
            shown, held = self._seen.get(line, (float("-inf"), 0))
            if now - shown < self.window:
                self._seen[line] = (shown, held + 1)
                return False
            if len(self._seen) > 1000:  # lines not repeated go: only the recent ones count
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.window}
            self._seen[line] = (now, 0)
        if held:
            said = f"{record.getMessage()} ({held} more like it since the last one logged)"
            record.msg, record.args = said, ()
        return True


# librdkafka's own lines, in our format: a client configured with `"logger": KAFKA` hands them
# over on the thread that polls it (a client never polled would hold them: admin probes omit it)
KAFKA = logging.getLogger("dispatcher.librdkafka")
KAFKA.addFilter(Repeats(REPEAT_WINDOW))


def configure(level: str = "INFO", *, prefix: str = "") -> None:
    """Log to stderr at `level`. HTTP client libraries log at WARNING only: at INFO they would
    print every request URL, and a URL can carry an API key."""
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)s {prefix}%(name)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
