"""Shared fixtures: one real Kafka broker per session, uuid-named topics and groups.

Where the broker comes from, first match wins:
1. `KAFKA_BOOTSTRAP_SERVERS` names one that is already running;
2. a Docker daemon answers: testcontainers' Kafka module (DUGAA_TEST_BROKER=local skips it);
3. the local broker of deploy/kafka-dev/kafka.sh (Java 17+), in a temporary directory.
The broker starts only when a test asks for it, so unit-test runs need neither Java nor Docker.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from kafka_support import create_topic
from registry_support import FakeRegistry, running_registry

from dispatcher.devtools.broker import LocalKafka

_INTEGRATION = Path(__file__).parent / "integration"

# No property test has a time limit: on two shared cores a case may take 500 ms, and speed is
# measured by `make bench`, never asserted.
settings.register_profile("dugaa", deadline=None)
settings.load_profile("dugaa")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _INTEGRATION in item.path.parents:
            item.add_marker(pytest.mark.integration)
        if "page" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
    # Browser tests last: pytest-playwright's sync API keeps an event loop running in the main
    # thread until the session ends, and every `asyncio.run` after it would fail. (`make test`
    # runs them in a session of their own: pytest-xdist keeps a file's tests together.)
    items.sort(key=lambda item: "page" in getattr(item, "fixturenames", ()))


@dataclass(frozen=True, slots=True)
class _Broker:
    bootstrap: str
    local: LocalKafka | None


def _docker_answers() -> bool:
    """Whether a Docker daemon answers within a second; quiet and fast when there is none."""
    if os.environ.get("DUGAA_TEST_BROKER", "auto") == "local":
        return False
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker  # type: ignore[import-untyped]

        return bool(docker.from_env(timeout=1).ping())
    except Exception:
        return False


@pytest.fixture(scope="session")
def _broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Broker]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield _Broker(external, None)
    elif _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as container:
            yield _Broker(container.get_bootstrap_server(), None)
    else:
        local = LocalKafka()
        bootstrap = local.start(tmp_path_factory.mktemp("kafka"))
        try:
            yield _Broker(bootstrap, local)
        finally:
            local.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(_broker: _Broker) -> str:
    """The `bootstrap.servers` of the session's broker."""
    return _broker.bootstrap


@pytest.fixture(scope="session")
def kafka_broker(_broker: _Broker) -> LocalKafka | None:
    """The local broker, so a test can restart it; None when the broker is external."""
    return _broker.local


@pytest.fixture
def local_kafka(kafka_broker: LocalKafka | None) -> LocalKafka:
    """The local broker; skips the test when the session uses an external one."""
    if kafka_broker is None:
        pytest.skip("needs the local broker (the session's broker is external)")
    return kafka_broker


@pytest.fixture
def topic_factory(kafka_bootstrap: str) -> Callable[..., str]:
    """Creates a uuid-named topic: `topic_factory(partitions=1, prefix="t", config=None)`."""

    def make(
        partitions: int = 1, prefix: str = "t", config: Mapping[str, str] | None = None
    ) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        return create_topic(kafka_bootstrap, name, partitions, config=config)

    return make


@pytest.fixture
def group_id() -> str:
    """A uuid-named consumer group of its own."""
    return f"g-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def kafka_config(kafka_bootstrap: str) -> dict[str, Any]:
    """A minimal librdkafka configuration for the session's broker."""
    return {"bootstrap.servers": kafka_bootstrap}


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    """A Confluent-compatible Schema Registry stand-in on loopback."""
    with running_registry() as server:
        yield server


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """A test that calls the CLI's `main` in the test process sets up logging as the CLI does:
    the root logger at INFO, with a handler on the stderr pytest captured for that test (closed
    once it ends). The next test gets the root logger's level back, without that handler, so
    what it logs and captures does not hang on which tests ran before it in the process."""
    root = logging.getLogger()
    level, before = root.level, set(root.handlers)
    yield
    root.setLevel(level)
    for handler in root.handlers[:]:
        if handler not in before and type(handler) is logging.StreamHandler:  # basicConfig's
            root.removeHandler(handler)


@pytest.fixture(autouse=True)
def _reap_dispatchers() -> Iterator[None]:
    """No `dispatcher run` subprocess outlives the test that started it."""
    from dispatch_support import LOGS, reap

    LOGS.clear()
    yield
    reap()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test's report ends with the logs of the workers it ran as subprocesses."""
    report = yield
    if report.when == "call" and report.failed:
        from dispatch_support import log_tails

        report.sections.extend((f"dispatcher log {name}", text) for name, text in log_tails())
    return report
