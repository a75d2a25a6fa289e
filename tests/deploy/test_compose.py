"""deploy/docker-compose.yml: `docker compose config` when the compose CLI is here, and always a
structural check that every service, file and reference it names is there and consistent."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from deploy_tools import REPO, find_tool, run_in_image
from prometheus_client import CollectorRegistry

from dispatcher.engine.status import StatusServer

DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
SERVICES = {
    "kafka",
    "kafka-init",
    "dispatcher",
    "admin",
    "receiver",
    "producer",
    "prometheus",
    "grafana",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def compose_cli() -> list[str] | None:
    """The compose CLI: the docker plugin, or the standalone docker-compose v2 binary."""
    docker = find_tool("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    standalone = find_tool("docker-compose")
    if standalone:
        probe = subprocess.run([standalone, "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0 and "v1." not in probe.stdout:
            return [standalone]
    return None


def test_docker_compose_config_accepts_the_file() -> None:
    cli = compose_cli()
    if cli is None:
        pytest.skip("no docker compose v2 CLI here: the structural tests below stand in for it")
    result = subprocess.run(
        [*cli, "-f", str(COMPOSE), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert set(resolved["services"]) == SERVICES
    dispatcher = resolved["services"]["dispatcher"]
    assert dispatcher["build"]["dockerfile"] == "deploy/Dockerfile"


def test_the_issue_services_are_there(compose) -> None:
    assert set(compose["services"]) == SERVICES


def test_kafka_is_the_official_image_in_kraft_mode(compose) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "INTERNAL://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "ZOOKEEPER" not in json.dumps(env).upper()


def test_kafka_is_the_version_the_tests_and_the_bench_run() -> None:
    """Queue mode needs Kafka 4.2+: the compose file's broker is the dev broker's release."""
    pom = (DEPLOY / "kafka-dev" / "pom.xml").read_text()
    version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom).group(1)
    images = {
        service["image"]
        for service in yaml.safe_load(COMPOSE.read_text())["services"].values()
        if service.get("image", "").startswith("apache/kafka:")
    }
    assert images == {f"apache/kafka:{version}"}


def test_images_are_pinned(compose) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        assert ":" in image, name
        assert not image.endswith(":latest"), name


def test_dispatcher_is_built_from_the_dockerfile_and_runs_hardened(compose) -> None:
    dispatcher = compose["services"]["dispatcher"]
    assert dispatcher["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (COMPOSE.parent / dispatcher["build"]["context"] / "deploy" / "Dockerfile").is_file()
    assert dispatcher["command"] == ["run", "--config", "/etc/dispatcher/dispatcher.yaml"]
    assert dispatcher["read_only"] is True
    assert dispatcher["cap_drop"] == ["ALL"]
    assert dispatcher["healthcheck"]["test"] == ["CMD", "dispatcher", "healthcheck", "--ready"]


def test_depends_on_names_existing_services_and_waits_for_topics(compose) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", []):
            assert dependency in services, f"{name} depends on unknown {dependency}"
    condition = services["dispatcher"]["depends_on"]["kafka-init"]["condition"]
    assert condition == "service_completed_successfully"


def test_topics_created_match_the_dispatcher_config(compose) -> None:
    config = yaml.safe_load(compose["configs"]["dispatcher-config"]["content"])
    script = "\n".join(compose["services"]["kafka-init"]["command"])
    created = set(re.findall(r"--topic ([a-z0-9.]+)", script))
    tiers = re.search(r"for tier in ([^;]+);", script).group(1).split()
    created |= {f"dugaa.dispatch.retry.{tier}" for tier in tiers}
    topics = config["topics"]
    wanted = {*topics["events"], topics["results"], topics["dead_letter"], topics["hooks"]}
    wanted |= {topics["health"], topics["operations"]}
    wanted |= {f"dugaa.dispatch.retry.{tier}" for tier in topics["retry"]}
    wanted |= {topics["attempts"]}
    assert created == wanted


def test_hooks_point_at_the_demo_receiver_with_secret_references(compose) -> None:
    config = yaml.safe_load(compose["configs"]["dispatcher-config"]["content"])
    assert config["hooks_file"] == "/etc/dispatcher/hooks.yaml"
    assert config["allow_private_networks"] is True
    hooks_text = compose["configs"]["hooks-config"]["content"]
    # `$$` is compose's escape: the dispatcher sees ${env:...}, compose does not interpolate it.
    assert "$${env:DEMO_HMAC_SECRET}" in hooks_text
    assert "DEMO_HMAC_SECRET" in compose["services"]["dispatcher"]["environment"]
    for hook in yaml.safe_load(hooks_text)["hooks"]:
        assert hook["url"].startswith("http://receiver:8080/")


def test_every_published_port_is_bound_to_loopback(compose) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on all interfaces"


def test_mounted_files_exist(compose) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name} mounts missing {source}"


def test_prometheus_scrapes_the_dispatcher_and_loads_the_alerts(compose) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = [
        t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    ]
    assert "dispatcher:9400" in targets
    mounts = compose["services"]["prometheus"]["volumes"]
    assert any(m.endswith(f":{config['rule_files'][0]}:ro") for m in mounts)


def test_grafana_provisions_the_dashboard_and_the_datasource(compose) -> None:
    grafana = compose["services"]["grafana"]
    provisioning = DEPLOY / "grafana" / "provisioning"
    providers = yaml.safe_load((provisioning / "dashboards" / "dispatcher.yml").read_text())
    path = providers["providers"][0]["options"]["path"]
    assert any(m.split(":")[1] == f"{path}/dispatcher-dashboard.json" for m in grafana["volumes"])
    assert any(m.split(":")[1] == "/etc/grafana/provisioning" for m in grafana["volumes"])
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert sources["datasources"][0]["url"] == "http://prometheus:9090"
    assert sources["datasources"][0]["type"] == "prometheus"


def test_the_admin_service_runs_beside_the_workers_behind_a_token(compose) -> None:
    admin = compose["services"]["admin"]
    assert admin["command"] == ["admin", "--config", "/etc/dispatcher/dispatcher.yaml"]
    assert admin["ports"] == ["127.0.0.1:9401:9401"]
    assert admin["read_only"] is True
    assert admin["cap_drop"] == ["ALL"]
    assert admin["healthcheck"]["test"] == ["CMD", "dispatcher", "healthcheck", "--admin"]
    assert any(v.endswith(":/var/lib/dispatcher-admin") for v in admin["volumes"])
    config = yaml.safe_load(compose["configs"]["dispatcher-config"]["content"])
    assert config["admin"]["port"] == 9401
    assert config["admin"]["data_dir"] == "/var/lib/dispatcher-admin"
    assert config["admin"]["tokens"] == [{"token": "$${env:ADMIN_TOKEN}", "role": "admin"}]
    assert "ADMIN_TOKEN" in admin["environment"]


def test_the_dispatcher_s_stop_grace_outlasts_a_hung_stop_writing_its_stacks(
    compose, tmp_path
) -> None:
    """`docker compose stop` waits stop_grace_period, then kills: past the drain deadline and
    the stop watchdog (a stop that hangs writes its threads' stacks, then exits), as the
    chart's grace period is, or the stacks that say where it hung are never written."""
    from dispatcher.config.durations import parse_duration
    from dispatcher.config.settings import load_settings
    from dispatcher.engine.worker import STOP_WATCHDOG

    config = tmp_path / "dispatcher.yaml"
    config.write_text(compose["configs"]["dispatcher-config"]["content"].replace("$$", "$"))
    environ = {"ADMIN_TOKEN": "a" * 32, "DEMO_HMAC_SECRET": "whsec_c2VjcmV0"}
    settings = load_settings(str(config), environ=environ)
    grace = parse_duration(compose["services"]["dispatcher"]["stop_grace_period"])
    assert grace > settings.drain_timeout + STOP_WATCHDOG


@pytest.mark.parametrize(
    ("service", "variable"),
    [("dispatcher", "DISPATCHER_HTTP_PORT"), ("admin", "DISPATCHER_ADMIN_PORT")],
)
def test_each_healthcheck_asks_its_service_on_the_port_the_configuration_gives(
    compose, tmp_path: Path, service: str, variable: str
) -> None:
    """The healthchecks named 9400 and 9401 as well as the configuration: a port changed there
    (or by its variable) left the service unhealthy, and the worker's, on /readyz, held the
    services that wait for it."""
    check = compose["services"][service]["healthcheck"]["test"]
    assert check[0] == "CMD"
    config = tmp_path / "dispatcher.yaml"
    config.write_text(compose["configs"]["dispatcher-config"]["content"].replace("$$", "$"))
    readiness = [False]
    # the worker's /readyz, and /healthz as the admin service answers it
    server = StatusServer(0, CollectorRegistry(), lambda: readiness[0], host="127.0.0.1")
    env = {"DISPATCHER_CONFIG": str(config), variable: str(server.port)}
    server.start()
    try:
        before = run_in_image(check[1:], env)
        readiness[0] = True
        ready = run_in_image(check[1:], env)
    finally:
        server.stop()
    assert ready.returncode == 0, ready.stderr
    if service == "dispatcher":  # ready only once it holds partitions
        assert before.returncode == 1, before.stderr
        assert "HTTP 503" in before.stderr
    assert run_in_image(check[1:], env).returncode == 1
