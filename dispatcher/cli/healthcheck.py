"""`dispatcher healthcheck`: asks this container's worker (or admin service) on the port its
configuration gives whether it is alive, or ready; the image's HEALTHCHECK. It reads only the
configuration, so it stays as light as the probe it replaces."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request

from dispatcher.config.settings import Settings, default_config_path, load_settings

_ANY_ADDRESS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def health_url(settings: Settings, admin: bool = False, ready: bool = False) -> str:
    """Worker 0's /healthz (/readyz when `ready`) on http_port, or the admin service's
    /healthz on admin.port, at the address it listens on (loopback when it listens on all)."""
    if admin:
        host, port, path = settings.admin.host, settings.admin.port, "/healthz"
    else:
        host, port, path = "0.0.0.0", settings.http_port, "/readyz" if ready else "/healthz"
    host = _ANY_ADDRESS.get(host, host)
    return f"http://{f'[{host}]' if ':' in host else host}:{port}{path}"


def problem_at(url: str, timeout: float) -> str | None:
    """None when `url` answers 200 within `timeout` seconds, else what went wrong."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 (http only)
            status = answer.status
    except urllib.error.HTTPError as exc:
        if exc.code == 503:
            return f"HTTP 503{_stalled(exc)}"
        status = exc.code
    except (OSError, ValueError) as exc:
        return str(getattr(exc, "reason", None) or exc)
    return None if status == 200 else f"HTTP {status}"


def _stalled(answer: urllib.error.HTTPError) -> str:
    """`: stalled: PART SECONDSs, ...` when a worker's /healthz named hung parts, else ''."""
    try:
        stalled = json.loads(answer.read(4096)).get("stalled")
    except (OSError, ValueError, AttributeError):
        return ""
    if not isinstance(stalled, dict) or not stalled:
        return ""
    return ": stalled: " + ", ".join(f"{part} {seconds}s" for part, seconds in stalled.items())


def healthcheck(args: argparse.Namespace) -> int:
    """0 when the service answers, 1 (Docker's "unhealthy") with the reason on stderr."""
    settings = load_settings(default_config_path(args.config))
    if not args.admin and settings.http_port == 0:
        print("unhealthy: http_port is 0 (any free port): no port to ask", file=sys.stderr)
        return 1
    url = health_url(settings, admin=args.admin, ready=args.ready)
    problem = problem_at(url, args.timeout)
    if problem is not None:
        print(f"unhealthy: {url}: {problem}", file=sys.stderr)
        return 1
    return 0
