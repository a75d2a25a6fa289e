"""`dispatcher admin`: the admin service on `admin.host:admin.port` under uvicorn.

A head still arriving is bounded by h11's limit (a complete one by `Bounds`); idle connections
close after 5 s; SIGTERM/SIGINT stop the server, which gives requests in flight at most 5 s
(a browser's idle keep-alive connection never holds it up), then the followers.
"""

from __future__ import annotations

import logging
import socket

import uvicorn

from dispatcher import signals, tracing
from dispatcher.api.app import create_app
from dispatcher.api.bounds import MAX_HEAD_BYTES
from dispatcher.api.service import AdminService
from dispatcher.config.settings import Settings
from dispatcher.errors import ConfigError

log = logging.getLogger(__name__)


def server(settings: Settings, service: AdminService) -> uvicorn.Server:
    """A uvicorn server for the app around `service` (not yet started)."""
    admin = settings.admin
    proxies = [str(network) for network in admin.trusted_proxies]
    config = uvicorn.Config(
        create_app(service),
        host=admin.host,
        port=admin.port,
        http="h11",
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=5,
        limit_concurrency=256,
        server_header=False,
        proxy_headers=bool(proxies),  # only a listed proxy's X-Forwarded-Proto/-For count
        forwarded_allow_ips=proxies or None,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    return uvicorn.Server(config)


def serve(settings: Settings) -> None:
    """Run the admin service until SIGTERM/SIGINT. Its address is taken first, before Kafka
    is asked: one it cannot have is a `ConfigError` (exit 1) naming the setting, where uvicorn
    would log its own line and exit 3, which says Kafka could not be reached."""
    with listening(settings.admin.host, settings.admin.port) as sock:
        provider = tracing.start("admin")
        try:
            service = AdminService.start(settings, provider)
            try:
                log.info(
                    "admin service on http://%s:%d", settings.admin.host, sock.getsockname()[1]
                )
                admin = server(settings, service)
                signals.stop_with(lambda: setattr(admin, "should_exit", True))
                admin.run(sockets=[sock])
            finally:
                service.stop()
            log.info("admin service stopped")
        finally:
            tracing.stop(provider)


def listening(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port` as uvicorn binds one (IPv6 for an address with a colon,
    address reuse on), for the server to listen on."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError.cannot_listen("admin.host, admin.port", host, port, exc) from None
    return sock
