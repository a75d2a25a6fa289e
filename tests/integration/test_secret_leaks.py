"""No secret leaves the dispatcher: not in logs, records, metrics, the admin API or CLI output.

One `dispatcher run` subprocess, at DEBUG, delivers to hooks of every auth type and every
encryption algorithm, all secrets given as `${env:NAME}`. A loopback receiver checks each
credential, signature and ciphertext (so the secrets demonstrably reached the wire) and answers
200, 422, 503 or a malformed response by path. Then every place a secret could escape to is
scanned for each secret value and its encoded forms (base64, base64url, URL-encoded, the Basic
`user:password` pair, the OAuth2 client pair, the issued access token).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus

import httpx
import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition
from dispatch_support import (
    Deployment,
    cloud_event,
    collect_until,
    free_port,
    hook,
    status_port,
    stop,
)
from kafka_support import Record, wait_for
from leak_support import secret_forms
from standardwebhooks import Webhook

from dispatcher.devtools.receiver import Behaviour, Received, Receiver
from dispatcher.security.decryption import decrypt_payload
from dispatcher.security.encryption import b64u, decode_key, generate_key

DATA = {"order": "o-1", "total": "10.00", "customer": {"phone": "+254700000001"}}
EVENTS = 2
USERNAME = "dugaa-user"
CLIENT_ID = "dugaa-client"
ALGORITHMS = ("A256GCM", "A128GCM", "A256CBC-HS512", "A128CBC-HS256", "C20P", "fernet")
AUTHS = ("basic", "bearer", "apikey-header", "apikey-query", "oauth2", "hmac")
# what the receiver answers on each path prefix
ENDPOINTS: dict[str, Behaviour] = {
    "ok": Behaviour(),
    "reject": Behaviour(status=422, body=b'{"error":"invalid phone"}'),
    "down": Behaviour(status=503, body=b'{"error":"maintenance"}'),
    # a second, different Content-Length: a response no HTTP client may accept
    "garbled": Behaviour(headers=(("content-length", "2"),)),
}
OUTCOMES = {
    "ok": ("delivered", None),
    "reject": ("dead_lettered", "http_status"),
    "down": ("dead_lettered", "http_status"),
    "garbled": ("dead_lettered", "network"),
}


def _env_name(label: str) -> str:
    return "LEAK_" + label.upper().replace("-", "_")


@dataclass
class Secrets:
    """Fresh secret values for one run, by environment variable name."""

    values: dict[str, str] = field(default_factory=dict)
    access_token: str = field(default_factory=lambda: f"at-{uuid.uuid4().hex}{uuid.uuid4().hex}")

    def __post_init__(self) -> None:
        tag = uuid.uuid4().hex
        self.values = {
            "LEAK_BASIC_PASSWORD": f"pw/{tag}+Z=",
            "LEAK_BEARER_TOKEN": f"bearer.{tag}.sig",
            "LEAK_HEADER_KEY": f"hk_{tag}",
            "LEAK_QUERY_KEY": f"qk/{tag}+&=",
            "LEAK_CLIENT_SECRET": f"cs/{tag}+:",
            "LEAK_WRONG_CLIENT_SECRET": f"wrong-{tag}",
            "LEAK_WHSEC_NEW": "whsec_" + base64.b64encode(uuid.uuid4().bytes * 2).decode(),
            "LEAK_WHSEC_OLD": "whsec_" + base64.b64encode(uuid.uuid4().bytes * 2).decode(),
            "LEAK_ADMIN_TOKEN": f"admin-{tag}",
        }
        for algorithm in ALGORITHMS:
            self.values[_env_name(f"key-{algorithm}")] = generate_key(algorithm)

    def key(self, algorithm: str) -> str:
        return self.values[_env_name(f"key-{algorithm}")]

    def client_authorization(self, variable: str = "LEAK_CLIENT_SECRET") -> str:
        pair = f"{quote_plus(CLIENT_ID)}:{quote_plus(self.values[variable])}"
        return "Basic " + base64.b64encode(pair.encode()).decode()

    def forms(self) -> dict[str, str]:
        """Label -> a text whose presence anywhere means a leak."""
        found: dict[str, str] = {}
        for name, value in self.values.items():
            found.update(secret_forms(name, value))
            if value.startswith("whsec_"):
                found.update(secret_forms(f"{name} (key part)", value.removeprefix("whsec_")))
        for algorithm in ALGORITHMS:
            raw = decode_key(algorithm, self.key(algorithm))
            found[f"{algorithm} key, hex"] = raw.hex()
            found[f"{algorithm} key, base64"] = base64.b64encode(raw).decode()
            found[f"{algorithm} key, base64url"] = b64u(raw)
        basic = f"{USERNAME}:{self.values['LEAK_BASIC_PASSWORD']}".encode()
        found["basic user:password, base64"] = base64.b64encode(basic).decode()
        for name in ("LEAK_CLIENT_SECRET", "LEAK_WRONG_CLIENT_SECRET"):
            found[f"oauth2 client pair of {name}"] = self.client_authorization(name).split()[1]
        found.update(secret_forms("issued access token", self.access_token))
        assert all(len(text) >= 16 for text in found.values())
        return found


def hooks_for(base: str, secrets: Secrets) -> list[dict[str, Any]]:
    """Every auth type against every endpoint kind, the six algorithms spread over them."""
    auths: dict[str, dict[str, Any]] = {
        "basic": {"type": "basic", "username": USERNAME, "password": "${env:LEAK_BASIC_PASSWORD}"},
        "bearer": {"type": "bearer", "token": "${env:LEAK_BEARER_TOKEN}"},
        "apikey-header": {
            "type": "api_key",
            "name": "X-Api-Key",
            "value": "${env:LEAK_HEADER_KEY}",
            "in": "header",
        },
        # `code`, as Azure Functions names it: a credential whose name does not say so
        "apikey-query": {
            "type": "api_key",
            "name": "code",
            "value": "${env:LEAK_QUERY_KEY}",
            "in": "query",
        },
        "oauth2": {
            "type": "oauth2_client_credentials",
            "token_url": f"{base}/token",
            "insecure_token_url": True,  # a loopback server without TLS
            "client_id": CLIENT_ID,
            "client_secret": "${env:LEAK_CLIENT_SECRET}",
            "scope": "deliver",
        },
        "hmac": {"type": "hmac", "secrets": ["${env:LEAK_WHSEC_NEW}", "${env:LEAK_WHSEC_OLD}"]},
    }
    hooks = []
    for i, auth in enumerate(AUTHS):
        for j, endpoint in enumerate(ENDPOINTS):
            algorithm = ALGORITHMS[(i + j) % len(ALGORITHMS)]
            hooks.append(
                hook(
                    f"{endpoint}-{auth}",
                    f"{base}/{endpoint}/{auth}/{algorithm}",
                    ["order.paid"],
                    auth=auths[auth],
                    encryption={
                        "algorithm": algorithm,
                        "key": f"${{env:{_env_name(f'key-{algorithm}')}}}",
                        "key_id": f"k-{algorithm.lower()}",
                    },
                    retry={"max_attempts": 2},
                    timeout="5s",
                )
            )
    denied = {**auths["oauth2"], "client_secret": "${env:LEAK_WRONG_CLIENT_SECRET}"}
    hooks.append(hook("denied-oauth2", f"{base}/ok/denied/none", ["order.paid"], auth=denied))
    return hooks


class ThirdParties:
    """The receiver's answers: a token endpoint, and APIs that check what they are sent."""

    def __init__(self, secrets: Secrets) -> None:
        self.secrets = secrets
        self.problems: list[str] = []
        self.checked = 0
        self.lock = threading.Lock()

    def __call__(self, request: Received) -> Behaviour:
        path, _, query = request.path.partition("?")
        if path == "/token":
            if request.headers.get("authorization") == self.secrets.client_authorization():
                token = {"access_token": self.secrets.access_token, "token_type": "Bearer"}
                return Behaviour(body=json.dumps({**token, "expires_in": 3600}).encode())
            return Behaviour(status=401, body=b'{"error":"invalid_client"}')
        _, endpoint, auth, algorithm = path.split("/")
        try:
            problem = self.check(auth, algorithm, request, query)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        with self.lock:
            self.checked += 1
            if problem:
                self.problems.append(f"{path}: {problem}")
        return Behaviour(status=400) if problem else ENDPOINTS[endpoint]

    def check(self, auth: str, algorithm: str, request: Received, query: str) -> str | None:
        values, headers = self.secrets.values, request.headers
        authorization = headers.get("authorization")
        if auth == "basic":
            pair = f"{USERNAME}:{values['LEAK_BASIC_PASSWORD']}".encode()
            ok = authorization == "Basic " + base64.b64encode(pair).decode()
        elif auth == "bearer":
            ok = authorization == f"Bearer {values['LEAK_BEARER_TOKEN']}"
        elif auth == "apikey-header":
            ok = headers.get("x-api-key") == values["LEAK_HEADER_KEY"]
        elif auth == "apikey-query":
            ok = parse_qs(query).get("code") == [values["LEAK_QUERY_KEY"]]
        elif auth == "oauth2":
            ok = authorization == f"Bearer {self.secrets.access_token}"
        else:
            for name in ("LEAK_WHSEC_NEW", "LEAK_WHSEC_OLD"):  # both, during a rotation
                Webhook(values[name]).verify(request.body, headers, json_parse=False)
            ok = True
        if not ok:
            return "credentials not as configured"
        plain = decrypt_payload(algorithm, [self.secrets.key(algorithm)], request.body)
        return None if json.loads(plain) == DATA else "decrypted body differs"


