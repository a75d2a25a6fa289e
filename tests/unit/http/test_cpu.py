"""The CPU gauge: saturated when the process used most of a core since its last reading."""

from __future__ import annotations

from dispatcher.http.cpu import PERIOD, SATURATED, CpuGauge


class Clocks:
    """A wall clock and a CPU clock that the test moves."""

    def __init__(self) -> None:
        self.wall = 100.0
        self.cpu = 5.0
        self.cpu_reads = 0

    def read_cpu(self) -> float:
        self.cpu_reads += 1
        return self.cpu

    def gauge(self) -> CpuGauge:
        return CpuGauge(clock=lambda: self.wall, cpu_clock=self.read_cpu)

    def spend(self, seconds: float, share: float) -> None:
        self.wall += seconds
        self.cpu += seconds * share


def test_a_process_using_most_of_a_core_is_saturated_and_one_with_cpu_to_spare_is_not() -> None:
    clocks = Clocks()
    gauge = clocks.gauge()
    clocks.spend(PERIOD, SATURATED + 0.05)
    assert gauge.saturated()
    clocks.spend(PERIOD, SATURATED - 0.05)
    assert not gauge.saturated()


def test_it_reads_the_cpu_clock_once_a_period_and_keeps_its_answer_between() -> None:
    clocks = Clocks()
    gauge = clocks.gauge()
    clocks.spend(PERIOD, 1.0)
    assert gauge.saturated()
    reads = clocks.cpu_reads
    clocks.spend(PERIOD / 2, 0.0)  # idle, but within the period: the last reading stands
    assert gauge.saturated()
    assert clocks.cpu_reads == reads
    clocks.spend(PERIOD / 2, 0.0)
    assert not gauge.saturated()  # a period since the last reading, half of it idle: 0.5
    assert clocks.cpu_reads == reads + 1


def test_the_first_reading_after_an_idle_spell_covers_the_spell() -> None:
    clocks = Clocks()
    gauge = clocks.gauge()
    clocks.spend(PERIOD, 1.0)
    assert gauge.saturated()
    clocks.spend(60.0, 0.0)
    clocks.spend(PERIOD, 1.0)
    assert not gauge.saturated()
    assert not CpuGauge().saturated()  # a new gauge has no reading yet
