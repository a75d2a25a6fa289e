"""Traces end to end (contract section 10): a real broker, a real worker, a loopback webhook
receiver and a loopback OTLP/HTTP collector whose export requests are decoded with
opentelemetry-proto.

One event carries a producer's `traceparent`, one carries none. Three hooks take both: one
answers 200 (its URL and a header hold secrets, and it configures a `traceparent` header of its
own), one 422 (dead-lettered), one 503 once (handed to a retry tier, then delivered).
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import yaml
from admin_support import ADMIN, TOKEN_ENV, VIEWER, AdminDeployment
from dispatch_support import Deployment, cloud_event, collect_until, free_port, hook
from kafka_support import Outgoing, wait_for
from rich.console import Console
from test_admin_service import answers

from dispatcher.cli.commands import replay_command
from dispatcher.devtools.otlp import (
    TRACES,
    export_bodies,
    exported_spans,
    exporting_to,
    otlp_receiver,
)
from dispatcher.devtools.receiver import Behaviour, Receiver
from dispatcher.kafka.avro import content_type, encode_event
from dispatcher.model.event import Event
from dispatcher.ops.replay.run import ReplayOptions
from dispatcher.ops.replay.selection import Selection

PRODUCER_TRACE = uuid.uuid4().hex
PRODUCER_SPAN = uuid.uuid4().hex[:16]
TRACEPARENT = f"00-{PRODUCER_TRACE}-{PRODUCER_SPAN}-01"
TRACESTATE = "dugaa=p1"
HOOKS = ("traced-ok", "traced-reject", "traced-flaky")
HEX32 = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    webhooks = Receiver(
        {
            "/reject": Behaviour(status=422, body=b'{"error":"no"}'),
            "/flaky": Behaviour(fail_first=1, fail_status=503),
        }
    )
    with webhooks, otlp_receiver() as collector:
        yield webhooks, collector


def test_a_traced_worker_continues_the_producers_trace_into_every_request(
    kafka_bootstrap: str,
    tmp_path: Path,
    receivers: tuple[Receiver, Receiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    webhooks, collector = receivers
    header_secret, query_secret = f"hs-{uuid.uuid4().hex}", f"qs-{uuid.uuid4().hex}"
    monkeypatch.setenv("TRACE_HEADER_SECRET", header_secret)
    monkeypatch.setenv("TRACE_QUERY_SECRET", query_secret)
    for name, value in exporting_to(collector).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "dispatcher-under-test")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    deployment = Deployment(
        kafka_bootstrap,
        tmp_path,
        [
            hook(
                "traced-ok",
                f"{webhooks.url}/ok?ref={{id}}&token=${{env:TRACE_QUERY_SECRET}}",
                ["order.traced"],
                headers={
                    "X-Api-Secret": "${env:TRACE_HEADER_SECRET}",
                    "traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01",
                },
            ),
            hook("traced-reject", f"{webhooks.url}/reject", ["order.traced"]),
            hook("traced-flaky", f"{webhooks.url}/flaky", ["order.traced"]),
        ],
        retry=("1s",),
        extra={"local_retries": 0},
    )
    parented = {**cloud_event("order.traced", {"n": 1}), "traceparent": TRACEPARENT}
    parented["tracestate"] = TRACESTATE
    orphan = cloud_event("order.traced", {"n": 2})
    with deployment.worker():
        deployment.produce_events([parented, orphan])
        results = collect_until(
            kafka_bootstrap, deployment.results, lambda r: len(r) >= 6, timeout=60
        )
        letters = collect_until(
            kafka_bootstrap, deployment.dead_letter, lambda r: len(r) >= 2, timeout=30
        )
    # the worker has stopped: its provider was shut down, so every span has been exported
    spans = exported_spans(collector)
    pairs = {
        (s.attributes["dispatcher.event.id"], s.attributes["dispatcher.hook.id"], s.span_id): s
        for s in spans
        if s.name.startswith("deliver ")
    }
    attempts = [s for s in spans if s.kind == "client"]

    # the producer's trace: every pair of the parented event is in it, a direct child of the
    # producer's span (the flaky hook's second pass is a child of its first, the hand-off)
    mine = [s for (event, _, _), s in pairs.items() if event == parented["id"]]
    assert len(mine) == 4  # ok, reject, flaky's first pass, flaky's pass from the tier
    assert {s.trace_id for s in mine} == {PRODUCER_TRACE}
    first = {
        s.attributes["dispatcher.hook.id"]: s
        for s in mine
        if "dispatcher.retry.tier" not in s.attributes
    }
    assert {s.parent_span_id for s in first.values()} == {PRODUCER_SPAN}
    assert all(s.trace_state == TRACESTATE and s.kind == "consumer" for s in mine)
    ok = first["traced-ok"]
    assert ok.name == "deliver traced-ok"
    assert ok.attributes == {
        "dispatcher.hook.id": "traced-ok",
        "dispatcher.event.id": parented["id"],
        "dispatcher.event.type": "order.traced",
        "dispatcher.outcome": "delivered",
    }
    rejected = first["traced-reject"]
    assert rejected.attributes["dispatcher.outcome"] == "dead_lettered"
    assert rejected.attributes["dispatcher.error.kind"] == "http_status"
    handed = first["traced-flaky"]
    assert handed.attributes["dispatcher.outcome"] == "retry_tier"
    assert [name for name, _ in handed.events] == ["dispatcher.retry.handoff"]
    (again,) = [s for s in mine if "dispatcher.retry.tier" in s.attributes]
    assert again.parent_span_id == handed.span_id
    assert again.attributes["dispatcher.outcome"] == "delivered"

    # the orphan event: each of its pairs starts a trace of its own
    theirs = [s for (event, _, _), s in pairs.items() if event == orphan["id"]]
    assert len(theirs) == 4
    assert PRODUCER_TRACE not in {s.trace_id for s in theirs}
    assert all(not s.parent_span_id for s in theirs if "dispatcher.retry.tier" not in s.attributes)

    # one CLIENT span per HTTP attempt, a child of its pair's span, with HTTP semantic
    # conventions; the request it made carried a traceparent naming it
    by_span = {s.span_id: s for s in pairs.values()}
    assert len(attempts) == len(webhooks.received()) == 8
    sent = {r.headers["traceparent"][3:52]: r for r in webhooks.received()}
    assert {r.headers["traceparent"][:3] for r in webhooks.received()} == {"00-"}
    assert len(sent) == 8  # each its own (never the hook's configured one)
    for span in attempts:
        pair = by_span[span.parent_span_id]
        assert span.trace_id == pair.trace_id
        assert span.name == "POST"
        assert span.attributes["http.request.method"] == "POST"
        assert span.attributes["server.address"] == "127.0.0.1"
        assert span.attributes["server.port"] == webhooks.port
        request = sent[span.ids]  # the receiver got this attempt's traceparent
        assert request.headers.get("tracestate") == (pair.trace_state or None)
        status = span.attributes["http.response.status_code"]
        path = request.path.split("?")[0]
        assert status in {"/ok": {200}, "/reject": {422}, "/flaky": {503, 200}}[path]
        if status >= 400:
            assert span.attributes["error.type"] == str(status)
    assert {a.attributes["http.response.status_code"] for a in attempts} == {200, 422, 503}

    # outcome records and dead letters carry the trace id of their pair
    for record in results:
        result = record.json()
        assert HEX32.match(result["trace_id"])
        traced = [
            s
            for (event, hook_id, _), s in pairs.items()
            if event == result["event_id"] and hook_id == result["hook_id"]
        ]
        assert result["trace_id"] in {s.trace_id for s in traced}
    for letter in letters:
        headers = dict(letter.headers)
        assert headers["dispatcher.hook.id"] == b"traced-reject"
        trace_id = headers["dispatcher.trace.id"].decode()
        assert HEX32.match(trace_id)
        assert trace_id in {s.trace_id for s in pairs.values()}
    parented_letter = next(r for r in letters if json.loads(r.value)["id"] == parented["id"])
    assert dict(parented_letter.headers)["dispatcher.trace.id"].decode() == PRODUCER_TRACE

    # nothing exported holds a secret, a URL query value, or a body
    exported = export_bodies(collector)
    for secret in (header_secret, query_secret, "token=", "ref=", "/reject"):
        assert secret.encode() not in exported
    assert all(r.body and r.body not in exported for r in webhooks.received())
    assert {s.resource["service.name"] for s in spans} == {"dispatcher-under-test"}


def test_malformed_or_avro_trace_context_from_producers_never_stops_a_delivery(
    kafka_bootstrap: str,
    tmp_path: Path,
    receivers: tuple[Receiver, Receiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A binary-mode event whose `ce_traceparent` is not UTF-8, a structured one whose plain
    `traceparent` is garbage: both delivered, each in a new trace. An event of the CloudEvents
    Avro format carrying the Distributed Tracing extension: its producer's trace continued."""
    webhooks, collector = receivers
    for name, value in exporting_to(collector).items():
        monkeypatch.setenv(name, value)
    deployment = Deployment(
        kafka_bootstrap, tmp_path, [hook("any", f"{webhooks.url}/ok", ["order.traced"])]
    )
    attributes = cloud_event("order.traced", {})
    binary = Outgoing(
        b"{}",
        headers=(
            *((f"ce_{k}", attributes[k]) for k in ("specversion", "id", "type", "source")),
            ("content-type", b"application/json"),
            ("ce_traceparent", b"00-\xff\xfe"),
        ),
    )
    garbage = cloud_event("order.traced", {})
    structured = Outgoing(
        json.dumps(garbage),
        headers=(("content-type", b"application/cloudevents+json"), ("traceparent", b"00-\xff")),
    )
    avro = Event(id=f"avro-{uuid.uuid4().hex}", type="order.traced", source="s")
    avro = replace(avro, traceparent=TRACEPARENT, tracestate=TRACESTATE)
    encoded = Outgoing(
        encode_event(avro, envelope_format="cloudevents"),
        headers=(("content-type", content_type("cloudevents").encode()),),
    )
    with deployment.worker():
        deployment.produce_raw([binary, structured, encoded])
        results = collect_until(
            kafka_bootstrap, deployment.results, lambda r: len(r) >= 3, timeout=60
        )
    assert deployment.written(deployment.dead_letter) == 0
    assert {r.json()["outcome"] for r in results} == {"delivered"}
    spans = {
        s.attributes["dispatcher.event.id"]: s
        for s in exported_spans(collector)
        if s.kind == "consumer"
    }
    assert not spans[attributes["id"]].parent_span_id
    assert not spans[garbage["id"]].parent_span_id
    continued = spans[avro.id]
    assert (continued.trace_id, continued.parent_span_id) == (PRODUCER_TRACE, PRODUCER_SPAN)
    assert continued.trace_state == TRACESTATE


