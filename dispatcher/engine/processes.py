"""`dispatcher run --workers N`: N worker processes in one consumer group, stopped together."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.context import SpawnProcess
from types import FrameType

from dispatcher.signals import STACKS_SIGNAL, STOP_SIGNALS

log = logging.getLogger(__name__)


# The exit codes of the command line (cli/main.py), which a worker process reports itself.
EXIT_INVALID, EXIT_KAFKA = 1, 3


def _worker_main(config: str | None, index: int, log_level: str | None) -> None:
    from dispatcher.errors import ConfigError, KafkaUnavailable

    try:
        _run_worker(config, index, log_level)
    except ConfigError as exc:
        log.error("error: %s", exc)  # one line, as `dispatcher run` prints it
        sys.exit(EXIT_INVALID)
    except KafkaUnavailable as exc:
        log.error("error: %s", exc)
        sys.exit(EXIT_KAFKA)


def _run_worker(config: str | None, index: int, log_level: str | None) -> None:
    """`log_level`: --log-level, which wins over the configuration's `log_level`; None without."""
    from dataclasses import replace

    from dispatcher import logs
    from dispatcher.config.settings import load_settings
    from dispatcher.engine import collector
    from dispatcher.engine.worker import Worker
    from dispatcher.hooks.loader import configured_hooks
    from dispatcher.signals import dump_stacks_on_request, stop_quietly_until_started

    stop_quietly_until_started()
    dump_stacks_on_request()
    prefix = f"worker-{index} "
    logs.configure(log_level or "INFO", prefix=prefix)
    settings = load_settings(config)
    if log_level is None:
        logs.configure(settings.log_level, prefix=prefix)
    settings = replace(
        settings, http_port=worker_port(settings.http_port, settings.admin.port, index)
    )
    hooks = configured_hooks(settings)
    collector.tune()
    Worker(settings, hooks, index=index).run()


def worker_port(http_port: int, admin_port: int, index: int) -> int:
    """The port worker `index` serves /metrics, /healthz and /readyz on: http_port for worker 0,
    the ports above it for the others, skipping admin.port, so `dispatcher admin` on the same
    host keeps its port (the defaults, 9400 and 9401, are neighbours). 0 stays "any free port".
    The Helm chart's container ports follow the same rule (`dugaa-dispatcher.workerPorts`)."""
    if not http_port or not index:
        return http_port
    port = http_port + index
    return port + 1 if http_port < admin_port <= port else port


def run_processes(count: int, config: str | None, log_level: str | None) -> int:
    """Run `count` workers; SIGTERM/SIGINT are passed on and each drains before exiting.
    SIGUSR1 is passed on too: each worker writes its threads' stacks to stderr."""
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker_main, args=(config, i, log_level), name=f"worker-{i}")
        for i in range(count)
    ]
    started: list[SpawnProcess] = []
    stops: list[int] = []  # the stop signals received

    def send(process: SpawnProcess, signum: int) -> None:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signum)

    def forward(signum: int, _frame: FrameType | None) -> None:
        if signum != STACKS_SIGNAL:
            stops.append(signum)
        for process in started:
            send(process, signum)

    # Passed on from before the first start: a stop while they start reaches each one started
    # (one whose start it interrupted, too), and no more are started.
    for sig in (*STOP_SIGNALS, STACKS_SIGNAL):
        signal.signal(sig, forward)  # on STACKS_SIGNAL each worker writes its threads' stacks
    for process in processes:
        if stops:
            break
        process.start()
        started.append(process)
        if stops:
            send(process, stops[0])
    cut_short = _join(started, stops, send)
    codes = [p.exitcode for p in started]
    log.info("workers exited with %s", codes)
    # One that the stop signal itself ended had not installed its handlers (they drain): it
    # was still starting, and had consumed nothing.
    failed = [code for code in codes if code and -code not in stops]
    if failed:
        return max((code for code in failed if code > 0), default=1)
    return 1 if cut_short else 0


def _join(
    started: list[SpawnProcess], stops: list[int], send: Callable[[SpawnProcess, int], None]
) -> bool:
    """Wait for every worker. One that ends by itself, with no stop asked for (it failed,
    was killed, or was stopped alone: a SIGTERM sent to its process only drains it and ends
    it with 0), stops the others, which drain as on SIGTERM: the run then ends non-zero and
    is started again whole by what supervises it, where the others running on would leave it
    a worker short for good (Kubernetes' probes watch worker 0 only). Returns whether one
    did."""
    running = list(started)
    cut_short = False
    while running:
        wait([process.sentinel for process in running])
        for process in [p for p in running if p.exitcode is not None]:
            running.remove(process)
            if not stops and running:
                log.error(
                    "%s exited with %s: stopping the other workers", process.name, process.exitcode
                )
                cut_short = True
                stops.append(signal.SIGTERM)
                for other in running:
                    send(other, signal.SIGTERM)
    for process in started:
        process.join()
    return cut_short
