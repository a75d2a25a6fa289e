"""What the liveness probe goes by, on a real worker with a tiny `liveness_timeout` (1 s): its
/healthz answers 503 naming its delivery loop while that loop is blocked, 200 again once it
turns; and 200 all along through a broker outage (only /readyz tells that: a restart would not
help) and through a drain held open by a delivery in flight."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from dispatch_support import Deployment, cloud_event, hook
from kafka_support import wait_for

from dispatcher.devtools.broker import LocalKafka
from dispatcher.devtools.receiver import Behaviour, Receiver
from dispatcher.engine.worker import Worker

LIVENESS = {"liveness_timeout": "1s"}


def answer(base: str, path: str) -> tuple[int, dict[str, Any]]:
    reply = httpx.get(f"{base}{path}", timeout=10, trust_env=False)
    return reply.status_code, reply.json()


def status_base(worker: Worker) -> str:
    wait_for(lambda: worker.status is not None, 30, message="the status server")
    assert worker.status is not None
    return f"http://127.0.0.1:{worker.status.port}"


def test_healthz_is_503_naming_a_blocked_delivery_loop_and_200_once_it_turns(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    deployment = Deployment(
        kafka_bootstrap, tmp_path, [hook("ok", "http://127.0.0.1:9/ok", ["order.paid"])],
        retry=(), extra=LIVENESS,
    )  # fmt: skip
    with deployment.worker() as worker:
        base = status_base(worker)
        wait_for(lambda: answer(base, "/readyz")[0] == 200, 60, message="ready once assigned")
        assert answer(base, "/healthz") == (200, {"status": "alive"})
        loop, release = worker._loop, threading.Event()
        assert loop is not None
        # stands for a deadlock or a C call that never returns, on the worker's own loop
        loop.call_soon_threadsafe(release.wait, 60)
        try:
            status, body = wait_for(
                lambda: (found := answer(base, "/healthz"))[0] == 503 and found,
                30,
                message="/healthz 503 while the delivery loop is blocked",
            )
            assert status == 503
            assert body["status"] == "stalled"
            assert list(body["stalled"]) == ["delivery loop"]
        finally:
            release.set()
        wait_for(lambda: answer(base, "/healthz")[0] == 200, 30, message="alive once it turns")


@pytest.mark.timeout(300)
def test_healthz_stays_200_through_a_broker_outage_and_a_drain(
    kafka_bootstrap: str, local_kafka: LocalKafka, tmp_path: Path
) -> None:
    held = threading.Event()
    with Receiver({"/slow": Behaviour(release=held)}) as receiver:
        deployment = Deployment(
            kafka_bootstrap, tmp_path, [hook("slow", f"{receiver.url}/slow", ["order.paid"])],
            retry=(),
            extra={**LIVENESS, "kafka": {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}},
        )  # fmt: skip
        worker, thread, errors = deployment.started()
        try:
            base = status_base(worker)
            wait_for(lambda: answer(base, "/readyz")[0] == 200, 60, message="ready")
            healthz: list[int] = []

            def unready() -> bool:
                healthz.append(answer(base, "/healthz")[0])
                return answer(base, "/readyz")[0] == 503

            local_kafka.stop()
            try:
                # through the outage, past the session timeout: many times the 1 s bound
                wait_for(unready, 90, message="unready, Kafka gone")
            finally:
                assert local_kafka.start() == kafka_bootstrap
            wait_for(lambda: answer(base, "/readyz")[0] == 200, 120, message="ready again")
            assert len(healthz) > 1
            assert set(healthz) == {200}, healthz

            deployment.produce_events([cloud_event("order.paid", {"n": 1})])
            wait_for(lambda: receiver.received("/slow"), 60, message="a delivery in flight")
            worker.request_stop()  # its drain waits for the delivery held open (20 s at most)
            healthz.clear()
            stopped_at = time.monotonic()
            # the drain outlasts the bound three times over, the delivery loop busy draining
            # and the consumer thread out of its turns, alive all along
            while time.monotonic() - stopped_at < 3.0:
                healthz.append(answer(base, "/healthz")[0])
            assert thread.is_alive(), "the drain ended early: the delivery was not held"
            assert set(healthz) == {200}, healthz
        finally:
            held.set()
            worker.request_stop()
            thread.join(timeout=60)
        assert not thread.is_alive(), "worker did not stop"
        assert not errors, errors
