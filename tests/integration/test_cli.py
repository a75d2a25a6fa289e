"""The `dispatcher` command as users run it: a subprocess, its exit code and what it prints."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from dispatch_support import Deployment, cloud_event, collect_until, hook
from kafka_support import consume_all, create_topic

from dispatcher import __version__
from dispatcher.config.secrets import Secret
from dispatcher.devtools.receiver import Behaviour, Receiver
from dispatcher.model.body import Body
from dispatcher.model.encryption import EncryptionKey, EncryptionSpec
from dispatcher.security.encryption import ALGORITHMS, encrypt_body, generate_key

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "deploy" / "examples" / "hooks").glob("*.yaml"))
BROKEN = REPO / "tests" / "data" / "broken-hooks.yaml"
_REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def dispatcher(
    *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    """`python -m dispatcher ARGS`, with no DISPATCHER_* variables from the test's environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    return subprocess.run(
        [sys.executable, "-m", "dispatcher", *args],
        env={**clean, **(env or {})},
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound by nobody's listener: connecting to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


# How long the commands below wait for the unreachable cluster: users wait 15 s by default.
KAFKA_WAIT = "kafka_wait: 1s\n"


def test_produced_structured_and_binary_events_are_delivered_by_a_worker(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap, tmp_path, [hook("orders", f"{receiver.url}/orders", ["order.paid"])]
        )
        config = str(deployment.config_path)
        produced = []
        for mode, data in (([], {"n": 1}), (["--binary"], {"n": 2})):
            done = dispatcher(
                "produce", "--config", config, "--type", "order.paid", "--data", json.dumps(data),
                "--key", f"customer-{data['n']}", "--source", "/shop", *mode,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr.decode()
            produced.append(json.loads(done.stdout))
        assert [p["topic"] for p in produced] == [deployment.events] * 2
        structured, binary = consume_all(kafka_bootstrap, deployment.events, 2, timeout=30)
        assert structured.header("content-type") == b"application/cloudevents+json"
        assert structured.key == b"customer-1"
        assert structured.json()["id"] == produced[0]["id"]
        assert structured.json()["source"] == "/shop"
        assert structured.json()["data"] == {"n": 1}
        assert binary.header("ce_id") == produced[1]["id"].encode()
        assert binary.header("ce_type") == b"order.paid"
        assert binary.key == b"customer-2"
        assert binary.json() == {"n": 2}
        with deployment.worker():
            results = collect_until(
                kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 2, 60
            )
        assert {r.json()["event_id"] for r in results} == {p["id"] for p in produced}
        assert {r.json()["outcome"] for r in results} == {"delivered"}
        assert sorted(json.loads(r.body)["n"] for r in receiver.received("/orders")) == [1, 2]


def test_commands_that_need_kafka_exit_3_with_one_clear_line_when_it_is_unreachable(
    tmp_path: Path, closed_port: int
) -> None:
    config = tmp_path / "dispatcher.yaml"
    config.write_text(
        f"kafka:\n  bootstrap.servers: 127.0.0.1:{closed_port}\nhttp_port: 0\n{KAFKA_WAIT}"
    )
    commands = [
        ("run", "--config", str(config)),
        ("produce", "--config", str(config), "--type", "order.paid", "--data", "{}"),
        ("hooks", "list", "--config", str(config)),
    ]

    def timed(args: tuple[str, ...]) -> tuple[float, subprocess.CompletedProcess[bytes]]:
        started = time.monotonic()
        result = dispatcher(*args, timeout=40)
        return time.monotonic() - started, result

    with ThreadPoolExecutor(len(commands)) as pool:
        done = list(pool.map(timed, commands))
    for args, (seconds, result) in zip(commands, done, strict=True):
        stderr = result.stderr.decode()
        assert result.returncode == 3, (args, stderr)
        assert seconds < 25, args  # the reachability check (kafka_wait), plus start-up
        last = stderr.strip().splitlines()[-1]
        assert last.startswith(
            f"error: Kafka at 127.0.0.1:{closed_port} did not answer within 1s (kafka_wait): "
        ), args
        assert "Traceback" not in stderr
        assert raw_librdkafka_lines(stderr) == [], args


# A librdkafka fatal error, for real: under `enable.gapless.guarantee` an idempotent producer
# whose batch the broker refuses for good (a topic whose `max.message.bytes` no record fits)
# fails for good.
FAILS_FOR_GOOD = {"kafka": {"enable.idempotence": True, "enable.gapless.guarantee": True}}
NOTHING_FITS = {"max.message.bytes": "100"}


def test_hooks_pause_whose_producer_fails_for_good_exits_3_with_one_line(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The flush of the decision raised the fatal error out of the command: a traceback, and
    exit 1 (invalid input)."""
    erp = hook("erp", "https://erp.example.com/", ["order.*"])
    deployment = Deployment(kafka_bootstrap, tmp_path, [erp], extra=FAILS_FOR_GOOD)
    create_topic(
        kafka_bootstrap, deployment.health, config={"cleanup.policy": "compact", **NOTHING_FITS}
    )

    done = dispatcher("hooks", "pause", "erp", "--config", str(deployment.config_path))

    assert last_line(done, 3).startswith(
        "error: the health topic did not take the change: its producer failed for good:"
        f" ProduceRequest for {deployment.health} [0]"
    )


def test_a_replay_whose_producer_fails_for_good_stops_at_once_and_exits_3_saying_why(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The replay's acknowledgement loop let the fatal error end it unseen: every letter was
    still sent (outcomes that nobody would read), then it waited a minute for acknowledgements
    that could not come, and ended with `error: 10 replay outcomes were not acknowledged`."""
    with Receiver({"/erp": Behaviour(status=400)}) as receiver:
        erp = hook("erp", f"{receiver.url}/erp", ["order.*"], retry={"max_attempts": 1})
        deployment = Deployment(kafka_bootstrap, tmp_path, [erp])
        deployment.produce_events([cloud_event("order.paid", {"n": n}) for n in range(10)])
        with deployment.worker():
            consume_all(kafka_bootstrap, deployment.dead_letter, 10, timeout=60)
        receiver.routes["/erp"] = Behaviour(status=200)  # fixed: each replayed letter delivered
        deployment.results = create_topic(
            kafka_bootstrap, f"tiny-{uuid.uuid4().hex[:10]}", config=NOTHING_FITS
        )
        deployment.extra = FAILS_FOR_GOOD
        deployment.write()

        done = dispatcher(
            "replay", "--rate", "2", "--config", str(deployment.config_path), timeout=120
        )
        sent = len(receiver.received("/erp")) - 10

    assert last_line(done, 3).startswith(
        f"error: the Kafka client failed for good: ProduceRequest for {deployment.results} [0]"
    )
    (said,) = [line for line in done.stderr.decode().splitlines() if "fatal producer" in line]
    assert "fatal producer error, stopping (the replay: " in said
    assert sent < 10  # it stopped sending once its first outcome failed it (2 letters a second)


def test_produce_exits_3_when_its_producer_fails_for_good_and_1_when_kafka_refuses_the_event(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The flush raised the fatal error out of the command as a traceback (exit 1); and a flush
    alone returns 0 for an event Kafka refused: it was printed as published, exit 0."""
    deployment = Deployment(kafka_bootstrap, tmp_path, [], extra=FAILS_FOR_GOOD)
    config = str(deployment.config_path)
    tiny = create_topic(kafka_bootstrap, f"tiny-{uuid.uuid4().hex[:10]}", config=NOTHING_FITS)
    event = ("--type", "order.paid", "--data", "{}", "--config", config)

    failed = dispatcher("produce", "--topic", tiny, *event)
    refused = dispatcher("produce", "--topic", "not a topic!", *event)

    assert last_line(failed, 3).startswith(
        f"error: the Kafka client failed for good: ProduceRequest for {tiny} [0]"
    )
    assert (refused.returncode, refused.stdout) == (1, b""), refused.stderr.decode()
    assert refused.stderr.decode().strip().splitlines()[-1] == (
        "error: event not taken by Kafka (not a topic!): Broker: Invalid topic"
    )


def last_line(done: subprocess.CompletedProcess[bytes], code: int) -> str:
    """The last line a command that ended with exit `code` wrote to stderr (its `error: ...`),
    after checking that it wrote no traceback."""
    stderr = done.stderr.decode()
    assert done.returncode == code, stderr
    assert "Traceback" not in stderr
    return stderr.strip().splitlines()[-1]


def raw_librdkafka_lines(stderr: str) -> list[str]:
    """librdkafka's own lines written past our logging (`%3|1796...|FAIL|rdkafka#...`): they
    belong in the log's format as `dispatcher.librdkafka`, a line said again counted, not
    repeated, where unlogged the refused connection is said every 50-100 ms."""
    return [line for line in stderr.splitlines() if re.match(r"%\d\|", line)]


def test_run_with_workers_exits_3_with_one_line_per_worker_when_kafka_is_unreachable(
    tmp_path: Path, closed_port: int
) -> None:
    """As a single worker does: the worker says why in one line, and `run` exits 3. The first
    to fail stops the other, which ends quietly if it is still waiting (it consumed nothing),
    or says the same if it failed at the same moment."""
    config = tmp_path / "dispatcher.yaml"
    config.write_text(
        f"kafka:\n  bootstrap.servers: 127.0.0.1:{closed_port}\nhttp_port: 0\n{KAFKA_WAIT}"
    )
    started = time.monotonic()
    result = dispatcher("run", "--config", str(config), "--workers", "2", timeout=60)
    stderr = result.stderr.decode()
    assert result.returncode == 3, stderr
    assert time.monotonic() - started < 40
    assert "Traceback" not in stderr
    said = [line for line in stderr.splitlines() if "error: Kafka at" in line]
    workers = {line.split(" ERROR ")[1].split()[0] for line in said}
    assert len(said) == len(workers) >= 1, stderr
    assert workers <= {"worker-0", "worker-1"}
    assert raw_librdkafka_lines(stderr) == []


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_run_logs_at_the_configurations_log_level_unless_log_level_is_given(
    tmp_path: Path, closed_port: int, workers: str
) -> None:
    """`log_level` (the file's, or DISPATCHER_LOG_LEVEL) was read, and then never used: every
    command logged at INFO."""
    config = tmp_path / "dispatcher.yaml"
    config.write_text(
        f"kafka:\n  bootstrap.servers: 127.0.0.1:{closed_port}\nhttp_port: 0\n{KAFKA_WAIT}"
        "log_level: warning\n"
    )
    run = ("run", "--config", str(config), "--workers", workers)
    runs = {
        "file": dispatcher(*run, timeout=40),
        "variable": dispatcher(*run, env={"DISPATCHER_LOG_LEVEL": "INFO"}, timeout=40),
        "option": dispatcher(*run, "--log-level", "INFO", timeout=40),
    }
    for name, done in runs.items():
        assert done.returncode == 3, (name, done.stderr.decode())
        assert "did not answer within 1s (kafka_wait)" in done.stderr.decode(), name
    assert " INFO " not in runs["file"].stderr.decode()
    assert "waiting for Kafka at" in runs["variable"].stderr.decode()
    assert "waiting for Kafka at" in runs["option"].stderr.decode()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_worker_whose_http_port_another_process_holds_exits_1_naming_the_setting(
    kafka_bootstrap: str, tmp_path: Path, workers: int
) -> None:
    """It ended with a traceback of the failed bind (exit 1 by chance). Under `--workers N`
    worker i takes http_port + i: the port of worker 1 is the one held here."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        index = workers - 1
        deployment = Deployment(
            kafka_bootstrap, tmp_path, [hook("a", "http://127.0.0.1:9/a", ["x"])],
            extra={"http_port": port - index},
        )  # fmt: skip
        done = dispatcher("run", "--config", str(deployment.config_path), "--workers", str(workers))
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    setting = f"http_port, worker {index}'s" if index else "http_port"
    assert (
        f"error: cannot listen on 0.0.0.0:{port} ({setting}): Address already in use; another"
        " process listens there: stop it, or choose another port"
    ) in stderr
    assert "Traceback" not in stderr


@contextlib.contextmanager
def started_process(*args: str) -> Iterator[tuple[subprocess.Popen[bytes], queue.Queue[str]]]:
    """`python -m dispatcher ARGS` running, and a queue of the lines it writes to stderr; killed
    if still running at the end."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "dispatcher", *args],
        env=clean,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line.decode(errors="replace"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield process, lines
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        reader.join(10)
        assert process.stderr is not None
        process.stderr.close()


def wait_for_lines(lines: queue.Queue[str], needle: str, count: int, within: float) -> list[str]:
    """The lines read until `count` of them hold `needle` (the test fails after `within` s)."""
    seen: list[str] = []
    deadline = time.monotonic() + within
    while sum(needle in line for line in seen) < count:
        try:
            seen.append(lines.get(timeout=max(deadline - time.monotonic(), 0.01)))
        except queue.Empty:
            pytest.fail(f"no {count} lines with {needle!r} within {within}s:\n{''.join(seen)}")
    return seen


@pytest.mark.parametrize("workers", [1, 2])
def test_a_worker_stopped_while_waiting_for_kafka_exits_0_at_once(
    tmp_path: Path, closed_port: int, workers: int
) -> None:
    """SIGTERM while the unreachable cluster is waited for (15 s) ends the run with 0 at once:
    nothing was consumed."""
    config = tmp_path / "dispatcher.yaml"
    config.write_text(f"kafka:\n  bootstrap.servers: 127.0.0.1:{closed_port}\nhttp_port: 0\n")
    args = ("run", "--config", str(config), "--workers", str(workers))
    with started_process(*args) as (process, lines):
        wait_for_lines(lines, "waiting for Kafka at", workers, within=30)
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
        took = time.monotonic() - sent
    rest = "".join(iter_queue(lines))
    assert code == 0, rest
    assert took < 5, rest  # not the 15 s the reachability check takes to give up
    assert "Traceback" not in rest


def iter_queue(lines: queue.Queue[str]) -> list[str]:
    found = []
    while not lines.empty():
        found.append(lines.get_nowait())
    return found


@pytest.mark.parametrize(
    ("text", "line", "key", "message"),
    [
        ("group_id: g\nhttp_port: nine-four-hundred\n", 2, "http_port", "must be an integer"),
        ("group_id: g\nhook_file: hooks.yaml\n", 2, "hook_file", "unknown key"),
        ("kafka:\n  bootstrap.servers: 127.0.0.1:9\ndrain_timeout: soon\n", 3, "drain_timeout", ""),
        ("topics:\n  events: [e]\n  retry: [30s, 5 minutes]\n", 3, "topics.retry", ""),
        ("topics:\n  events: [e]\n  dead_letters: dlq\n", 3, "topics.dead_letters", "unknown key"),
        ("allow_private_networks: maybe\n", 1, "allow_private_networks", "must be true or"),
        ("kafka: [127.0.0.1:9092]\n", 1, "kafka", "must be a mapping"),
    ],
)
def test_a_malformed_configuration_exits_1_naming_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, message: str
) -> None:
    config = tmp_path / "dispatcher.yaml"
    config.write_text(text)
    done = dispatcher("run", "--config", str(config), timeout=30)
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert stderr.startswith(f"error: {config}:{line}: {key}: {message}"), stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("kafka", "said"),
    [
        ("no.such.property: 1", 'kafka: No such configuration property: "no.such.property"'),
        ("enable.gapless.guarantee: true", "requires `enable.idempotence`"),
    ],
)
def test_a_kafka_property_librdkafka_refuses_exits_1_in_one_line(
    tmp_path: Path, kafka: str, said: str
) -> None:
    config = tmp_path / "dispatcher.yaml"  # (refused before any connection is tried)
    config.write_text(f"kafka:\n  bootstrap.servers: 127.0.0.1:9\n  {kafka}\n")
    done = dispatcher("run", "--config", str(config), timeout=30)
    assert last_line(done, 1).startswith("error: kafka: ")
    assert said in done.stderr.decode()


def test_configuration_that_is_not_yaml_exits_1_naming_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "dispatcher.yaml"
    config.write_text("group_id: g\nkafka:\n  bootstrap.servers: [127.0.0.1:9092\nhttp_port: 1\n")
    done = dispatcher("run", "--config", str(config), timeout=30)
    assert done.returncode == 1
    assert re.match(rf"error: {re.escape(str(config))}:[34]: invalid YAML", done.stderr.decode())


def test_hooks_validate_accepts_every_example_and_lists_each_problem_of_a_broken_file() -> None:
    assert EXAMPLES
    secrets = {
        name: "example-secret" for f in EXAMPLES for name in _REFERENCE.findall(f.read_text())
    }
    with ThreadPoolExecutor(4) as pool:
        done = list(
            pool.map(lambda f: dispatcher("hooks", "validate", str(f), env=secrets), EXAMPLES)
        )
    for path, result in zip(EXAMPLES, done, strict=True):
        assert result.returncode == 0, result.stderr.decode()
        assert re.search(
            rf"{re.escape(str(path))}: \d+ hooks? valid$", result.stdout.decode().strip()
        )

    broken = dispatcher("hooks", "validate", str(BROKEN))
    assert broken.returncode == 1
    *problems, summary = broken.stderr.decode().strip().splitlines()
    assert summary == f"{BROKEN}: {len(problems)} problems"
    assert len(problems) >= 10
    for problem in problems:
        assert re.fullmatch(rf"{re.escape(str(BROKEN))}:\d+: hooks\[\d\]\.?\S*: .+", problem)
    assert f"{BROKEN}:7: hooks[0].mehtod: unknown key 'mehtod' (did you mean 'method'?)" in problems

    missing = dispatcher("hooks", "validate", str(BROKEN.with_name("no-such-hooks.yaml")))
    assert missing.returncode == 1
    assert "cannot read hooks file" in missing.stderr.decode()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_decrypt_recovers_what_the_dispatcher_encrypted(algorithm: str, tmp_path: Path) -> None:
    key, other = generate_key(algorithm), generate_key(algorithm)
    plaintext = json.dumps({"order": "o-1", "total": "10.00", "text": "habari ✓"}).encode()
    spec = EncryptionSpec(algorithm, (EncryptionKey("k-1", Secret(key)),))
    payload = tmp_path / "body"
    payload.write_bytes(encrypt_body(spec, Body(plaintext, "application/json")).content)

    # --key=KEY: a base64url key may begin with "-", which argparse would take for an option
    from_file = dispatcher("decrypt", "--algorithm", algorithm, f"--key={key}", str(payload))
    assert from_file.returncode == 0, from_file.stderr.decode()
    assert from_file.stdout == plaintext

    # a rotation: the old key first, the right one from the environment, the body on stdin
    rotated = dispatcher(
        "decrypt", "--algorithm", algorithm.lower(), f"--key={other}", "--key", "${env:DUGAA_KEY}",
        env={"DUGAA_KEY": key}, stdin=payload.read_bytes(),
    )  # fmt: skip
    assert rotated.returncode == 0, rotated.stderr.decode()
    assert rotated.stdout == plaintext

    wrong = dispatcher("decrypt", "--algorithm", algorithm, f"--key={other}", str(payload))
    assert wrong.returncode == 1
    assert wrong.stdout == b""
    assert wrong.stderr.decode().startswith("error: cannot decrypt: no given key decrypts")
    assert other not in wrong.stderr.decode()

    absent = dispatcher("decrypt", "--algorithm", algorithm, f"--key={key}", str(tmp_path / "none"))
    assert absent.returncode == 1
    assert (
        absent.stderr.decode()
        == f"error: {tmp_path / 'none'}: cannot read: No such file or directory\n"
    )


def test_decrypt_says_what_is_wrong_without_a_traceback_or_the_key(tmp_path: Path) -> None:
    key = generate_key("C20P")
    spec = EncryptionSpec("C20P", (EncryptionKey("k-1", Secret(key)),))
    sent = encrypt_body(spec, Body(b'{"a":1}', "application/json")).content
    short = generate_key("A128GCM")
    cases = {
        "cut short": (key, sent[:40], "not a C20P v1 envelope: not JSON (cut short?)"),
        "nested": (key, b"[" * 100_000 + b"]" * 100_000, "not a C20P v1 envelope: not JSON"),
        "misfit key": (short, sent, "C20P needs a 32-byte key"),
        "wrong key": (generate_key("C20P"), sent, "no given key decrypts this payload as C20P"),
    }
    for name, (given, body, says) in cases.items():
        result = dispatcher("decrypt", "--algorithm", "C20P", f"--key={given}", stdin=body)
        err = result.stderr.decode()
        assert result.returncode == 1, name
        assert err.startswith("error: cannot decrypt: "), (name, err)
        assert says in err, (name, err)
        assert "Traceback" not in err
        assert given not in err


def test_version_and_usage_errors() -> None:
    version = dispatcher("--version")
    assert version.returncode == 0
    assert version.stdout.decode().strip() == f"dispatcher {__version__}"
    assert dispatcher().returncode == 2  # no command
    assert dispatcher("run", "--no-such-option").returncode == 2
    assert dispatcher("decrypt", "--algorithm", "A256GCM").returncode == 2  # --key is required
    unknown = dispatcher("decrypt", "--algorithm", "ROT13", "--key", "a2V5", stdin=b"x")
    assert unknown.returncode == 1
    assert "unknown encryption algorithm 'ROT13'" in unknown.stderr.decode()
