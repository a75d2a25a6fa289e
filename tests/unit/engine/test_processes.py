"""`dispatcher run --workers N`: the port each worker process serves /metrics on never takes
the admin service's, so `dispatcher admin` and the workers run side by side on one host."""

from __future__ import annotations

import pytest

from dispatcher.config.settings import load_settings
from dispatcher.engine.processes import worker_port


def test_with_the_default_ports_the_workers_leave_the_admin_port_free() -> None:
    settings = load_settings(None, environ={})
    ports = [worker_port(settings.http_port, settings.admin.port, i) for i in range(3)]
    assert ports == [9400, 9402, 9403]
    assert settings.admin.port not in ports


@pytest.mark.parametrize(
    ("http_port", "admin_port", "ports"),
    [
        (9500, 9401, [9500, 9501, 9502]),  # the admin port below: nothing to skip
        (9500, 9502, [9500, 9501, 9503]),  # among them: skipped
        (9500, 9503, [9500, 9501, 9502]),  # just past the last: nothing to skip
        (9500, 9500, [9500, 9501, 9502]),  # http_port itself: worker 0 serves where it is told
        (9500, 0, [9500, 9501, 9502]),  # the admin on any free port
        (0, 9401, [0, 0, 0]),  # every worker on any free port
    ],
)
def test_worker_i_serves_on_the_ith_port_from_http_port_skipping_the_admin_port(
    http_port: int, admin_port: int, ports: list[int]
) -> None:
    assert [worker_port(http_port, admin_port, i) for i in range(3)] == ports
