"""Closing a group consumer within a bound, whatever the broker does.

librdkafka's final synchronous commit and its `close()` (which leaves the group) wait on the
group coordinator and take no timeout: with the broker gone they wait out the session timeout
and then longer. A worker asked to stop must exit within its grace period, so the close runs on
a thread of its own that the caller waits for only so long. A close left behind loses nothing:
the offsets it did not commit are redelivered to the group's next owner of the partitions.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def close_within(close: Callable[[], None], seconds: float, name: str) -> bool:
    """Run `close` and wait for it up to `seconds`; False (and a warning) when it still runs."""

    def closing() -> None:
        try:
            close()
        except Exception:  # a thread's exception would otherwise go unseen by the caller
            log.exception("closing %s failed", name)

    closer = threading.Thread(target=closing, name=f"close {name}", daemon=True)
    closer.start()
    closer.join(max(seconds, 0.0))
    if closer.is_alive():
        log.warning(
            "%s did not close within %.0fs (no group coordinator: is the broker down?); "
            "exiting without it: its uncommitted offsets will be redelivered",
            name,
            seconds,
        )
        return False
    return True
