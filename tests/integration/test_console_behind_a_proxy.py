"""The console in a real browser behind a reverse proxy on loopback that names the upstream in
the Host header it forwards, as nginx does by default (`proxy_set_header Host $proxy_host`):
every page still has its stylesheet."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from admin_support import ADMIN_TOKEN, TOKEN_ENV, AdminDeployment, running_admin
from console_support import shot, sign_in
from dispatch_support import hook
from playwright.sync_api import Page, expect

UPSTREAM_NAME = "dugaa-admin:9401"  # how the proxy knows the admin service
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@contextmanager
def reverse_proxy(upstream: str) -> Iterator[str]:
    """A reverse proxy on a free loopback port forwarding to `upstream` with the Host header
    `UPSTREAM_NAME`; its URL."""

    class Forward(BaseHTTPRequestHandler):
        def forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            with httpx.Client(base_url=upstream, trust_env=False) as client:
                answer = client.request(
                    self.command,
                    self.path,
                    content=body,
                    headers={**headers, "host": UPSTREAM_NAME},
                )
            self.send_response(answer.status_code)
            for name, value in answer.headers.multi_items():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("content-length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = forward

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    thread = threading.Thread(target=server.serve_forever, name="proxy", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_the_console_keeps_its_stylesheet_behind_a_proxy_that_names_the_upstream_as_host(
    page: Page, kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in TOKEN_ENV.items():
        monkeypatch.setenv(name, value)
    deployment = AdminDeployment(
        kafka_bootstrap, tmp_path, [hook("audit", "https://audit.example/in", ["order.*"])]
    )
    with running_admin(deployment.settings) as admin, reverse_proxy(admin.url) as proxied:
        page.set_viewport_size({"width": 1360, "height": 700})
        sign_in(page, proxied, ADMIN_TOKEN)
        expect(page.locator("#hook-audit")).to_be_visible()
        expect(page.locator("header")).to_have_css("background-color", "rgb(17, 24, 39)")
        shot(page, "24-behind-a-proxy")
