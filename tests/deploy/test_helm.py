"""The Helm chart: `helm lint --strict` and `helm template` with default, KEDA, HPA,
ServiceMonitor and secrets values, and the rendered manifests checked object by object."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from deploy_tools import REPO, require_tool

CHART = REPO / "helm" / "dugaa-dispatcher"
CI_VALUES = CHART / "ci"
KUBE_VERSION = "1.30.0"
VARIANTS = {
    "default": [],
    "keda": [CI_VALUES / "keda-values.yaml"],
    "hpa": [CI_VALUES / "hpa-values.yaml"],
    "servicemonitor": [CI_VALUES / "servicemonitor-values.yaml"],
    "secrets": [CI_VALUES / "secrets-values.yaml"],
    "tracing": [CI_VALUES / "tracing-values.yaml"],
}
STANDARD_LABELS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
}
Manifest = dict[str, Any]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("helm"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def value_args(files: list[Path], sets: dict[str, str] | None = None) -> list[str]:
    args = [arg for f in files for arg in ("-f", str(f))]
    for key, value in (sets or {}).items():
        args += ["--set", f"{key}={value}"]
    return args


def template_result(
    files: list[Path] = (), sets: dict[str, str] | None = None, release: str = "rel"
) -> subprocess.CompletedProcess[str]:
    args = value_args(list(files), sets)
    return helm(
        "template",
        release,
        str(CHART),
        "--namespace",
        "dugaa",
        "--kube-version",
        KUBE_VERSION,
        *args,
    )


def render(
    files: list[Path] = (), sets: dict[str, str] | None = None, release: str = "rel"
) -> list[Manifest]:
    result = template_result(files, sets, release)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def is_admin(manifest: Manifest) -> bool:
    return manifest["metadata"]["labels"].get("app.kubernetes.io/component") == "admin"


def by_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    """The workers' objects of `kind` (the admin service's are `admin_one`'s)."""
    return [m for m in manifests if m["kind"] == kind and not is_admin(m)]


def admin_one(manifests: list[Manifest], kind: str) -> Manifest:
    (found,) = [m for m in manifests if m["kind"] == kind and is_admin(m)]
    return found


def one(manifests: list[Manifest], kind: str) -> Manifest:
    (found,) = by_kind(manifests, kind)
    return found


def dispatcher_config(manifests: list[Manifest]) -> dict[str, Any]:
    """The worker's configuration file as the chart's ConfigMap holds it."""
    config: dict[str, Any] = yaml.safe_load(one(manifests, "ConfigMap")["data"]["dispatcher.yaml"])
    return config


def container(manifests: list[Manifest]) -> Manifest:
    (found,) = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    return found


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Manifest]]:
    return {name: render(files) for name, files in VARIANTS.items()}


