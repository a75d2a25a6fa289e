"""The event loop a worker runs on: uvloop where it is installed, else asyncio's own.

uvloop runs the same asyncio code on libuv; with thousands of sockets in flight its loop and
transports cost a fraction of the pure-Python selector loop's CPU per delivery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's when it is importable."""
    try:
        import uvloop
    except ImportError:  # not on this platform (uvloop is a dependency on Linux and macOS)
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the loop of `new_event_loop`."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
