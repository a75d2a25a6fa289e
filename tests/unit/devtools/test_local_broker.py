"""The local-broker wrapper and the bounded waiter, without a broker."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka_support import wait_for

from dispatcher.devtools.broker import SCRIPT, LocalKafka
from dispatcher.errors import KafkaUnavailable


def test_the_script_is_found_relative_to_the_checkout() -> None:
    assert SCRIPT.is_file()
    assert SCRIPT.parent.name == "kafka-dev"


def test_a_missing_script_is_reported_as_kafka_unavailable(tmp_path: Path) -> None:
    kafka = LocalKafka(script=tmp_path / "absent.sh")

    with pytest.raises(KafkaUnavailable, match=r"absent\.sh is missing"):
        kafka.start(tmp_path)


def test_restart_before_start_is_refused() -> None:
    with pytest.raises(RuntimeError, match="before start"):
        LocalKafka().restart()


def test_stop_and_running_before_start_need_no_broker() -> None:
    kafka = LocalKafka()

    kafka.stop()
    assert not kafka.running()
    assert kafka.bootstrap is None


def test_wait_for_returns_the_first_truthy_value() -> None:
    calls = iter([0, None, "", "ready", "later"])

    assert wait_for(lambda: next(calls), timeout=5, interval=0) == "ready"


def test_wait_for_names_what_it_waited_for_when_time_is_up() -> None:
    with pytest.raises(TimeoutError, match="waiting for the moon"):
        wait_for(lambda: False, timeout=0.05, interval=0.01, message="the moon")