# --- lint and render ------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_lint_strict_passes(variant: str) -> None:
    result = helm(
        "lint",
        "--strict",
        "--kube-version",
        KUBE_VERSION,
        str(CHART),
        *value_args(VARIANTS[variant]),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_object_carries_the_standard_labels(rendered, variant: str) -> None:
    for manifest in rendered[variant]:
        labels = manifest["metadata"]["labels"]
        assert set(labels) >= STANDARD_LABELS, manifest["kind"]
        assert labels["app.kubernetes.io/name"] == "dugaa-dispatcher"
        assert labels["app.kubernetes.io/instance"] == "rel"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert manifest["metadata"]["namespace"] == "dugaa"


def test_default_render_has_the_core_objects_and_no_optional_ones(rendered) -> None:
    kinds = sorted(m["kind"] for m in rendered["default"] if not is_admin(m))
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    admin = sorted(m["kind"] for m in rendered["default"] if is_admin(m))
    assert admin == ["Deployment", "Service"]


# --- the Deployment -------------------------------------------------------------------------


def test_deployment_runs_the_dispatcher_with_the_mounted_config(rendered) -> None:
    c = container(rendered["default"])
    assert c["args"] == ["run", "--config", "/etc/dispatcher/dispatcher.yaml"]
    assert "command" not in c  # the image's entrypoint is `dispatcher`
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["config"]["mountPath"] == "/etc/dispatcher"
    assert mounts["config"]["readOnly"] is True
    assert c["ports"] == [{"name": "http", "containerPort": 9400, "protocol": "TCP"}]


def test_workers_become_a_flag(rendered) -> None:
    c = container(rendered["secrets"])
    assert c["args"][-2:] == ["--workers", "2"]


def test_probes_check_healthz_and_readyz_on_the_http_port(rendered) -> None:
    c = container(rendered["default"])
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


@pytest.mark.parametrize(
    ("sets", "drain", "grace"),
    [
        ({}, 30, 70),
        ({"drainTimeoutSeconds": "60"}, 60, 100),
        ({"drainTimeoutSeconds": "20", "terminationGracePeriodSeconds": "90"}, 20, 90),
    ],
)
def test_grace_period_exceeds_the_drain_deadline(sets, drain: int, grace: int) -> None:
    manifests = render(sets=sets)
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == grace
    config = dispatcher_config(manifests)
    assert config["drain_timeout"] == f"{drain}s"
    assert grace > drain


@pytest.mark.parametrize("drain", ["30", "60"])
def test_the_default_grace_period_lets_a_hung_stop_write_its_stacks_before_the_sigkill(
    drain: str,
) -> None:
    """A worker whose stop hangs writes every thread's stack and exits 1, STOP_WATCHDOG
    seconds past its drain deadline (RUNBOOK); the kubelet's SIGKILL at the end of the grace
    period came 10 s before that, and the stacks were never written."""
    from dispatcher.engine.worker import STOP_WATCHDOG

    pod = one(render(sets={"drainTimeoutSeconds": drain}), "Deployment")["spec"]["template"]
    assert pod["spec"]["terminationGracePeriodSeconds"] > int(drain) + STOP_WATCHDOG


def test_a_grace_period_inside_the_drain_deadline_fails_the_render() -> None:
    result = template_result(
        sets={"drainTimeoutSeconds": "60", "terminationGracePeriodSeconds": "50"}
    )
    assert result.returncode != 0
    assert (
        "terminationGracePeriodSeconds (50) must exceed drainTimeoutSeconds (60)" in result.stderr
    )


def test_pod_runs_as_non_root_with_a_read_only_root_filesystem(rendered) -> None:
    pod = one(rendered["default"], "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    sc = container(rendered["default"])["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["tmp"]  # the one writable place
    assert pod["automountServiceAccountToken"] is False


def test_resources_are_set(rendered) -> None:
    resources = container(rendered["default"])["resources"]
    assert resources["requests"]["cpu"]
    assert resources["requests"]["memory"]
    assert resources["limits"]["memory"]


# --- configuration and its checksum ---------------------------------------------------------


def test_configmap_holds_dispatcher_and_hooks_yaml(rendered) -> None:
    data = one(rendered["secrets"], "ConfigMap")["data"]
    config = yaml.safe_load(data["dispatcher.yaml"])
    assert config["kafka"]["bootstrap.servers"] == "kafka:9093"
    assert config["http_port"] == 9400
    assert config["hooks_file"] == "/etc/dispatcher/hooks.yaml"
    hooks = yaml.safe_load(data["hooks.yaml"])["hooks"]
    assert [h["id"] for h in hooks] == ["sms-ke", "bank"]
    assert hooks[0]["fields"] == [{"name": "to", "from": "data.customer.phone", "required": True}]


def test_without_hooks_there_is_no_hooks_file(rendered) -> None:
    data = one(rendered["default"], "ConfigMap")["data"]
    assert set(data) == {"dispatcher.yaml"}
    assert "hooks_file" not in yaml.safe_load(data["dispatcher.yaml"])


def checksum(manifests: list[Manifest]) -> str:
    annotations = one(manifests, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    return annotations["checksum/config"]


def test_checksum_annotation_changes_when_the_config_changes(rendered) -> None:
    base = checksum(rendered["default"])
    assert len(base) == 64
    assert checksum(render()) == base
    assert checksum(render(sets={"replicaCount": "5"})) == base
    assert checksum(render(sets={"config.group_id": "other"})) != base
    assert checksum(rendered["secrets"]) != base  # hooks.yaml added


# --- secrets, referenced by name ------------------------------------------------------------


def test_secrets_are_referenced_by_name_never_inlined(rendered) -> None:
    manifests = rendered["secrets"]
    assert not by_kind(manifests, "Secret")
    c = container(manifests)
    env = {e["name"]: e for e in c["env"]}
    assert env["SMS_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "sms-credentials",
        "key": "token",
    }
    assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "kafka-sasl"
    assert c["envFrom"] == [{"secretRef": {"name": "hook-keys"}, "prefix": "HOOK_"}]


def test_an_optional_secret_is_optional_in_the_admin_pod_too(tmp_path: Path) -> None:
    """`secrets.env[].optional` reached the workers only: with the Secret absent, the admin pod
    could not start (CreateContainerConfigError) while the workers ran."""
    values = tmp_path / "optional.yaml"
    values.write_text(
        "secrets:\n  env:\n    - {name: SMS_TOKEN, secretName: sms, key: token, optional: true}\n"
    )
    manifests = render([values])
    for deployment in (one(manifests, "Deployment"), admin_one(manifests, "Deployment")):
        (c,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in c["env"]}
        assert env["SMS_TOKEN"]["valueFrom"]["secretKeyRef"] == {
            "name": "sms",
            "key": "token",
            "optional": True,
        }


def test_secret_files_are_mounted_read_only_where_hooks_reference_them(rendered) -> None:
    manifests = rendered["secrets"]
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in container(manifests)["volumeMounts"]}
    mount = mounts["/etc/dispatcher/secrets/bank-mtls"]
    assert mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "bank-mtls"
    assert volume["secret"]["defaultMode"] == 0o400
    hooks = yaml.safe_load(one(manifests, "ConfigMap")["data"]["hooks.yaml"])["hooks"]
    bank = next(h for h in hooks if h["id"] == "bank")
    assert bank["auth"]["cert"].startswith(mount["mountPath"] + "/")


def test_secret_references_reach_the_config_unresolved(rendered) -> None:
    data = one(rendered["secrets"], "ConfigMap")["data"]
    assert "${env:SMS_TOKEN}" in data["hooks.yaml"]
    assert "${env:HOOK_BANK_KEY}" in data["hooks.yaml"]
    assert "${env:KAFKA_SASL_PASSWORD}" in data["dispatcher.yaml"]


HOOK = {"id": "sms-ke", "events": ["order.shipped"], "url": "https://sms.example.com/send"}
INLINE_CREDENTIALS = {
    "config.kafka.sasl.password": {"config": {"kafka": {"sasl.password": "hunter2-kafka"}}},
    "config.kafka.ssl.key.pem": {"config": {"kafka": {"ssl.key.pem": "hunter2-pem"}}},
    "config.kafka.sasl.oauthbearer.client.secret": {
        "config": {"kafka": {"sasl.oauthbearer.client.secret": "hunter2-oauth"}}
    },
    "config.schema_registry.basic.auth.user.info": {
        "config": {"schema_registry": {"basic.auth.user.info": "user:${env:REGISTRY_PW}"}}
    },
    "hooks[0].auth.token": {"hooks": [{**HOOK, "auth": {"type": "bearer", "token": "hunter2"}}]},
    "hooks[0].auth.secrets": {
        "hooks": [{**HOOK, "auth": {"type": "hmac", "secrets": ["${env:A}", "whsec_hunter2"]}}]
    },
    "hooks[0].encryption.keys[1].key": {
        "hooks": [
            {
                **HOOK,
                "encryption": {
                    "algorithm": "A256GCM",
                    "keys": [
                        {"id": "k1", "key": "${env:K1}", "state": "active"},
                        {"id": "k0", "key": "aHVudGVyMg", "state": "decrypt"},
                    ],
                },
            }
        ]
    },
}


@pytest.mark.parametrize("where", INLINE_CREDENTIALS)
def test_a_credential_written_out_fails_the_render_naming_where(tmp_path: Path, where) -> None:
    """dispatcher.yaml and hooks.yaml are a ConfigMap, kept and shown in plain text: a
    credential there must be a reference to a Secret. The message names where, not the value."""
    values = tmp_path / "inline.yaml"
    values.write_text(yaml.safe_dump(INLINE_CREDENTIALS[where]))
    result = template_result([values])
    assert result.returncode != 0, f"{where} was rendered into the ConfigMap"
    assert f"{where} is a credential written out" in result.stderr
    assert "hunter2" not in result.stderr


def test_credentials_as_references_and_properties_that_are_none_render(tmp_path: Path) -> None:
    values = tmp_path / "references.yaml"
    kafka = {
        "bootstrap.servers": "kafka:9093",
        "sasl.username": "dispatcher",
        "sasl.password": "${env:KAFKA_PASSWORD}",
        "ssl.key.location": "/etc/dispatcher/secrets/kafka/tls.key",
        "ssl.ca.pem": "-----BEGIN CERTIFICATE-----",
    }
    registry = {"url": "https://registry:8081", "basic.auth.user.info": "${file:/run/reg/info}"}
    hook = {**HOOK, "auth": {"type": "hmac", "secrets": ["${env:A}", "${env:B}"]}}
    values.write_text(
        yaml.safe_dump({"config": {"kafka": kafka, "schema_registry": registry}, "hooks": [hook]})
    )
    config = dispatcher_config(render([values]))
    assert config["kafka"]["sasl.password"] == "${env:KAFKA_PASSWORD}"


# --- Service, ServiceMonitor, PDB -----------------------------------------------------------


def test_service_selects_the_pods_on_the_http_port(rendered) -> None:
    manifests = rendered["default"]
    service = one(manifests, "Service")
    pod_labels = one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    pdb = one(manifests, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_service_monitor_scrapes_metrics_from_the_service(rendered) -> None:
    manifests = rendered["servicemonitor"]
    monitor = one(manifests, "ServiceMonitor")
    service = one(manifests, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint == {
        "port": "http",
        "path": "/metrics",
        "interval": "15s",
        "scrapeTimeout": "10s",
    }
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_each_worker_process_of_a_pod_is_exposed_and_scraped_on_its_own_port() -> None:
    """`dispatcher run --workers N`: worker i serves /metrics on http_port + i (the admin port,
    9401, is below 9500: none is skipped)."""
    manifests = render(
        sets={"workers": "3", "serviceMonitor.enabled": "true", "config.http_port": "9500"}
    )
    c = container(manifests)
    assert c["args"][-2:] == ["--workers", "3"]
    names = ["http", "http-w1", "http-w2"]
    assert [(p["name"], p["containerPort"]) for p in c["ports"]] == list(
        zip(names, [9500, 9501, 9502], strict=True)
    )
    service = one(manifests, "Service")["spec"]["ports"]
    assert [(p["name"], p["port"], p["targetPort"]) for p in service] == list(
        zip(names, [9400, 9401, 9402], names, strict=True)
    )
    endpoints = one(manifests, "ServiceMonitor")["spec"]["endpoints"]
    assert [(e["port"], e["path"]) for e in endpoints] == [(n, "/metrics") for n in names]
    assert c["readinessProbe"]["httpGet"]["port"] == "http"


@pytest.mark.parametrize(
    "sets",
    [
        {},  # http_port 9400, admin.port 9401: worker 1 took the admin's port
        {"config.http_port": "9500", "admin.port": "9502"},
        {"admin.enabled": "false"},  # the workers' config still holds the default 9401
        {"admin.enabled": "false", "config.admin.port": "9402"},
        {"admin.enabled": "false", "config.admin.port": "0"},  # any free port: nothing skipped
    ],
)
def test_the_worker_ports_skip_the_admin_port_as_the_workers_do(
    tmp_path: Path, sets: dict[str, str]
) -> None:
    """The container ports are where `dispatcher run --workers 3` serves, reading the same
    dispatcher.yaml: never the admin port, which `dispatcher admin` beside them binds."""
    from dispatcher.config.settings import load_settings
    from dispatcher.engine.processes import worker_port

    manifests = render(sets={"workers": "3", **sets})
    path = tmp_path / "dispatcher.yaml"
    path.write_text(one(manifests, "ConfigMap")["data"]["dispatcher.yaml"])
    settings = load_settings(str(path), environ=pod_environment(one(manifests, "Deployment")))
    served = [worker_port(settings.http_port, settings.admin.port, i) for i in range(3)]
    assert [p["containerPort"] for p in container(manifests)["ports"]] == served
    assert settings.admin.port not in served[1:]


def test_the_default_worker_ports_leave_the_admin_port_free() -> None:
    ports = container(render(sets={"workers": "3"}))["ports"]
    assert [(p["name"], p["containerPort"]) for p in ports] == [
        ("http", 9400),
        ("http-w1", 9402),
        ("http-w2", 9403),
    ]


# --- autoscaling: HPA or KEDA, never both ---------------------------------------------------


def test_hpa_scales_the_deployment_and_owns_its_replicas(rendered) -> None:
    manifests = rendered["hpa"]
    assert not by_kind(manifests, "ScaledObject")
    hpa = one(manifests, "HorizontalPodAutoscaler")
    deployment = one(manifests, "Deployment")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 8)
    assert "replicas" not in deployment["spec"]


def test_keda_scales_on_consumer_group_lag_of_each_input_topic(rendered) -> None:
    manifests = rendered["keda"]
    assert not by_kind(manifests, "HorizontalPodAutoscaler")
    scaled = one(manifests, "ScaledObject")
    deployment = one(manifests, "Deployment")
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert "replicas" not in deployment["spec"]
    triggers = scaled["spec"]["triggers"]
    assert [t["metadata"]["topic"] for t in triggers] == ["dugaa.events", "dugaa.events.priority"]
    for trigger in triggers:
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["consumerGroup"] == "dugaa-dispatcher"
        assert trigger["metadata"]["bootstrapServers"] == "kafka-0.kafka:9092,kafka-1.kafka:9092"
        assert trigger["metadata"]["lagThreshold"] == "500"
        assert trigger["authenticationRef"] == {"name": "kafka-sasl-auth"}


def test_keda_counts_an_uncommitted_partition_from_where_the_workers_start_it(
    rendered, tmp_path: Path
) -> None:
    """The workers start a partition without a committed offset at its earliest record
    (`auto.offset.reset`, which `kafka:` cannot change); KEDA told `latest` counted such a
    partition as a lag of 1, so a new group's backlog never scaled the workers up."""
    from dispatcher.config.settings import Settings
    from dispatcher.kafka.clients import consumer_config

    reset = consumer_config(Settings(kafka={"auto.offset.reset": "latest"}), "g")
    for trigger in one(rendered["keda"], "ScaledObject")["spec"]["triggers"]:
        assert trigger["metadata"]["offsetResetPolicy"] == reset["auto.offset.reset"]
    values = tmp_path / "latest.yaml"
    values.write_text("keda:\n  enabled: true\n  offsetResetPolicy: latest\n")
    refused = template_result([values])
    assert refused.returncode != 0
    assert "/keda/offsetResetPolicy" in refused.stderr


def test_default_render_has_no_autoscaler(rendered) -> None:
    assert not by_kind(rendered["default"], "HorizontalPodAutoscaler")
    assert not by_kind(rendered["default"], "ScaledObject")
    assert one(rendered["default"], "Deployment")["spec"]["replicas"] == 2


def test_hpa_and_keda_together_fail_the_render_with_a_clear_message() -> None:
    result = template_result(sets={"autoscaling.enabled": "true", "keda.enabled": "true"})
    assert result.returncode != 0
    assert "enable either the HPA or the KEDA ScaledObject, never both" in result.stderr


def test_consume_renders_into_the_config_and_share_mode_refuses_keda() -> None:
    manifests = render(sets={"consume": "share", "autoscaling.enabled": "true"})
    config = dispatcher_config(manifests)
    assert config["consume"] == "share"
    assert by_kind(manifests, "HorizontalPodAutoscaler")
    result = template_result(sets={"consume": "share", "keda.enabled": "true"})
    assert result.returncode != 0
    assert "consume: share does not have" in result.stderr


CHART_OWNED = {
    "consume": ({"config.consume": "share"}, "use the top-level consume"),
    "drain_timeout": ({"config.drain_timeout": "90s"}, "use drainTimeoutSeconds"),
    "hooks_file": (
        {
            "config.hooks_file": "/h.yaml",
            "hooks[0].id": "a",
            "hooks[0].url": "x",
            "hooks[0].events[0]": "e",
        },
        "set either hooks or config.hooks_file",
    ),
    "admin port": ({"config.admin.port": "9999"}, "use admin.port"),
    "admin tokens": ({"config.admin.tokens[0].role": "admin"}, "use admin.tokens"),
}


@pytest.mark.parametrize("case", CHART_OWNED)
def test_a_config_key_the_chart_sets_from_its_own_value_fails_the_render(case: str) -> None:
    """dispatcher.yaml takes these from the chart's own values: written under `config` they
    were overwritten without a word (config.consume: share ran a consumer group)."""
    sets, message = CHART_OWNED[case]
    result = template_result(sets=sets)
    assert result.returncode != 0, f"config {case} was overwritten silently"
    assert message in result.stderr


@pytest.mark.parametrize(
    ("variable", "message"),
    [
        ("DISPATCHER_HTTP_PORT", "use config.http_port"),
        ("DISPATCHER_DRAIN_TIMEOUT", "use drainTimeoutSeconds"),
        ("DISPATCHER_CONSUME", "use the top-level consume"),
        ("DISPATCHER_ADMIN_PORT", "use admin.port"),
    ],
)
def test_an_extra_variable_overriding_a_key_the_chart_writes_fails_the_render(
    tmp_path: Path, variable: str, message: str
) -> None:
    """extraEnv is documented for DISPATCHER_<KEY> overrides; one of a key the chart writes
    went past its checks: DISPATCHER_HTTP_PORT moved the worker off the port its probes
    watch, DISPATCHER_DRAIN_TIMEOUT past the grace period."""
    from dispatcher.config.settings import load_settings

    values = tmp_path / "extra.yaml"
    values.write_text(f"extraEnv:\n  - {{name: {variable}, value: '9500'}}\n")
    result = template_result([values])
    assert result.returncode != 0, f"{variable} overrode the chart's own key"
    assert f"extraEnv {variable}" in result.stderr
    assert message in result.stderr
    fine = tmp_path / "fine.yaml"
    fine.write_text("extraEnv:\n  - {name: DISPATCHER_LOG_LEVEL, value: DEBUG}\n")
    manifests = render([fine])
    path = tmp_path / "dispatcher.yaml"
    path.write_text(one(manifests, "ConfigMap")["data"]["dispatcher.yaml"])
    environ = pod_environment(one(manifests, "Deployment"))
    assert load_settings(str(path), environ=environ).log_level == "DEBUG"


def test_without_the_admin_service_an_extra_admin_port_variable_fails_the_render(
    tmp_path: Path,
) -> None:
    """The workers' ports skip the admin port of their configuration: one moved by a variable
    the chart cannot read would leave a worker on a port the pod does not declare."""
    values = tmp_path / "extra.yaml"
    values.write_text("extraEnv:\n  - {name: DISPATCHER_ADMIN_PORT, value: '9402'}\n")
    result = template_result([values], sets={"admin.enabled": "false", "workers": "3"})
    assert result.returncode != 0, "DISPATCHER_ADMIN_PORT moved the port the workers skip"
    assert "extraEnv DISPATCHER_ADMIN_PORT" in result.stderr
    assert "use config.admin.port" in result.stderr


def test_the_admin_keys_the_chart_does_not_set_reach_dispatcher_yaml() -> None:
    config = dispatcher_config(
        render(sets={"config.admin.session_ttl": "2h", "config.admin.request_timeout": "10s"})
    )
    assert (config["admin"]["session_ttl"], config["admin"]["request_timeout"]) == ("2h", "10s")
    assert config["admin"]["port"] == 9401
    off = dispatcher_config(render(sets={"admin.enabled": "false", "config.admin.port": "9999"}))
    assert off["admin"] == {"port": 9999}  # no admin service: the chart sets nothing there


# --- values.schema.json ---------------------------------------------------------------------

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
BAD_VALUES = {
    "replica count as text": ({"replicaCount": "two"}, "/replicaCount"),
    "unknown top-level key": ({"replicas": 3}, "replicas"),
    "zero drain timeout": ({"drainTimeoutSeconds": 0}, "/drainTimeoutSeconds"),
    "secret env without key": (
        {"secrets": {"env": [{"name": "X", "secretName": "s"}]}},
        "/secrets/env/0",
    ),
    "inline secret value": (
        {"secrets": {"env": [{"name": "X", "secretName": "s", "key": "k", "value": "hunter2"}]}},
        "/secrets/env/0",
    ),
    "bad KEDA reset policy": ({"keda": {"offsetResetPolicy": "newest"}}, "/keda/offsetResetPolicy"),
    "unknown consume mode": ({"consume": "queue"}, "/consume"),
    "no input topic": ({"config": {"topics": {"events": []}}}, "/config/topics/events"),
    "bad attempts topic": (
        {"config": {"topics": {"events": ["e"], "attempts": "my attempts"}}},
        "/config/topics/attempts",
    ),
    "bad hook id": ({"hooks": [{"id": "SMS KE", "events": ["a"], "url": "x"}]}, "/hooks/0/id"),
    "misspelt config key": ({"config": {"hook_pause_afer": "1h"}}, "hook_pause_afer"),
    "misspelt topics key": ({"config": {"topics": {"events": ["e"], "result": "r"}}}, "result"),
    "misspelt admin key": ({"config": {"admin": {"session_tll": "1h"}}}, "session_tll"),
    "bad config duration": ({"config": {"hook_pause_after": "soon"}}, "/config/hook_pause_after"),
    # the chart's own pod label or annotation again: a duplicate key in the pod's metadata
    "a chart label in podLabels": (
        {"podLabels": {"app.kubernetes.io/instance": "other"}},
        "invalid propertyName 'app.kubernetes.io/instance'",  # (helm names a neighbour's path)
    ),
    "the config checksum in podAnnotations": (
        {"podAnnotations": {"checksum/config": "x"}},
        "invalid propertyName 'checksum/config'",
    ),
    # Kubernetes refuses the Deployment: a liveness or startup probe succeeds once
    "liveness success threshold": (
        {"probes": {"liveness": {"successThreshold": 2}}},
        "/probes/liveness/successThreshold",
    ),
    "startup success threshold": (
        {"probes": {"startup": {"successThreshold": 3}}},
        "/probes/startup/successThreshold",
    ),
}


def test_default_values_satisfy_the_schema() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.validate(values, SCHEMA)
    for files in VARIANTS.values():
        for file in files:
            merged = {**values, **yaml.safe_load(file.read_text())}
            jsonschema.validate(merged, SCHEMA)


@pytest.mark.parametrize("case", BAD_VALUES)
def test_schema_rejects_a_bad_values_file(tmp_path: Path, case: str) -> None:
    values, where = BAD_VALUES[case]
    bad = tmp_path / "bad-values.yaml"
    bad.write_text(yaml.safe_dump(values))
    result = template_result([bad])
    assert result.returncode != 0, f"{case} was accepted"
    assert "values don't meet the specifications of the schema" in result.stderr
    assert where in result.stderr
    lint = helm("lint", "--strict", "--kube-version", KUBE_VERSION, str(CHART), "-f", str(bad))
    assert lint.returncode != 0


def test_the_schema_knows_every_key_of_dispatcher_yaml_and_no_other() -> None:
    """`config` is refused past the keys the dispatcher reads (a misspelt key failed the pods
    at start, not the install), so the two lists must stay one."""
    from dataclasses import fields

    from dispatcher.config.admin import Admin
    from dispatcher.config.secrets import SecretScope
    from dispatcher.config.settings import SCALARS, SECTIONS
    from dispatcher.config.topics import Topics

    config = SCHEMA["properties"]["config"]
    assert config["additionalProperties"] is False
    assert set(config["properties"]) == {*SCALARS, *SECTIONS, "allow_cidrs"}
    for section, kind in (("topics", Topics), ("admin", Admin), ("secrets", SecretScope)):
        schema = config["properties"][section]
        assert schema["additionalProperties"] is False, section
        assert set(schema["properties"]) == {f.name for f in fields(kind)}, section


@pytest.mark.parametrize("value", [0, "0", "2d", "1.5h", 90, "250ms"])
def test_every_duration_the_dispatcher_reads_passes_the_schema(tmp_path: Path, value) -> None:
    """`hook_pause_after: 0` (never pause, as values.yaml says) and days were refused."""
    from dispatcher.config.settings import load_settings

    values = tmp_path / "durations.yaml"
    durations = {"hook_pause_after": value, "hook_failing_after": value}
    topics = {"events": ["e"], "retry": ["500ms", "1.5h", "2d"], "attempts_retention": "7d"}
    values.write_text(yaml.safe_dump({"config": {**durations, "topics": topics}}))
    path = tmp_path / "dispatcher.yaml"
    path.write_text(one(render([values]), "ConfigMap")["data"]["dispatcher.yaml"])
    load_settings(str(path), environ={})


NOTES_PROBE = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
    'data:\n  notes: {{ include "dugaa-dispatcher.notes" . | toJson }}\n'
)


@pytest.fixture(scope="module")
def notes_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the chart that renders NOTES.txt's text into a ConfigMap: `helm template`
    leaves NOTES.txt out (it is one include of the named template "dugaa-dispatcher.notes")."""
    chart = tmp_path_factory.mktemp("notes") / "chart"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "notes-probe.yaml").write_text(NOTES_PROBE)
    return chart


def render_notes(chart: Path, files: list[Path] = (), sets: dict[str, str] | None = None) -> str:
    result = helm(
        "template",
        "rel",
        str(chart),
        "--namespace",
        "dugaa",
        "--kube-version",
        KUBE_VERSION,
        "--show-only",
        "templates/notes-probe.yaml",
        *value_args(list(files), sets),
    )
    assert result.returncode == 0, result.stderr
    notes: str = yaml.safe_load(result.stdout)["data"]["notes"]
    return notes


def test_notes_tell_how_to_check_readiness(notes_chart: Path) -> None:
    assert (CHART / "templates" / "NOTES.txt").read_text().strip() == (
        '{{ include "dugaa-dispatcher.notes" . }}'
    )
    notes = render_notes(notes_chart, [CI_VALUES / "keda-values.yaml"])
    assert "rollout status deployment/rel-dugaa-dispatcher" in notes
    assert "KEDA on consumer-group lag (1-6 replicas, 500 lag per replica)" in notes
    assert "/readyz" in notes


def secret_creation(notes: str) -> tuple[str, dict[str, int]]:
    """The Secret the notes' `kubectl create secret generic` command makes (a line, then the
    lines its trailing backslashes continue it with), and each key's length as its
    `$(openssl rand -hex N)` makes it (2N characters)."""
    import re

    lines = iter(notes.splitlines())
    command = next((line for line in lines if "create secret generic" in line), None)
    assert command is not None, "the notes give no command that creates the tokens Secret"
    while command.endswith("\\"):
        command = command.removesuffix("\\") + next(lines)
    (name,) = re.findall(r"^\s*kubectl -n dugaa create secret generic (\S+)", command)
    lengths = {
        key: 2 * int(size)
        for key, size in re.findall(
            r'--from-literal=([^=]+)="\$\(openssl rand -hex (\d+)\)"', command
        )
    }
    assert len(lengths) == command.count("--from-literal="), command
    return name, lengths


def admin_secret_keys(manifests: list[Manifest]) -> dict[str, set[str]]:
    """Secret name -> the keys the admin pod reads from it as its tokens and session key."""
    (c,) = admin_one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    keys: dict[str, set[str]] = {}
    for e in c["env"]:
        if e["name"].startswith("DUGAA_ADMIN_"):
            ref = e["valueFrom"]["secretKeyRef"]
            keys.setdefault(ref["name"], set()).add(ref["key"])
    return keys


@pytest.mark.parametrize(
    "values",
    [
        "",
        "admin:\n  tokensSecret: console-tokens\n  sessionKey: session-key\n  tokens:\n"
        "    - {key: ops, role: admin}\n    - {key: acme, role: viewer, tenant: acme}\n",
    ],
    ids=["default", "named-secret-session-key-and-a-tenant"],
)
def test_notes_say_how_to_create_the_admin_tokens_secret_the_admin_pod_waits_for(
    notes_chart: Path, tmp_path: Path, values: str
) -> None:
    """The chart never creates the tokens Secret and the admin pod cannot start without it
    (CreateContainerConfigError), yet the notes said nothing of it: they name the Secret and
    give the command that creates it with the keys the admin pod reads, each long enough for
    the admin service to accept, then how to reach the console and the API with a token."""
    from dispatcher.api.auth import MIN_TOKEN_CHARS
    from dispatcher.api.sessions import MIN_KEY_CHARS

    file = tmp_path / "values.yaml"
    file.write_text(values)
    notes = render_notes(notes_chart, [file])
    manifests = render([file])
    ((secret, keys),) = admin_secret_keys(manifests).items()
    name, lengths = secret_creation(notes)
    assert (name, set(lengths)) == (secret, keys)
    session_key = yaml.safe_load(values or "{}").get("admin", {}).get("sessionKey")
    for key, length in lengths.items():
        assert length >= (MIN_KEY_CHARS if key == session_key else MIN_TOKEN_CHARS), key
    admin = admin_one(manifests, "Service")
    port = admin["spec"]["ports"][0]["port"]
    assert f"port-forward svc/{admin['metadata']['name']} {port}:{port}" in notes
    assert "Authorization: Bearer" in notes
    assert (
        f"rollout restart deployment/{admin_one(manifests, 'Deployment')['metadata']['name']}"
        in notes
    )


def test_without_the_admin_service_the_notes_say_nothing_of_its_tokens(notes_chart: Path) -> None:
    notes = render_notes(notes_chart, sets={"admin.enabled": "false"})
    assert "admin-tokens" not in notes
    assert "create secret" not in notes


# --- PrometheusRule, rollout ------------------------------------------------------------------


def test_chart_ships_the_same_alert_rules_as_deploy_prometheus() -> None:
    shipped = (CHART / "files" / "alerts.yml").read_text()
    assert shipped == (REPO / "deploy" / "prometheus" / "alerts.yml").read_text(), (
        "copy deploy/prometheus/alerts.yml to helm/dugaa-dispatcher/files/alerts.yml"
    )


ALERTS_FILE = REPO / "deploy" / "prometheus" / "alerts.yml"
# The job docker-compose's Prometheus scrapes, which the file's queries select
COMPOSE_JOB = 'job="dugaa-dispatcher"'


def prometheus_rule(release: str = "rel", sets: dict[str, str] | None = None) -> Manifest:
    manifests = render(sets={"prometheusRule.enabled": "true", **(sets or {})}, release=release)
    return one(manifests, "PrometheusRule")


def promtool_test(tmp_path: Path, rule_files: dict[str, dict[str, Any]], tests: str) -> None:
    """Runs promtool's unit tests `tests` on the rule files (name -> rules) in tmp_path."""
    for name, rules in rule_files.items():
        (tmp_path / name).write_text(yaml.safe_dump(rules))
    (tmp_path / "alerts.test.yml").write_text(tests)
    result = subprocess.run(
        [require_tool("promtool"), "test", "rules", "alerts.test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_rule_carries_the_alerts_as_the_release_s_own() -> None:
    """The file's alerts, with the release's series selected in place of compose's job, the
    group named after the release, and the release on each alert; the rules' own
    {{ $labels.hook }} templates intact (the file is never run through tpl)."""
    rule = prometheus_rule()
    selector = 'job="rel-dugaa-dispatcher",namespace="dugaa"'
    expected = yaml.safe_load(ALERTS_FILE.read_text().replace(COMPOSE_JOB, selector))
    for group in expected["groups"]:
        group["name"] = "dugaa-dispatcher:dugaa/rel"
        for alert in group["rules"]:
            alert["labels"] |= {"namespace": "dugaa", "release": "rel"}
    assert rule["spec"] == expected
    assert "{{ $labels.hook }}" in json.dumps(rule["spec"])
    assert not by_kind(render(), "PrometheusRule")


def test_the_alerts_select_the_series_the_service_monitor_scrapes() -> None:
    """The Prometheus Operator names a ServiceMonitor's job after the Service (no jobLabel)
    and labels each series with its namespace: what the alerts select."""
    manifests = render(sets={"prometheusRule.enabled": "true", "serviceMonitor.enabled": "true"})
    monitor = one(manifests, "ServiceMonitor")
    assert "jobLabel" not in monitor["spec"]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["dugaa"]}
    service = one(manifests, "Service")
    selector = f'{{job="{service["metadata"]["name"]}",namespace="dugaa"'
    (group,) = one(manifests, "PrometheusRule")["spec"]["groups"]
    for alert in group["rules"]:
        assert alert["expr"].count("dispatcher_") == alert["expr"].count(selector), alert


TWO_RELEASES_TESTS = """
rule_files: [staging.yml, production.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'dispatcher_ready{job="staging-dugaa-dispatcher",namespace="dugaa",pod="s"}'
        values: '0x20'
      - series: 'dispatcher_ready{job="production-dugaa-dispatcher",namespace="dugaa",pod="p"}'
        values: '1x20'
      - series: 'dispatcher_hook_paused{job="production-dugaa-dispatcher",namespace="dugaa",hook="crm"}'
        values: '1x20'
      - series: 'dispatcher_hook_paused{job="staging-dugaa-dispatcher",namespace="dugaa",hook="crm"}'
        values: '1x20'
      - series: 'dispatcher_hook_paused{job="staging-dugaa-dispatcher",namespace="other",hook="tax"}'
        values: '1x20'
    alert_rule_test:
      - eval_time: 10m
        alertname: DispatcherNoReadyWorkers
        exp_alerts:
          - exp_labels: {severity: critical, namespace: dugaa, release: staging}
            exp_annotations:
              summary: "No ready dispatcher worker for 5 minutes"
              description: >-
                No dispatcher worker reports ready (connected to Kafka and assigned
                partitions); events are not being delivered.
              runbook_url: "deploy/RUNBOOK.md#dispatchernoreadyworkers"
      - eval_time: 10m
        alertname: DispatcherHookPaused
        exp_alerts:
          - exp_labels: {severity: critical, namespace: dugaa, release: staging, hook: crm}
            exp_annotations: &paused
              summary: "Hook crm is paused"
              description: >-
                Hook crm is paused for the whole cluster: its events go to the dead-letter
                topic with error kind paused and no request is made. Once its third party
                answers again: dispatcher hooks resume crm --replay.
              runbook_url: "deploy/RUNBOOK.md#dispatcherhookpaused"
          - exp_labels: {severity: critical, namespace: dugaa, release: production, hook: crm}
            exp_annotations: *paused
"""


def test_two_releases_side_by_side_each_alert_on_their_own_series(tmp_path: Path) -> None:
    """Staging and production in one namespace (or two clients' releases): one's ready workers
    do not hide that the other has none, and a hook paused in both pages once for each, never
    as one alert; a third release's series (another namespace) page neither."""
    rules = {name: prometheus_rule(release=name)["spec"] for name in ("staging", "production")}
    names = [group["name"] for spec in rules.values() for group in spec["groups"]]
    assert len(set(names)) == len(names) == 2
    promtool_test(
        tmp_path, {f"{name}.yml": spec for name, spec in rules.items()}, TWO_RELEASES_TESTS
    )


def test_the_release_s_series_may_be_selected_by_labels_of_another_scrape() -> None:
    """Without the chart's ServiceMonitor (pods scraped by their annotations, say), the alerts
    select the series by the matchers the release gives."""
    selector = 'namespace="dugaa",pod=~"rel-dugaa-dispatcher-.*"'
    escaped = selector.replace(",", "\\,")  # --set would split at the comma
    (group,) = prometheus_rule(sets={"prometheusRule.seriesSelector": escaped})["spec"]["groups"]
    for alert in group["rules"]:
        assert "job=" not in alert["expr"]
        assert alert["expr"].count("dispatcher_") == alert["expr"].count("{" + selector), alert


LAG_TESTS = """
rule_files: [alerts.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'dispatcher_consumer_lag{job="rel-dugaa-dispatcher",namespace="dugaa",topic="acme.retries.30s",partition="0"}'
        values: '5000+600x40'
      - series: 'dispatcher_consumer_lag{job="rel-dugaa-dispatcher",namespace="dugaa",topic="dugaa.events",partition="0"}'
        values: '2000+60x40'
    alert_rule_test:
      - eval_time: 30m
        alertname: DispatcherConsumerLagGrowing
        exp_alerts:
          - exp_labels: {severity: warning, topic: dugaa.events, namespace: dugaa, release: rel}
            exp_annotations:
              summary: "Consumer lag on dugaa.events has been growing for 15 minutes"
              description: >-
                The dispatcher group's lag on topic dugaa.events grows by 1 records/s and has
                kept rising for 15 minutes.
              runbook_url: "deploy/RUNBOOK.md#dispatcherconsumerlaggrowing"
"""


def test_a_retry_prefix_of_its_own_keeps_the_tiers_out_of_the_lag_alert(tmp_path: Path) -> None:
    """A tier's lag is records waiting for their due time: the rule leaves the tier topics out
    by the prefix the workers name them with (`<retry_prefix>.<delay>`), whatever it is."""
    rule = prometheus_rule(sets={"config.topics.retry_prefix": "acme.retries"})
    promtool_test(tmp_path, {"alerts.yml": rule["spec"]}, LAG_TESTS)


def test_rollout_replaces_pods_old_before_new(rendered) -> None:
    strategy = one(rendered["default"], "Deployment")["spec"]["strategy"]
    assert strategy == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
    }


# --- the admin service ----------------------------------------------------------------------


def test_the_admin_service_is_one_replica_with_its_index_on_an_empty_dir(rendered) -> None:
    deployment = admin_one(rendered["default"], "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["args"] == ["admin", "--config", "/etc/dispatcher/dispatcher.yaml"]
    assert c["ports"] == [{"name": "admin", "containerPort": 9401, "protocol": "TCP"}]
    assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts["index"] == "/var/lib/dispatcher-admin"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["index"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    config = dispatcher_config(rendered["default"])
    assert config["admin"]["host"] == "0.0.0.0"
    assert config["admin"]["data_dir"] == "/var/lib/dispatcher-admin"


def test_admin_tokens_come_from_an_existing_secret_never_from_values(rendered) -> None:
    c = admin_one(rendered["default"], "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in c["env"]}
    assert env["DUGAA_ADMIN_TOKEN_0"]["valueFrom"]["secretKeyRef"] == {
        "name": "rel-dugaa-dispatcher-admin-tokens",
        "key": "admin-token",
    }
    assert env["DUGAA_ADMIN_TOKEN_1"]["valueFrom"]["secretKeyRef"]["key"] == "viewer-token"
    config = dispatcher_config(rendered["default"])
    assert config["admin"]["tokens"] == [
        {"role": "admin", "token": "${env:DUGAA_ADMIN_TOKEN_0}"},
        {"role": "viewer", "token": "${env:DUGAA_ADMIN_TOKEN_1}"},
    ]
    assert not by_kind(rendered["default"], "Secret")
    named = render(sets={"admin.tokensSecret": "console-tokens"})
    c = admin_one(named, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in c["env"] if "valueFrom" in e} >= {
        "console-tokens"
    }


def test_an_admin_token_may_be_limited_to_a_tenant(tmp_path: Path) -> None:
    values = tmp_path / "tenant-tokens.yaml"
    values.write_text(
        "admin:\n  tokens:\n    - {key: admin-token, role: admin}\n"
        "    - {key: acme-token, role: viewer, tenant: acme}\n"
    )
    config = dispatcher_config(render([values]))
    assert config["admin"]["tokens"] == [
        {"role": "admin", "token": "${env:DUGAA_ADMIN_TOKEN_0}"},
        {"role": "viewer", "tenant": "acme", "token": "${env:DUGAA_ADMIN_TOKEN_1}"},
    ]
    values.write_text("admin:\n  tokens:\n    - {key: t, role: admin, tenant: 'a/b'}\n")
    refused = template_result([values])
    assert refused.returncode != 0
    assert "tenant" in refused.stderr


def test_the_console_believes_forwarded_headers_only_from_the_listed_proxies(
    rendered, tmp_path: Path
) -> None:
    config = dispatcher_config(rendered["default"])
    assert "trusted_proxies" not in config["admin"]
    values = tmp_path / "proxies.yaml"
    values.write_text("admin:\n  trustedProxies: [10.42.0.0/16]\n")
    config = dispatcher_config(render([values]))
    assert config["admin"]["trusted_proxies"] == ["10.42.0.0/16"]
    values.write_text("admin:\n  trustedProxies: 10.42.0.0/16\n")
    assert template_result([values]).returncode != 0  # the schema wants a list


def test_console_sessions_may_be_signed_with_a_key_from_the_tokens_secret(
    rendered, tmp_path: Path
) -> None:
    config = dispatcher_config(rendered["default"])
    assert "session_key" not in config["admin"]
    values = tmp_path / "session.yaml"
    values.write_text("admin:\n  sessionKey: session-key\n")
    manifests = render([values])
    config = dispatcher_config(manifests)
    assert config["admin"]["session_key"] == "${env:DUGAA_ADMIN_SESSION_KEY}"
    c = admin_one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in c["env"]}
    assert env["DUGAA_ADMIN_SESSION_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "rel-dugaa-dispatcher-admin-tokens",
        "key": "session-key",
    }


def test_no_worker_selector_takes_the_admin_pods_and_the_admin_service_takes_only_them(
    rendered,
) -> None:
    manifests = rendered["default"]
    admin_pod = admin_one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    worker_pod = one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    for selector in (
        one(manifests, "Deployment")["spec"]["selector"]["matchLabels"],
        one(manifests, "Service")["spec"]["selector"],
        one(manifests, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
    ):
        assert not selector.items() <= admin_pod.items()
    admin_selector = admin_one(manifests, "Service")["spec"]["selector"]
    assert admin_selector.items() <= admin_pod.items()
    assert not admin_selector.items() <= worker_pod.items()


def test_the_admin_index_may_live_on_an_existing_claim_or_be_switched_off() -> None:
    kept = render(sets={"admin.persistence.existingClaim": "admin-index"})
    pod = admin_one(kept, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["index"]["persistentVolumeClaim"] == {"claimName": "admin-index"}
    off = render(sets={"admin.enabled": "false"})
    assert not [m for m in off if is_admin(m)]
    assert "admin" not in dispatcher_config(off)


NODE_AFFINITY = {
    "requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["dugaa"]}]}
        ]
    }
}
WORKER_ANTI_AFFINITY = {
    "requiredDuringSchedulingIgnoredDuringExecution": [
        {
            "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "dispatcher"}},
            "topologyKey": "kubernetes.io/hostname",
        }
    ]
}
RELEASE_POD_VALUES = {
    "podAnnotations": {"sidecar.istio.io/inject": "false"},
    "podLabels": {"network-access/kafka": "allowed"},
    "priorityClassName": "dugaa-high",
    "imagePullSecrets": [{"name": "registry-credentials"}],
    "nodeSelector": {"kubernetes.io/arch": "amd64"},
    "tolerations": [{"key": "dedicated", "value": "dugaa", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": NODE_AFFINITY, "podAntiAffinity": WORKER_ANTI_AFFINITY},
    "topologySpreadConstraints": [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "dispatcher"}},
        }
    ],
}


@pytest.fixture(scope="module")
def release_pod_values(tmp_path_factory: pytest.TempPathFactory) -> list[Manifest]:
    values = tmp_path_factory.mktemp("pod-values") / "pod-values.yaml"
    values.write_text(yaml.safe_dump(RELEASE_POD_VALUES))
    return render([values])


def pod_template(deployment: Manifest) -> Manifest:
    template: Manifest = deployment["spec"]["template"]
    return template


def test_the_admin_pod_carries_the_release_pod_annotations_and_labels(
    release_pod_values: list[Manifest],
) -> None:
    """podAnnotations and podLabels reached the workers only: an admin pod without the label
    a NetworkPolicy lets reach Kafka, or with the sidecar the annotation switches off, could
    not start (its start reaches Kafka) while the workers ran."""
    manifests = release_pod_values
    for deployment in (one(manifests, "Deployment"), admin_one(manifests, "Deployment")):
        metadata = pod_template(deployment)["metadata"]
        assert metadata["annotations"]["sidecar.istio.io/inject"] == "false"
        assert len(metadata["annotations"]["checksum/config"]) == 64
        assert metadata["labels"]["network-access/kafka"] == "allowed"
    admin = admin_one(manifests, "Deployment")
    selector = admin["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_template(admin)["metadata"]["labels"].items()


def test_the_admin_pod_runs_on_the_nodes_and_at_the_priority_the_release_asks_for(
    release_pod_values: list[Manifest],
) -> None:
    """priorityClassName and affinity reached the workers only: with the release kept to a
    node pool by node affinity, the admin pod was scheduled anywhere, at no priority."""
    manifests = release_pod_values
    worker = pod_template(one(manifests, "Deployment"))["spec"]
    admin = pod_template(admin_one(manifests, "Deployment"))["spec"]
    for pod in (worker, admin):
        assert pod["priorityClassName"] == "dugaa-high"
        assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
        assert pod["nodeSelector"] == {"kubernetes.io/arch": "amd64"}
        assert pod["tolerations"] == RELEASE_POD_VALUES["tolerations"]
        assert pod["affinity"]["nodeAffinity"] == NODE_AFFINITY
    # The workers' places among each other stay theirs: a required anti-affinity to the
    # workers would keep the one admin pod off every node that runs a worker.
    assert worker["affinity"]["podAntiAffinity"] == WORKER_ANTI_AFFINITY
    assert worker["topologySpreadConstraints"] == RELEASE_POD_VALUES["topologySpreadConstraints"]
    assert set(admin["affinity"]) == {"nodeAffinity"}
    assert "topologySpreadConstraints" not in admin


def test_without_pod_values_neither_pod_has_scheduling_fields(rendered) -> None:
    for deployment in (
        one(rendered["default"], "Deployment"),
        admin_one(rendered["default"], "Deployment"),
    ):
        pod = pod_template(deployment)["spec"]
        assert not {"priorityClassName", "imagePullSecrets", "nodeSelector", "tolerations"} & set(
            pod
        )
        assert not {"affinity", "topologySpreadConstraints"} & set(pod)


PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


def admin_container(manifests: list[Manifest]) -> Manifest:
    (found,) = pod_template(admin_one(manifests, "Deployment"))["spec"]["containers"]
    return found


def test_the_admin_probes_time_as_the_chart_s_probes_values_say() -> None:
    """The admin container's probes were written out (no timeoutSeconds: Kubernetes' 1 s),
    whatever `probes` said: a release that gave its probes more time on slow nodes saw the
    admin pod alone restarted by its liveness probe."""
    manifests = render(
        sets={
            "probes.startup.failureThreshold": "60",
            "probes.liveness.timeoutSeconds": "7",
            "probes.liveness.periodSeconds": "20",
            "probes.readiness.timeoutSeconds": "6",
            "probes.readiness.successThreshold": "2",
        }
    )
    worker, admin = container(manifests), admin_container(manifests)
    for probe in PROBES:
        assert admin[probe]["httpGet"] == {"path": "/healthz", "port": "admin"}
        timing = {k: v for k, v in worker[probe].items() if k != "httpGet"}
        assert {k: v for k, v in admin[probe].items() if k != "httpGet"} == timing
    assert admin["startupProbe"]["failureThreshold"] == 60
    assert admin["livenessProbe"]["timeoutSeconds"] == 7
    assert admin["readinessProbe"]["successThreshold"] == 2


def test_the_admin_probes_may_be_set_apart_from_the_workers() -> None:
    manifests = render(
        sets={
            "admin.probes.liveness.timeoutSeconds": "10",
            "admin.probes.startup.failureThreshold": "120",
        }
    )
    worker, admin = container(manifests), admin_container(manifests)
    assert admin["livenessProbe"]["timeoutSeconds"] == 10
    assert admin["livenessProbe"]["periodSeconds"] == worker["livenessProbe"]["periodSeconds"]
    assert admin["startupProbe"]["failureThreshold"] == 120
    assert worker["livenessProbe"]["timeoutSeconds"] == 3
    assert worker["startupProbe"]["failureThreshold"] == 24
    assert admin["readinessProbe"] == {
        **worker["readinessProbe"],
        "httpGet": {"path": "/healthz", "port": "admin"},
    }


def test_the_rendered_configuration_loads_as_the_dispatcher_reads_it(rendered, tmp_path) -> None:
    from dispatcher.config.settings import load_settings

    path = tmp_path / "dispatcher.yaml"
    path.write_text(one(rendered["default"], "ConfigMap")["data"]["dispatcher.yaml"])
    admin = load_settings(str(path), environ={}).admin
    assert (admin.host, admin.port, admin.retention) == ("0.0.0.0", 9401, 168 * 3600)
    assert [t.role for t in admin.tokens] == ["admin", "viewer"]


def pod_environment(deployment: Manifest) -> dict[str, str]:
    """The variables Kubernetes would set in the deployment's container: a Secret's key becomes
    a made-up value long enough for a token or a session key."""
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return {
        e["name"]: e.get("value") or f"value-of-{e['name']}-from-its-secret-0123456789abcdef"
        for e in c["env"]
    }


@pytest.mark.parametrize(
    "values",
    [
        "",
        "admin:\n  sessionKey: session-key\n  tokens:\n    - {key: a, role: admin}\n"
        "    - {key: b, role: viewer, tenant: acme}\n    - {key: c, role: admin}\n",
    ],
    ids=["default", "session-key-and-three-tokens"],
)
def test_each_pod_loads_the_rendered_configuration_with_its_rendered_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, values: str
) -> None:
    """What `dispatcher admin` and `dispatcher run` do at start: read dispatcher.yaml with the
    pod's variables (the DISPATCHER_<SECTION>_<KEY> overrides among them), then resolve the
    admin tokens and the session key they reference."""
    from dispatcher.api.auth import Tokens
    from dispatcher.api.sessions import Sessions
    from dispatcher.config.settings import load_settings

    file = tmp_path / "values.yaml"
    file.write_text(values)
    manifests = render([file])
    path = tmp_path / "dispatcher.yaml"
    path.write_text(one(manifests, "ConfigMap")["data"]["dispatcher.yaml"])
    for deployment in (one(manifests, "Deployment"), admin_one(manifests, "Deployment")):
        environ = pod_environment(deployment)
        for name in [n for n in os.environ if n.startswith("DISPATCHER_")]:
            monkeypatch.delenv(name)
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        settings = load_settings(str(path), environ=environ)
        if is_admin(deployment):
            tokens = Tokens.from_settings(settings.admin)
            Sessions.from_settings(settings.admin)
            count = len(yaml.safe_load(values or "{}").get("admin", {}).get("tokens", [1, 2]))
            assert len(settings.admin.tokens) == count
            first = environ["DUGAA_ADMIN_TOKEN_0"]
            assert tokens.grant_of(first) is not None


def service_links(services: list[Manifest]) -> dict[str, str]:
    """The variables the kubelet adds to a pod for each Service of its namespace unless the pod
    sets `enableServiceLinks: false` (Docker-link style, kubelet `envvars.FromServices`): the
    Service's name upper-cased, '-' as '_', then _SERVICE_HOST, _SERVICE_PORT[_<PORT NAME>],
    _PORT and _PORT_<port>_TCP[_PROTO|_PORT|_ADDR]."""
    env = {}
    for service in services:
        prefix = service["metadata"]["name"].upper().replace("-", "_")
        ports = service["spec"]["ports"]
        env[f"{prefix}_SERVICE_HOST"] = "10.96.0.10"
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        env[f"{prefix}_PORT"] = f"tcp://10.96.0.10:{ports[0]['port']}"
        for port in ports:
            env[f"{prefix}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = "1"
            for suffix in ("", "_PROTO", "_PORT", "_ADDR"):
                env[f"{prefix}_PORT_{port['port']}_TCP{suffix}"] = "1"
    return env


@pytest.mark.parametrize(
    ("release", "sets"),
    [("dispatcher", {}), ("rel", {"fullnameOverride": "dispatcher"})],
    ids=["release-dispatcher", "fullname-dispatcher"],
)
def test_a_release_named_dispatcher_loads_its_configuration_beside_its_services(
    tmp_path: Path, release: str, sets: dict[str, str]
) -> None:
    """The release `dispatcher` (deploy/README's install command once): its Services are then
    dispatcher-..., and the kubelet's service-link variables of them (DISPATCHER_..._SERVICE_HOST)
    would be refused as unknown DISPATCHER_ overrides, every pod exiting 1 at start. The pods
    ask for no service links; any DISPATCHER_ variable left is one the chart sets."""
    from dispatcher.config.settings import load_settings

    manifests = render(sets=sets, release=release)
    services = [m for m in manifests if m["kind"] == "Service"]
    assert any(s["metadata"]["name"].startswith("dispatcher") for s in services)
    path = tmp_path / "dispatcher.yaml"
    path.write_text(one(manifests, "ConfigMap")["data"]["dispatcher.yaml"])
    for deployment in (one(manifests, "Deployment"), admin_one(manifests, "Deployment")):
        pod = deployment["spec"]["template"]["spec"]
        environ = service_links(services) if pod.get("enableServiceLinks", True) else {}
        environ.update(pod_environment(deployment))
        load_settings(str(path), environ=environ)


def test_the_runbook_names_the_objects_of_the_release_deploy_readme_installs() -> None:
    """deploy/README installed the release `dispatcher` (objects dispatcher-dugaa-dispatcher)
    and the runbook's commands name deploy/ and svc/ dugaa-dispatcher: not found."""
    import re

    readme = (REPO / "deploy" / "README.md").read_text()
    (release,) = re.findall(r"helm install (\S+) helm/dugaa-dispatcher", readme)
    manifests = render(release=release)
    names = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    runbook = (REPO / "deploy" / "RUNBOOK.md").read_text()
    kinds = {"deploy": "Deployment", "svc": "Service"}
    commands = [line for line in runbook.splitlines() if line.startswith("kubectl ")]
    named = [n for line in commands for n in re.findall(r" (deploy|svc)/([a-z0-9-]+)", line)]
    assert named
    for short, name in named:
        assert (kinds[short], name) in names, f"{short}/{name} (release {release})"


def test_the_admin_token_variables_stay_out_of_reach_of_hooks_from_the_store() -> None:
    """Hooks from the hook store may read the variables starting with secrets.env_prefix: a
    prefix that covers the admin tokens' variables fails the render."""
    refused = template_result(sets={"config.secrets.env_prefix": "DUGAA_"})
    assert refused.returncode != 0
    assert "env_prefix" in refused.stderr
    assert template_result(sets={"config.secrets.env_prefix": "DUGAA_SECRET_"}).returncode == 0


def test_otel_variables_reach_the_workers_and_the_admin_service(rendered) -> None:
    manifests = rendered["tracing"]
    (admin,) = admin_one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    for each in (container(manifests), admin):
        env = {e["name"]: e.get("value") for e in each["env"]}
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4318"
        assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.25"
    default = {e["name"] for e in container(rendered["default"])["env"]}
    assert not {name for name in default if name.startswith("OTEL_")}


def test_each_alerts_runbook_url_is_a_link_into_the_runbook_url_given() -> None:
    """Alertmanager and Grafana link a runbook_url: the repository's path is only text."""
    base = "https://git.example.com/dugaa/dispatcher/blob/main/deploy/RUNBOOK.md"
    (group,) = prometheus_rule(sets={"prometheusRule.runbookUrl": base})["spec"]["groups"]
    (as_written,) = prometheus_rule()["spec"]["groups"]
    for alert, written in zip(group["rules"], as_written["rules"], strict=True):
        anchor = written["annotations"]["runbook_url"].removeprefix("deploy/RUNBOOK.md")
        assert anchor.startswith("#dispatcher"), written
        assert alert["annotations"]["runbook_url"] == base + anchor
