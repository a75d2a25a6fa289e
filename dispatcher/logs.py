"""Logging set-up shared by every entry point: one line per record, quiet HTTP libraries."""

from __future__ import annotations

import logging
import sys

QUIET = ("httpx", "httpcore", "aiohttp", "hpack")
# librdkafka's own lines, in our format: a client configured with `"logger": KAFKA` hands them
# over on the thread that polls it (a client never polled would hold them: admin probes omit it)
KAFKA = logging.getLogger("dispatcher.librdkafka")


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