def test_a_worker_without_an_endpoint_exports_nothing(
    kafka_bootstrap: str,
    tmp_path: Path,
    receivers: tuple[Receiver, Receiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    webhooks, _ = receivers
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    deployment = Deployment(
        kafka_bootstrap, tmp_path, [hook("untraced", f"{webhooks.url}/reject", ["order.traced"])]
    )
    event = {**cloud_event("order.traced", {"n": 3}), "traceparent": TRACEPARENT}
    with deployment.worker():
        deployment.produce_events([event])
        (result,) = collect_until(kafka_bootstrap, deployment.results, lambda r: len(r) >= 1, 60)
        (letter,) = collect_until(kafka_bootstrap, deployment.dead_letter, lambda r: r, 30)
    assert "trace_id" not in result.json()
    assert "dispatcher.trace.id" not in dict(letter.headers)
    # the event's own traceparent goes nowhere: the dispatcher adds none of its own
    wait_for(lambda: webhooks.received(), 10, message="the request")
    assert "traceparent" not in webhooks.received()[0].headers


def test_a_worker_stop_waits_for_a_collector_that_never_answers_only_to_its_stop_deadline(
    kafka_bootstrap: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    answer = threading.Event()  # the collector takes each export request and holds it open
    collector = Receiver({TRACES: Behaviour(body=b"", release=answer)})
    with Receiver() as webhooks, collector:
        for name, value in exporting_to(collector).items():
            monkeypatch.setenv(name, value)
        # the SDK alone would wait 30 s for its export thread, the export itself 120 s
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "120")
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("traced-held", f"{webhooks.url}/ok", ["order.traced"])],
            extra={"drain_timeout": "1s"},
        )
        worker, thread, errors = deployment.started()
        try:
            deployment.produce_events([cloud_event("order.traced", {"n": 4})])
            collect_until(kafka_bootstrap, deployment.results, lambda r: len(r) >= 1, 60)
        finally:
            with caplog.at_level(logging.INFO, logger="dispatcher.tracing"):
                worker.request_stop()
                # a stop ends within drain_timeout + 11 s: waited for 10 s more than that,
                # still short of the SDK's own 30 s
                thread.join(1 + 11 + 10)
                stopped = not thread.is_alive()
            answer.set()  # lets the export left behind end
        asked = len(collector.received(TRACES))

    assert stopped, "the worker's stop waited for the trace collector"
    assert not errors, errors
    assert asked >= 1  # the collector was reached, and did not answer
    said = [r for r in caplog.records if r.name == "dispatcher.tracing"]
    assert len(said) == 1
    assert re.fullmatch(
        r"tracing: [1-9]\d* spans not exported by the stop deadline \(the trace collector did"
        r" not answer in time\): dropped",
        said[0].getMessage(),
    )
    assert [r for r in caplog.records if r.exc_info] == []  # a line, never a traceback


