"""A worker's /readyz: its status and its body say the same, read once, even as readiness
changes under it (a rebalance assigns or takes the partitions at any moment)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from dispatcher.engine.status import StatusServer


@pytest.fixture
def flipping() -> Iterator[StatusServer]:
    """A status server whose worker turns ready between two readings (as an assignment does)."""
    readings = iter([False, True, True])
    server = StatusServer(0, CollectorRegistry(), lambda: next(readings), host="127.0.0.1")
    server.start()
    yield server
    server.stop()


def test_readyz_answers_its_status_and_body_from_one_reading(flipping: StatusServer) -> None:
    status, content_type, body = flipping.answer("GET", "/readyz")
    assert content_type == "application/json"
    assert (status, json.loads(body)) == (503, {"ready": False})
    status, _, body = flipping.answer("GET", "/readyz")
    assert (status, json.loads(body)) == (200, {"ready": True})
