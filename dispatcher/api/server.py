"""`dispatcher admin`: the admin service on `admin.host:admin.port` under uvicorn.

Headers are bounded by h11's limit on an incomplete request head; idle connections close after
a few seconds; SIGTERM/SIGINT stop the server, then the followers.
"""

from __future__ import annotations

import logging

import uvicorn

from dispatcher.api.app import create_app
from dispatcher.api.bounds import MAX_HEAD_BYTES
from dispatcher.api.service import AdminService
from dispatcher.config.settings import Settings

log = logging.getLogger(__name__)


def server(settings: Settings, service: AdminService) -> uvicorn.Server:
    """A uvicorn server for the app around `service` (not yet started)."""
    admin = settings.admin
    config = uvicorn.Config(
        create_app(service),
        host=admin.host,
        port=admin.port,
        http="h11",
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        timeout_keep_alive=5,
        limit_concurrency=256,
        server_header=False,
        proxy_headers=False,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    return uvicorn.Server(config)


def serve(settings: Settings) -> None:
    """Run the admin service until SIGTERM/SIGINT."""
    service = AdminService.start(settings)
    try:
        log.info("admin service on http://%s:%d", settings.admin.host, settings.admin.port)
        server(settings, service).run()
    finally:
        service.stop()
