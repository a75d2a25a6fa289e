"""The receivers: nginx on 127.0.0.1 (fast, slow and holding locations) and a hanging socket.

nginx is the fast receiver the issue asks for. It cannot delay on its own; the echo module
(Debian's libnginx-mod-http-echo) adds `echo_sleep`, a timer in nginx's event loop, so the
200 ms endpoint costs no more than the fast one and holds thousands of requests at once.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")
BODY = '{"status":"ok","id":"msg-1"}'
# a payment provider's answer as third parties send them: a kilobyte of JSON with a link in it,
# behind the headers of a CDN and an API gateway (`/realistic`; `python -m bench.httppath
# --answer realistic`)
REALISTIC_BODY = (
    '{"id":"ch_3PqL2mK9xYz","object":"charge","status":"succeeded","amount":249990,'
    '"currency":"kes","captured":true,"created":1793607342,"livemode":false,'
    '"description":"DUGAA order 10482","receipt_url":"https://pay.example.com/receipts/'
    'acct_1Nv0FGQ9/ch_3PqL2mK9xYz?lang=en","payment_method_details":{"type":"card",'
    '"card":{"brand":"visa","last4":"4242","exp_month":12,"exp_year":2028,"country":"KE",'
    '"checks":{"cvc_check":"pass","address_line1_check":null,"address_postal_code_check":'
    'null}}},"billing_details":{"name":"Amina Wanjiru","email":"amina@example.org","phone":'
    '"+254712345678","address":{"line1":"Plot 12, Kiambu Road","city":"Kiambu","country":'
    '"KE","postal_code":"00900"}},"metadata":{"order_id":"10482","tenant":"acme",'
    '"channel":"web"},"outcome":{"network_status":"approved_by_network","risk_level":'
    '"normal","seller_message":"Payment complete.","type":"authorized"},"refunds":'
    '{"object":"list","data":[],"has_more":false,"total_count":0},"balance_transaction":'
    '"txn_3PqL2mK9xYz","application_fee":null,"statement_descriptor":"DUGAA*ORDER 10482"}'
)
REALISTIC_HEADERS = (
    ("Cache-Control", "no-cache, no-store"),
    ("Strict-Transport-Security", "max-age=63072000; includeSubDomains; preload"),
    ("X-Request-Id", "req_8f2b1c9d4e7a6b5c"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Expose-Headers", "Request-Id, Idempotency-Key"),
    ("Idempotency-Key", "msg_5187e12d2c68fe222269879c9b5906f0"),
    ("RateLimit-Limit", "100"),
    ("RateLimit-Remaining", "99"),
    ("RateLimit-Reset", "1"),
    ("Via", "1.1 gateway"),
    ("CF-Cache-Status", "DYNAMIC"),
    ("CF-Ray", "8d2f3a1b9c4e5f60-NBO"),
)
SLOW_SECONDS = 0.2
HOLD_SECONDS = 15

CONFIG = """\
load_module {echo};
worker_processes 1;
worker_rlimit_nofile 65536;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
daemon off;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    default_type application/json;
    server {{
        listen 127.0.0.1:{port} backlog=8192;
        location /fast {{ return 200 '{body}'; }}
        location /realistic {{ {realistic_headers} return 200 '{realistic_body}'; }}
        location /slow {{ echo_read_request_body; echo_sleep {slow}; echo '{body}'; }}
        location /hold {{ echo_read_request_body; echo_sleep {hold}; echo '{body}'; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Nginx:
    """nginx with one worker, configured in a temporary directory, on 127.0.0.1 only."""

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> Nginx:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        config = self.directory / "nginx.conf"
        config.write_text(
            CONFIG.format(
                echo=ECHO_MODULE,
                dir=self.directory,
                port=self.port,
                body=BODY,
                realistic_body=REALISTIC_BODY,
                realistic_headers=" ".join(
                    f'add_header {name} "{value}";' for name, value in REALISTIC_HEADERS
                ),
                slow=SLOW_SECONDS,
                hold=HOLD_SECONDS,
            )
        )
        self.process = subprocess.Popen(
            [binary, "-c", str(config), "-p", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.directory / "error.log").read_text(errors="replace")
                raise RuntimeError(f"nginx did not start:\n{log}")
            time.sleep(0.05)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


class HangingServer:
    """Accepts connections on 127.0.0.1 and never answers: every request times out."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(4096)
        self._socket.settimeout(0.2)
        self.port = int(self._socket.getsockname()[1])
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="hanging", daemon=True)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(connection)  # kept open, never read from, never answered

    def __enter__(self) -> HangingServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for connection in self._held:
            connection.close()
        self._socket.close()