@dataclass
class Run:
    """What one leak-test run left behind, to be scanned."""

    secrets: Secrets
    third_parties: ThirdParties
    results: list[Record]
    dead_letters: list[Record]
    retried: list[Record]
    health: list[Record]  # hook health reports and decisions, operational events
    attempts: list[Record]
    log: bytes
    http: dict[str, bytes]
    cli: dict[str, subprocess.CompletedProcess[bytes]]


def read_to_end(bootstrap: str, topic: str) -> list[Record]:
    """Every record `topic` holds now."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ends-{uuid.uuid4().hex}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = [consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1] for p in partitions]
    finally:
        consumer.close()
    return collect_until(bootstrap, topic, lambda rs: len(rs) >= sum(ends), 30)


def cli(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "dispatcher", *args, "--config", str(config)],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def run(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    directory = tmp_path_factory.mktemp("leaks")
    secrets = Secrets()
    env = {**os.environ, **secrets.values}
    third_parties = ThirdParties(secrets)
    with Receiver() as receiver:
        receiver.responder = third_parties
        hooks = hooks_for(receiver.url, secrets)
        deployment = Deployment(kafka_bootstrap, directory, hooks)
        config = yaml.safe_load(deployment.config_path.read_text())
        config["topics"]["hooks"] = f"store-{deployment.group}"  # http_port 0: any free port
        admin_port = free_port()
        config["admin"] = {
            "port": admin_port,
            "data_dir": str(directory / "admin"),
            "tokens": [{"token": "${env:LEAK_ADMIN_TOKEN}", "role": "admin"}],
        }
        config["local_retries"] = 0  # failures go through a retry tier: records to scan
        config["hook_health_interval"] = "200ms"  # health reports (with last errors) to scan
        config["hook_failing_after"] = "1s"  # and, when failures last, failing events
        deployment.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        deployment.produce_events(
            [cloud_event("order.paid", DATA) for _ in range(EVENTS)],
            keys=[f"k{i}" for i in range(EVENTS)],
        )
        process = deployment.process("--log-level", "DEBUG", env=secrets.values)
        admin_log = directory / "admin.log"
        with admin_log.open("wb") as sink:
            admin = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dispatcher",
                    "admin",
                    "--config",
                    str(deployment.config_path),
                    "--log-level",
                    "DEBUG",
                ],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            expected = EVENTS * len(hooks)
            results = collect_until(
                kafka_bootstrap, deployment.results, lambda rs: len(rs) >= expected, 90
            )
            token = secrets.values["LEAK_ADMIN_TOKEN"]
            port = status_port(deployment.log_path)
            http = scrape(port, admin_port, [h["id"] for h in hooks], token)
        finally:
            code = stop(process)
            admin_code = stop(admin)
        assert code == 0, deployment.log()
        assert admin_code == 0, admin_log.read_text()
        dead = read_to_end(kafka_bootstrap, deployment.dead_letter)
        retried = [
            record
            for tier in deployment.retry
            for record in read_to_end(kafka_bootstrap, f"{deployment.retry_prefix}.{tier}")
        ]
        health = read_to_end(kafka_bootstrap, deployment.health)
        if deployment.written(deployment.operations):
            health += read_to_end(kafka_bootstrap, deployment.operations)
        attempts = read_to_end(kafka_bootstrap, deployment.attempts)
        event_file = directory / "event.json"
        event_file.write_text(json.dumps(cloud_event("order.paid", DATA)))
        outputs = run_cli(deployment.config_path, env, event_file, [h["id"] for h in hooks])
        yield Run(
            secrets,
            third_parties,
            results,
            dead,
            retried,
            health,
            attempts,
            deployment.log_path.read_bytes() + admin_log.read_bytes(),
            http,
            outputs,
        )


def scrape(port: int, admin_port: int, hook_ids: list[str], token: str) -> dict[str, bytes]:
    """A worker's /metrics, and the admin API as a client reads it, with its test endpoint
    sending, for one hook of each auth type, each garbled endpoint and the denied hook."""
    picked = [i for i in hook_ids if i.startswith(("ok-", "garbled-", "denied-"))]
    bearer = {"authorization": f"Bearer {token}"}
    pages: dict[str, bytes] = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False) as client:
        for path in ("/metrics", "/healthz", "/readyz"):
            response = client.get(path)
            assert response.status_code == 200, (path, response.text)
            pages[path] = response.content
    admin = httpx.Client(
        base_url=f"http://127.0.0.1:{admin_port}", timeout=30, trust_env=False, headers=bearer
    )
    with admin:
        wait_for(lambda: _answers(admin), 60, message="the admin service")
        wait_for(
            lambda: admin.get("/api/dead-letters").json()["total"] > 0,
            60,
            message="dead letters in the admin index",
        )
        paths = ["/api/hooks", "/api/dead-letters", "/api/dead-letters/list"]
        paths += [f"/api/hooks/{hook_id}" for hook_id in hook_ids]
        paths += [f"/api/hooks/{hook_id}/outcomes" for hook_id in picked]
        for path in paths:
            response = admin.get(path)
            assert response.status_code == 200, (path, response.text)
            pages[f"admin {path}"] = response.content
        for hook_id in picked:
            response = admin.post(
                f"/api/hooks/{hook_id}/test",
                json={"event": cloud_event("order.paid", DATA), "send": True},
            )
            assert response.status_code == 200, (hook_id, response.text)
            assert "verdict" in response.json()
            pages[f"POST /api/hooks/{hook_id}/test"] = response.content
    return pages


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def run_cli(
    config: Path, env: dict[str, str], event_file: Path, hook_ids: list[str]
) -> dict[str, subprocess.CompletedProcess[bytes]]:
    """`hooks test ID --send` and `hooks show ID` for one hook of each auth type and the denied
    one, `hooks test` also for the garbled endpoint of the query key (its error text);
    `hooks list`."""
    shown = [i for i in hook_ids if i.startswith(("ok-", "denied-"))]
    tested = [*shown, "garbled-apikey-query"]
    commands = {
        f"hooks test {i}": ("hooks", "test", i, "--event", str(event_file), "--send")
        for i in tested
    }
    commands |= {f"hooks show {i}": ("hooks", "show", i) for i in shown}
    commands |= {"hooks list": ("hooks", "list")}
    # all at once: each waits on Kafka a part of its time
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        futures = {name: pool.submit(cli, config, env, *args) for name, args in commands.items()}
        return {name: future.result() for name, future in futures.items()}


def leaks(run: Run, places: dict[str, bytes]) -> list[str]:
    """`where: which secret` for every secret form found in `places`."""
    forms = run.secrets.forms()
    return [
        f"{where}: {label}"
        for where, blob in places.items()
        for label, text in forms.items()
        if text.encode() in blob
    ]


def record_blob(record: Record) -> bytes:
    parts = [record.key or b"", record.value or b""]
    for name, value in record.headers:
        parts += [name.encode(), value or b""]
    return b"\n".join(parts)


def test_every_credential_signature_and_key_reached_the_receivers_as_configured(
    run: Run,
) -> None:
    assert run.third_parties.problems == []
    assert run.third_parties.checked >= EVENTS * len(AUTHS) * len(ENDPOINTS)
    outcomes = {
        (r.json()["hook_id"], r.json()["outcome"], r.json()["error_kind"]) for r in run.results
    }
    expected = {
        (f"{endpoint}-{auth}", *OUTCOMES[endpoint]) for endpoint in ENDPOINTS for auth in AUTHS
    }
    assert outcomes == expected | {("denied-oauth2", "dead_lettered", "auth")}
    assert len(run.dead_letters) == EVENTS * (len(AUTHS) * 3 + 1)


def test_the_debug_log_holds_no_secret(run: Run) -> None:
    assert b" DEBUG " in run.log
    assert b"worker started" in run.log
    assert leaks(run, {"log": run.log}) == []


def test_no_result_retry_record_dead_letter_or_attempt_holds_a_secret(run: Run) -> None:
    assert run.dead_letters
    assert run.results
    assert run.retried
    assert run.attempts
    places = {
        f"{r.topic}[{r.partition}]@{r.offset}": record_blob(r)
        for r in [*run.results, *run.dead_letters, *run.retried, *run.attempts]
    }
    assert leaks(run, places) == []


def test_no_health_report_decision_or_operational_event_holds_a_secret(run: Run) -> None:
    errors = [r for r in run.health if r.value and b'"last_error":"' in r.value]
    assert errors  # failing hooks were reported with their last error
    places = {f"{r.topic}[{r.partition}]@{r.offset}": record_blob(r) for r in run.health}
    assert leaks(run, places) == []


def test_metrics_and_the_admin_api_hold_no_secret(run: Run) -> None:
    assert (
        b'dispatcher_deliveries_total{hook="ok-basic",outcome="delivered"}' in run.http["/metrics"]
    )
    assert leaks(run, run.http) == []


def test_hooks_test_show_and_list_print_no_secret(run: Run) -> None:
    for name, done in run.cli.items():
        ok = not name.startswith("hooks test") or name.startswith("hooks test ok-")
        assert done.returncode == (0 if ok else 1), (name, done.stderr.decode())
    shown = run.cli["hooks test ok-basic"].stdout.decode()
    assert "authorization: Basic ***" in shown
    assert "verdict: delivered" in shown
    places = {
        f"{name} ({stream})": getattr(done, stream)
        for name, done in run.cli.items()
        for stream in ("stdout", "stderr")
    }
    assert leaks(run, places) == []


def test_missing_or_unusable_secrets_stop_the_start_naming_hook_and_key_never_a_value(
    tmp_path: Path,
) -> None:
    tag = uuid.uuid4().hex
    missing = f"LEAK_UNSET_{tag.upper()}"
    present = {
        "LEAK_PRESENT_PASSWORD": f"pw-{tag}",
        "LEAK_SHORT_KEY": b64u(uuid.uuid4().bytes),  # 16 bytes; A256GCM takes 32
        "LEAK_BAD_WHSEC": f"whsec_not*base64*{tag}",
        "LEAK_SHORT_WHSEC": "whsec_" + base64.b64encode(tag[:8].encode()).decode(),
    }
    hooks_path = tmp_path / "hooks.yaml"
    hooks_path.write_text(
        "hooks:\n"
        "  - id: crm\n"
        "    events: [customer.created]\n"
        "    url: https://crm.example.com/contacts\n"
        f"    auth: {{type: bearer, token: '${{env:{missing}}}'}}\n"
        "  - id: vault\n"
        "    events: [order.paid]\n"
        "    url: https://vault.example.com/in\n"
        "    auth: {type: basic, username: u, password: '${env:LEAK_PRESENT_PASSWORD}'}\n"
        "    encryption: {algorithm: A256GCM, key: '${env:LEAK_SHORT_KEY}', key_id: k1}\n"
        "  - id: signer\n"
        "    events: [order.paid]\n"
        "    url: https://signer.example.com/in\n"
        "    auth:\n"
        "      type: hmac\n"
        "      secrets:\n"
        "        - ${env:LEAK_BAD_WHSEC}\n"
        "        - ${env:LEAK_SHORT_WHSEC}\n"
    )
    with socket.socket() as closed:  # bound, never listening: Kafka must not even be tried
        closed.bind(("127.0.0.1", 0))
        config = tmp_path / "dispatcher.yaml"
        config.write_text(
            f"kafka: {{bootstrap.servers: '127.0.0.1:{closed.getsockname()[1]}'}}\n"
            f"hooks_file: {hooks_path}\nhttp_port: 0\n"
        )
        event = tmp_path / "event.json"
        event.write_text(json.dumps(cloud_event("order.paid", DATA)))
        env = {**os.environ, **present}
        env.pop(missing, None)
        commands = {
            "run": ("run",),
            "validate": ("hooks", "validate", str(hooks_path)),
            "test": ("hooks", "test", "vault", "--event", str(event)),
        }
        done = {name: cli(config, env, *args) for name, args in commands.items()}
    expected = [
        f"{hooks_path}:5: hooks[0].auth.token: hook crm: cannot resolve secret: "
        f"environment variable {missing} is not set",
        f"{hooks_path}:10: hooks[1].encryption.key: A256GCM needs a 32-byte key",
        f"{hooks_path}:17: hooks[2].auth.secrets[0]: hook signer: webhook secret is not base64",
        f"{hooks_path}:18: hooks[2].auth.secrets[1]: hook signer: webhook secret decodes to 8 bytes",
    ]
    forms = {
        label: text
        for name, value in present.items()
        for label, text in secret_forms(name, value).items()
    }
    for name, result in done.items():
        assert result.returncode == 1, (name, result.stderr.decode())
        output = result.stdout + result.stderr
        for line in expected:
            assert line.encode() in result.stderr, (name, line, result.stderr.decode())
        assert [label for label, text in forms.items() if text.encode() in output] == [], name
