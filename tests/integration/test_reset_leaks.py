"""An endpoint that resets the connection while the body is still arriving: the attempt fails
as `network`, and its error text, which a library may build from the request URL, never carries
the api key that the URL holds (`api_key` with `in: query`).

A `dispatcher run` subprocess at DEBUG delivers one large event to a hostile loopback server
that reads a little of each body and then resets the connection. The results, retry and
dead-letter records, the log and /metrics are then searched for every usual form of the key.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from dispatch_support import Deployment, cloud_event, collect_until, hook, status_port, stop
from hostile_server import HostileServer
from kafka_support import Record
from leak_support import secret_forms

ENV = "RESET_LEAK_API_KEY"


def _blob(record: Record) -> bytes:
    parts = [record.key or b"", record.value or b""]
    for name, value in record.headers:
        parts += [name.encode(), value or b""]
    return b"\n".join(parts)


def test_a_reset_mid_body_leaves_the_api_key_in_no_outcome_letter_log_or_metric(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    api_key = f"qk/{uuid.uuid4().hex}+&="
    with HostileServer() as server:
        server.resets.add("/upload")
        upload = hook(
            "upload",
            f"{server.url}/upload?batch=7",
            ["file.ready"],
            auth={"type": "api_key", "name": "code", "value": f"${{env:{ENV}}}", "in": "query"},
            max_payload_bytes=1 << 20,
            retry={"max_attempts": 2},
            timeout="5s",
        )
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [upload],
            retry=("1s",),
            extra={"local_retries": 0},
        )
        deployment.produce_events([cloud_event("file.ready", {"blob": "x" * 600_000})])
        process = deployment.process("--log-level", "DEBUG", env={ENV: api_key})
        try:
            results = collect_until(
                kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 1, 90
            )
            port = status_port(deployment.log_path)
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).content
        finally:
            code = stop(process)
        requests = server.requests()
    assert code == 0, deployment.log()
    # the key reached the wire, in the query, on every attempt
    assert len(requests) == 2
    for request in requests:
        assert parse_qs(urlsplit(request.path).query)["code"] == [api_key]
    [outcome] = [r.json() for r in results]
    assert (outcome["outcome"], outcome["error_kind"]) == ("dead_lettered", "network")
    dead = collect_until(kafka_bootstrap, deployment.dead_letter, lambda rs: len(rs) >= 1, 30)
    retried = collect_until(
        kafka_bootstrap, f"{deployment.retry_prefix}.1s", lambda rs: len(rs) >= 1, 30
    )
    log = deployment.log_path.read_bytes()
    assert b" DEBUG " in log
    assert b'dispatcher_delivery_attempts_total{hook="upload",result="network"} 2.0' in metrics
    places = {f"{r.topic}@{r.offset}": _blob(r) for r in [*results, *dead, *retried]}
    places |= {"log": log, "/metrics": metrics}
    found = [
        f"{where}: {form}"
        for where, blob in places.items()
        for form in secret_forms("api key", api_key).values()
        if form.encode() in blob
    ]
    assert found == []