def test_a_traced_replay_continues_the_events_trace_linked_to_its_run(
    kafka_bootstrap: str,
    tmp_path: Path,
    receivers: tuple[Receiver, Receiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    webhooks, collector = receivers
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    deployment = Deployment(
        kafka_bootstrap, tmp_path, [hook("tax", f"{webhooks.url}/reject", ["order.traced"])]
    )
    event = {**cloud_event("order.traced", {"n": 4}), "traceparent": TRACEPARENT}
    with deployment.worker():  # untraced: the letter has no trace id of its own
        deployment.produce_events([event])
        collect_until(kafka_bootstrap, deployment.dead_letter, lambda r: r, 60)
    webhooks.routes["/reject"] = Behaviour()  # the third party is fixed
    for name, value in exporting_to(collector).items():
        monkeypatch.setenv(name, value)
    settings = deployment.settings
    options = ReplayOptions(Selection(hook="tax"))
    assert replay_command(settings, options, Console(file=io.StringIO())) == 0

    spans = exported_spans(collector)  # the command shut its provider down: all exported
    (run,) = [s for s in spans if s.name == "dispatcher replay"]
    (pair,) = [s for s in spans if s.name == "deliver tax"]
    (attempt,) = [s for s in spans if s.kind == "client"]
    assert run.attributes == {
        "dispatcher.replay.selected": 1,
        "dispatcher.replay.delivered": 1,
        "dispatcher.replay.failed": 0,
    }
    assert (pair.trace_id, pair.parent_span_id) == (PRODUCER_TRACE, PRODUCER_SPAN)
    assert pair.links == ((run.trace_id, run.span_id),)
    assert pair.attributes["dispatcher.outcome"] == "delivered"
    assert attempt.parent_span_id == pair.span_id
    assert webhooks.received()[-1].headers["traceparent"][3:52] == attempt.ids
    results = collect_until(kafka_bootstrap, deployment.results, lambda r: len(r) >= 2, 30)
    assert results[-1].json()["trace_id"] == PRODUCER_TRACE


def test_the_admin_service_traces_its_requests_without_query_values_or_tokens(
    kafka_bootstrap: str, tmp_path: Path, receivers: tuple[Receiver, Receiver]
) -> None:
    _, collector = receivers
    deployment = AdminDeployment(
        kafka_bootstrap, tmp_path, [hook("a", "http://127.0.0.1:9/a", ["x"])]
    )
    config = yaml.safe_load(deployment.config_path.read_text())
    port = config["admin"]["port"] = free_port()
    deployment.config_path.write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        **TOKEN_ENV,
        **{k: v for k, v in exporting_to(collector).items() if not k.startswith("OTEL_")},
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{collector.url}/v1/traces",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        # an operator capturing every header: credentials are redacted all the same
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": ".*",
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE": ".*",
    }
    log = tmp_path / "admin.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "dispatcher", "admin", "--config", str(deployment.config_path)],
            env=env,
            stdout=sink,
            stderr=sink,
        )
    base = f"http://127.0.0.1:{port}"
    looked_up = f"ev-{uuid.uuid4().hex}"
    try:
        wait_for(lambda: answers(port), 60, message="dispatcher admin")
        answer = httpx.get(
            f"{base}/api/events/{looked_up}", params={"q": "v-secret"}, headers=ADMIN
        )
        assert answer.status_code == 404
        cookie = {"Cookie": "session=c-secret-cookie"}
        assert httpx.get(f"{base}/api/hooks", headers={**VIEWER, **cookie}).status_code == 200
        wait_for(
            lambda: len([s for s in exported_spans(collector) if s.kind == "server"]) >= 2,
            30,
            message="both requests' spans",
        )
    finally:
        process.terminate()
        code = process.wait(timeout=30)
    assert code == 0, log.read_text()
    spans = [s for s in exported_spans(collector) if s.kind == "server"]
    by_route = {s.attributes.get("http.route"): s for s in spans}
    assert set(by_route) == {"/api/events/{event_id}", "/api/hooks"}  # no /healthz
    looked = by_route["/api/events/{event_id}"]
    assert looked.name == "GET /api/events/{event_id}"
    assert looked.attributes["http.status_code"] == 404
    assert looked.resource["dispatcher.component"] == "admin"
    assert looked.attributes["http.request.header.authorization"] == ["[REDACTED]"]
    assert by_route["/api/hooks"].attributes["http.request.header.cookie"] == ["[REDACTED]"]
    exported = export_bodies(collector)
    secrets = ("v-secret", ADMIN["Authorization"], VIEWER["Authorization"].split()[1], "c-secret")
    for secret in secrets:
        assert secret.encode() not in exported
