"""The ceiling: wrk drives the same receiver with keep-alive, POSTing the same body and headers."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.workload import event, render_and_sign

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _script(directory: Path) -> Path:
    body, headers = render_and_sign(event("wrk", 1), "wrk")
    lines = ['wrk.method = "POST"', f"wrk.body = [[{body.decode()}]]"]
    lines += [f'wrk.headers["{name}"] = "{value}"' for name, value in headers.items()]
    path = directory / "post.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def _millis(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(url: str, connections: int, seconds: int, threads: int = 1) -> dict[str, Any]:
    """Requests per second and latency percentiles of a wrk run against `url`."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed: run bench/install.sh")
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as directory:
        script = _script(Path(directory))
        done = subprocess.run(
            [
                binary,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 30,
        )
    text = done.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    percentiles = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)$", text, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:(.*)$", text, re.MULTILINE)
    if rate is None:
        raise RuntimeError(f"unexpected wrk output:\n{text}")
    return {
        "connections": connections,
        "seconds": seconds,
        "deliveries_per_second": round(float(rate.group(1)), 1),
        "p50_ms": _millis(percentiles["50"]) if "50" in percentiles else None,
        "p99_ms": _millis(percentiles["99"]) if "99" in percentiles else None,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else "",
    }
