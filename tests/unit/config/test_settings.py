"""The service configuration: defaults, file and environment, errors naming the place, secrets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dispatcher.config.secrets import Secret
from dispatcher.config.settings import Settings, load_settings
from dispatcher.config.topics import Topics
from dispatcher.errors import ConfigError

SECRET_VALUE = "s3cr3t-Pa55w0rd"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "dispatcher.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_without_a_file_every_key_has_its_default() -> None:
    settings = load_settings(None, environ={})

    assert settings == Settings(source="<defaults>")
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.group_id == "dugaa-dispatcher"
    assert settings.http_port == 9400
    assert settings.topics == Topics()
    assert settings.topics.retry_topics == (
        "dugaa.dispatch.retry.30s",
        "dugaa.dispatch.retry.5m",
        "dugaa.dispatch.retry.1h",
    )
    assert settings.allow_private_networks is False
    assert settings.consume == "group"


def test_an_empty_file_means_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing yet\n")

    settings = load_settings(path, environ={})

    assert settings.group_id == "dugaa-dispatcher"
    assert settings.source == path


def test_the_file_sets_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "kafka:\n"
        "  bootstrap.servers: broker-1:9092,broker-2:9092\n"
        "  security.protocol: SASL_SSL\n"
        "group_id: billing\n"
        "topics:\n"
        "  events: [orders, parcels]\n"
        "  retry: [10s, 2m]\n"
        "  dead_letter: billing.dlq\n"
        "http_port: 9500\n"
        "drain_timeout: 1m\n",
    )

    settings = load_settings(path, environ={})

    assert settings.kafka_config() == {
        "bootstrap.servers": "broker-1:9092,broker-2:9092",
        "security.protocol": "SASL_SSL",
    }
    assert settings.group_id == "billing"
    assert settings.topics.events == ("orders", "parcels")
    assert settings.topics.retry == (10.0, 120.0)
    assert settings.topics.retry_topics == ("dugaa.dispatch.retry.10s", "dugaa.dispatch.retry.2m")
    assert settings.topics.dead_letter == "billing.dlq"
    assert settings.topics.results == "dugaa.dispatch.results"
    assert settings.http_port == 9500
    assert settings.drain_timeout == 60.0


def test_environment_variables_override_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "kafka:\n  bootstrap.servers: file:9092\n  client.id: from-file\n"
        "group_id: from-file\n"
        "topics:\n  retry: [1h]\n  results: r\n",
    )
    environ = {
        "DISPATCHER_KAFKA_BOOTSTRAP_SERVERS": "env:9092",
        "DISPATCHER_GROUP_ID": "from-env",
        "DISPATCHER_TOPICS_RETRY": "15s, 5m",
        "DISPATCHER_TOPICS_DEAD_LETTER": "env.dlq",
        "DISPATCHER_ALLOW_PRIVATE_NETWORKS": "yes",
        "DISPATCHER_HTTP_PORT": "9999",
        "OTHER_GROUP_ID": "ignored",
    }

    settings = load_settings(path, environ=environ)

    assert settings.kafka_config() == {"bootstrap.servers": "env:9092", "client.id": "from-file"}
    assert settings.group_id == "from-env"
    assert settings.topics.retry == (15.0, 300.0)
    assert settings.topics.dead_letter == "env.dlq"
    assert settings.topics.results == "r"
    assert settings.allow_private_networks is True
    assert settings.http_port == 9999


def test_environment_variables_apply_without_a_file() -> None:
    settings = load_settings(
        None, environ={"DISPATCHER_KAFKA_BOOTSTRAP_SERVERS": "env:9092", "DISPATCHER_CONFIG": "x"}
    )

    assert settings.bootstrap_servers == "env:9092"


def test_kafka_properties_given_keep_the_default_bootstrap_servers(tmp_path: Path) -> None:
    """Every key has a default: a `kafka:` property set (in the file, or by an override with
    no file) leaves `bootstrap.servers` at its default unless it is set too."""
    environ = {"DISPATCHER_KAFKA_CLIENT_ID": "dispatcher-7"}
    from_environment = load_settings(None, environ=environ)
    assert from_environment.kafka == {
        "bootstrap.servers": "127.0.0.1:9092",
        "client.id": "dispatcher-7",
    }
    from_file = load_settings(write(tmp_path, "kafka:\n  linger.ms: 5\n"), environ={})
    assert from_file.kafka == {"bootstrap.servers": "127.0.0.1:9092", "linger.ms": 5}


def test_an_environment_override_fills_an_empty_section(tmp_path: Path) -> None:
    path = write(tmp_path, "kafka:\ngroup_id: g\n")

    settings = load_settings(path, environ={"DISPATCHER_KAFKA_BOOTSTRAP_SERVERS": "env:9092"})

    assert settings.bootstrap_servers == "env:9092"


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("DISPATCHER_HTTP_PORT", "abc", "http_port: must be an integer, not 'abc'"),
        ("DISPATCHER_MAX_INFLIGHT", "0", "max_inflight: must be 1 or more, not 0"),
        ("DISPATCHER_TOPICS_RETRY", "5m,30s", "topics.retry: the tiers' delays must grow"),
        ("DISPATCHER_ADMIN_PORT", "99999", "admin.port: must be a port"),
        ("DISPATCHER_TOPICS_RESULT", "r", "topics.result: unknown key"),
        ("DISPATCHER_ALLOW_CIDRS", "zz", "allow_cidrs: 'zz' does not appear to be"),
    ],
)
def test_a_bad_value_of_an_environment_variable_names_the_variable_not_a_line_of_the_file(
    tmp_path: Path, variable: str, value: str, said: str
) -> None:
    """It was said to be at the file's line of the key, or at line 1 of a file that does not
    set the key at all (`<defaults>:1:` without a file)."""
    path = write(tmp_path, "group_id: g\nhttp_port: 9400\ntopics:\n  retry: [30s]\n")
    for where in (path, None):
        with pytest.raises(ConfigError) as caught:
            load_settings(where, environ={variable: value})
        assert str(caught.value).startswith(f"environment variable {variable}: {said}")


def test_log_level_takes_a_level_of_logging_in_any_case_and_refuses_others(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "log_level: warning\n"), environ={}).log_level == "WARNING"
    assert load_settings(None, environ={"DISPATCHER_LOG_LEVEL": "Debug"}).log_level == "DEBUG"
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "group_id: g\nlog_level: LOUD\n"), environ={})
    assert str(caught.value).endswith(
        ":2: log_level: must be one of DEBUG, INFO, WARNING, ERROR, not 'LOUD'"
    )


def test_admin_tokens_from_the_environment_are_refused_as_set_in_the_file_only() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={"DISPATCHER_ADMIN_TOKENS": "a-token-of-16-characters"})
    assert str(caught.value) == (
        "environment variable DISPATCHER_ADMIN_TOKENS: admin.tokens is set in the configuration"
        " file only (each token there may be a ${env:NAME} reference)"
    )
    assert "a-token-of-16-characters" not in str(caught.value)


def test_an_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "group_id: g\nhttp_port: 1\ngroup_idd: typo\n")

    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})

    assert str(caught.value).startswith(f"{path}:3: group_idd: unknown key")


def test_an_unknown_topics_key_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "group_id: g\ntopics:\n  results: r\n  result: typo\n")

    with pytest.raises(ConfigError, match=r"topics\.result: unknown key") as caught:
        load_settings(path, environ={})

    assert str(caught.value).startswith(f"{path}:")


def test_an_unknown_topics_key_names_its_own_line(tmp_path: Path) -> None:
    path = write(tmp_path, "group_id: g\ntopics:\n  results: r\n  result: typo\n")

    with pytest.raises(ConfigError, match=rf"^{re.escape(path)}:4: topics\.result"):
        load_settings(path, environ={})


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("http_port: lots\n", "http_port", 1),
        ("allow_private_networks: maybe\n", "allow_private_networks", 1),
        ("drain_timeout: forever\n", "drain_timeout", 1),
        ("result_format: protobuf\n", "result_format", 1),
        ("group_id: g\nconsume: queue\n", "consume", 2),
        ("topics:\n  retry: [30s, soon]\n", "topics.retry", 2),
        ("topics:\n  retry: [5m, 30s]\n", "topics.retry", 2),
        ("topics:\n  retry: [30s, 30s]\n", "topics.retry", 2),
        ("kafka: [a, b]\n", "kafka", 1),
        ("hook_pause_after: a week\n", "hook_pause_after", 1),
        ("hook_failing_after: soon\n", "hook_failing_after", 1),
        ("hook_health_interval: 0s\n", "hook_health_interval", 1),
        ("topics:\n  health: ''\n", "topics.health", 2),
        ("max_inflight: 0\n", "max_inflight", 1),
        ("group_id: g\nmax_inflight_per_partition: -5\n", "max_inflight_per_partition", 2),
        ("local_retries: -1\n", "local_retries", 1),
        ("http_port: 70000\n", "http_port", 1),
        ("group_id: g\nhttp_port: -1\n", "http_port", 2),
        ("admin:\n  port: 123456\n", "admin.port", 2),
        ("admin:\n  request_timeout: -5\n", "admin.request_timeout", 2),
        ("admin:\n  request_timeout: 0\n", "admin.request_timeout", 2),
        ("admin:\n  session_ttl: -1\n", "admin.session_ttl", 2),
        ("admin:\n  retention: 0s\n", "admin.retention", 2),
        ("admin:\n  max_records: 0\n", "admin.max_records", 2),
        ("admin:\n  max_body_bytes: -1\n", "admin.max_body_bytes", 2),
        ("topics:\n  retry: [-30, 60]\n", "topics.retry", 2),
        ("topics:\n  retry: [0, 60]\n", "topics.retry", 2),
        ("drain_timeout: -1\n", "drain_timeout", 1),
        ("hook_pause_after: -60\n", "hook_pause_after", 1),
    ],
)
def test_an_invalid_value_names_its_key(tmp_path: Path, text: str, key: str, line: int) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError, match=rf"^{re.escape(path)}:{line}: {re.escape(key)}: "):
        load_settings(path, environ={})


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "group_id: g\nhttp_port: 1\nkafka: [unclosed\n")

    with pytest.raises(ConfigError, match=rf"^{re.escape(path)}:\d+: invalid YAML"):
        load_settings(path, environ={})


def test_invalid_yaml_on_a_middle_line_names_that_line(tmp_path: Path) -> None:
    path = write(tmp_path, "group_id: g\nhttp_port: : 1\nlog_level: INFO\n")

    with pytest.raises(ConfigError, match=rf"^{re.escape(path)}:2: invalid YAML"):
        load_settings(path, environ={})


def test_a_document_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "- a\n- b\n")

    with pytest.raises(ConfigError, match=rf"^{re.escape(path)}:1: .*mapping"):
        load_settings(path, environ={})


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(str(tmp_path / "absent.yaml"), environ={})


def test_an_env_secret_in_the_kafka_section_is_resolved_and_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUGAA_TEST_KAFKA_PASSWORD", SECRET_VALUE)
    path = write(
        tmp_path,
        "kafka:\n"
        "  bootstrap.servers: b:9092\n"
        "  sasl.username: dispatcher\n"
        "  sasl.password: ${env:DUGAA_TEST_KAFKA_PASSWORD}\n",
    )

    settings = load_settings(path, environ={})

    assert isinstance(settings.kafka["sasl.password"], Secret)
    assert SECRET_VALUE not in repr(settings)
    assert SECRET_VALUE not in str(settings)
    assert SECRET_VALUE not in f"{settings.kafka}"
    assert settings.kafka_config()["sasl.password"] == SECRET_VALUE


def test_an_env_secret_given_through_an_override_is_resolved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DUGAA_TEST_KAFKA_PASSWORD", SECRET_VALUE)
    environ = {"DISPATCHER_KAFKA_SASL_PASSWORD": "${env:DUGAA_TEST_KAFKA_PASSWORD}"}

    settings = load_settings(None, environ=environ)

    assert SECRET_VALUE not in repr(settings)
    assert settings.kafka_config()["sasl.password"] == SECRET_VALUE


def test_a_missing_env_secret_is_a_config_error_without_any_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUGAA_TEST_KAFKA_USER_SECRET", SECRET_VALUE)
    monkeypatch.delenv("DUGAA_TEST_KAFKA_ABSENT", raising=False)
    path = write(
        tmp_path,
        "kafka:\n"
        "  bootstrap.servers: b:9092\n"
        "  sasl.username: ${env:DUGAA_TEST_KAFKA_USER_SECRET}\n"
        "  sasl.password: ${env:DUGAA_TEST_KAFKA_ABSENT}\n",
    )

    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})

    message = str(caught.value)
    assert "DUGAA_TEST_KAFKA_ABSENT" in message
    assert "sasl.password" in message
    assert SECRET_VALUE not in message
    assert SECRET_VALUE not in repr(caught.value)


def test_a_file_secret_is_resolved_and_a_missing_one_is_a_config_error(tmp_path: Path) -> None:
    secret_file = tmp_path / "password"
    secret_file.write_text(SECRET_VALUE + "\n", encoding="utf-8")
    path = write(tmp_path, f"kafka:\n  sasl.password: ${{file:{secret_file}}}\n")

    assert load_settings(path, environ={}).kafka_config()["sasl.password"] == SECRET_VALUE

    path = write(tmp_path, f"kafka:\n  sasl.password: ${{file:{tmp_path / 'absent'}}}\n")
    with pytest.raises(ConfigError, match="cannot read secret file"):
        load_settings(path, environ={})


def test_consume_share_selects_queue_mode_from_the_file_or_the_environment(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "consume: share\n"), environ={}).consume == "share"
    assert load_settings(None, environ={"DISPATCHER_CONSUME": "share"}).consume == "share"


def test_hook_health_settings_have_defaults_and_parse_durations(tmp_path: Path) -> None:
    defaults = load_settings(None, environ={})
    assert (defaults.hook_pause_after, defaults.hook_failing_after) == (86400.0, 300.0)
    assert defaults.hook_health_interval == 5.0
    assert defaults.topics.health == "dugaa.dispatch.health"
    assert defaults.topics.operations == "dugaa.dispatch.operations"
    path = write(
        tmp_path,
        "hook_pause_after: 2h\nhook_failing_after: 10m\nhook_health_interval: 500ms\n"
        "topics:\n  operations: ''\n",
    )
    settings = load_settings(path, environ={})
    assert (settings.hook_pause_after, settings.hook_failing_after) == (7200.0, 600.0)
    assert settings.hook_health_interval == 0.5
    assert settings.topics.operations == ""  # no operational events


def test_retry_bundles_are_on_by_default_and_switch_off_from_the_file_or_the_environment(
    tmp_path: Path,
) -> None:
    assert load_settings(None, environ={}).retry_bundles is True
    assert (
        load_settings(write(tmp_path, "retry_bundles: false\n"), environ={}).retry_bundles is False
    )
    assert load_settings(None, environ={"DISPATCHER_RETRY_BUNDLES": "off"}).retry_bundles is False
    with pytest.raises(ConfigError, match="retry_bundles"):
        load_settings(write(tmp_path, "retry_bundles: sometimes\n"), environ={})


def test_kafka_wait_is_15s_by_default_and_a_duration_above_0_from_the_file_or_the_environment(
    tmp_path: Path,
) -> None:
    assert load_settings(None, environ={}).kafka_wait == 15.0
    assert load_settings(write(tmp_path, "kafka_wait: 2m\n"), environ={}).kafka_wait == 120.0
    overridden = load_settings(None, environ={"DISPATCHER_KAFKA_WAIT": "500ms"})
    assert overridden.kafka_wait == 0.5
    assert "wait" not in overridden.kafka  # the setting, not a librdkafka property of `kafka:`
    for never in ("0", "0s"):  # no wait at all: every command would give up unasked
        with pytest.raises(ConfigError, match="kafka_wait: must be a duration above 0"):
            load_settings(write(tmp_path, f"kafka_wait: {never}\n"), environ={})


def test_liveness_timeout_is_120s_by_default_and_a_duration_above_0(tmp_path: Path) -> None:
    assert load_settings(None, environ={}).liveness_timeout == 120.0
    configured = write(tmp_path, "liveness_timeout: 5m\n")
    assert load_settings(configured, environ={}).liveness_timeout == 300.0
    overridden = load_settings(None, environ={"DISPATCHER_LIVENESS_TIMEOUT": "1s"})
    assert overridden.liveness_timeout == 1.0
    for never in ("0", "0s"):  # every part would be stalled between two of its turns
        with pytest.raises(ConfigError, match="liveness_timeout: must be a duration above 0"):
            load_settings(write(tmp_path, f"liveness_timeout: {never}\n"), environ={})


def test_the_attempts_topic_is_on_by_default_and_an_empty_name_switches_it_off(
    tmp_path: Path,
) -> None:
    assert load_settings(None, environ={}).topics.attempts == "dugaa.dispatch.attempts"
    named = write(tmp_path, "topics:\n  attempts: acme.attempts\n")
    assert load_settings(named, environ={}).topics.attempts == "acme.attempts"
    environ = {"DISPATCHER_TOPICS_ATTEMPTS": ""}
    assert load_settings(named, environ=environ).topics.attempts == ""
    off = write(tmp_path, 'topics:\n  attempts: ""\n')
    assert load_settings(off, environ={}).topics.attempts == ""


def test_the_attempts_topics_retention_defaults_to_a_week_and_0_leaves_the_clusters(
    tmp_path: Path,
) -> None:
    assert load_settings(None, environ={}).topics.attempts_retention == 7 * 86400
    given = write(tmp_path, "topics:\n  attempts_retention: 72h\n")
    assert load_settings(given, environ={}).topics.attempts_retention == 72 * 3600
    cluster = write(tmp_path, "topics:\n  attempts_retention: 0\n")
    assert load_settings(cluster, environ={}).topics.attempts_retention == 0
    for wrong in ("soon", "-5", "true"):
        with pytest.raises(ConfigError, match=r"topics\.attempts_retention"):
            load_settings(write(tmp_path, f"topics:\n  attempts_retention: {wrong}\n"), environ={})


@pytest.mark.parametrize("zero", ["0", "'0'", "0s"])
def test_an_attempts_retention_of_0_leaves_the_clusters_however_it_is_written(
    tmp_path: Path, zero: str
) -> None:
    """As text (an override's value is text) or with a unit, 0 is the cluster's default too."""
    written = write(tmp_path, f"topics:\n  attempts_retention: {zero}\n")
    assert load_settings(written, environ={}).topics.attempts_retention == 0
    environ = {"DISPATCHER_TOPICS_ATTEMPTS_RETENTION": zero.strip("'")}
    assert load_settings(None, environ=environ).topics.attempts_retention == 0


def test_an_attempts_topic_kafka_would_refuse_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "group_id: g\ntopics:\n  attempts: my attempts/v1\n")

    with pytest.raises(ConfigError, match=r":3: topics\.attempts: 'my attempts/v1' is not a Kafka"):
        load_settings(path, environ={})


def test_port_0_takes_any_free_port_and_the_bounds_are_ports(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "http_port: 0\nadmin:\n  port: 0\n"), environ={})
    assert (settings.http_port, settings.admin.port) == (0, 0)
    top = load_settings(write(tmp_path, "http_port: 65535\nadmin:\n  port: 1\n"), environ={})
    assert (top.http_port, top.admin.port) == (65535, 1)
    assert load_settings(None, environ={"DISPATCHER_HTTP_PORT": "9500"}).http_port == 9500
    with pytest.raises(ConfigError, match="http_port: must be a port"):
        load_settings(None, environ={"DISPATCHER_HTTP_PORT": "65536"})


def test_drain_and_pause_may_be_0(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "drain_timeout: 0\nhook_pause_after: 0\n"), {})
    assert (settings.drain_timeout, settings.hook_pause_after) == (0.0, 0.0)


@pytest.mark.parametrize(
    "name", ["DISPATCHER_DRAIN_TIMOUT", "DISPATCHER_HTTPPORT", "DISPATCHER_HOOKSFILE"]
)
def test_an_unknown_override_variable_is_refused_as_an_unknown_key_is(name: str) -> None:
    with pytest.raises(ConfigError, match=rf"^environment variable {name}: unknown key "):
        load_settings(None, environ={name: "5s"})


def test_allow_cidrs_is_overridden_by_a_comma_separated_list() -> None:
    environ = {"DISPATCHER_ALLOW_CIDRS": "10.0.0.0/8, fd00::/8"}
    assert [str(n) for n in load_settings(None, environ=environ).allow_cidrs] == [
        "10.0.0.0/8",
        "fd00::/8",
    ]
    with pytest.raises(ConfigError, match="allow_cidrs"):
        load_settings(None, environ={"DISPATCHER_ALLOW_CIDRS": "10.0.0.0/33"})


def test_trusted_proxies_are_overridden_by_a_comma_separated_list() -> None:
    """As DISPATCHER_ALLOW_CIDRS is: an override's value is text, the setting a list."""
    environ = {"DISPATCHER_ADMIN_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7"}
    assert [str(n) for n in load_settings(None, environ=environ).admin.trusted_proxies] == [
        "10.0.0.0/8",
        "192.168.1.7/32",
    ]
    with pytest.raises(ConfigError, match=r"admin\.trusted_proxies"):
        load_settings(None, environ={"DISPATCHER_ADMIN_TRUSTED_PROXIES": "10.0.0.0/33"})


def test_secret_variables_named_dispatcher_are_no_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hooks from the hook store read DISPATCHER_SECRET_* (secrets.env_prefix), and the files
    may name any variable: none of them is taken for an unknown setting."""
    hooks = tmp_path / "hooks.yaml"
    hooks.write_text("hooks: []  # auth: {type: bearer, token: ${env:DISPATCHER_SMS_TOKEN}}\n")
    text = (
        f"hooks_file: {hooks}\nkafka:\n  sasl.password: ${{env:DISPATCHER_SASL_PASSWORD}}\n"
        "secrets:\n  env_prefix: DISPATCHER_VAULT_\n"
    )
    environ = {
        "DISPATCHER_CONFIG": "x",
        "DISPATCHER_SASL_PASSWORD": "p",
        "DISPATCHER_SMS_TOKEN": "t",
        "DISPATCHER_VAULT_ERP": "v",
    }
    monkeypatch.setenv("DISPATCHER_SASL_PASSWORD", "p")  # references resolve from the process's
    settings = load_settings(write(tmp_path, text), environ=environ)
    assert settings.secrets.env_prefix == "DISPATCHER_VAULT_"
    assert settings.kafka_config()["sasl.password"] == "p"
    default = load_settings(None, environ={"DISPATCHER_SECRET_SMS": "s"})
    assert default.secrets.env_prefix == "DISPATCHER_SECRET_"


def test_a_variable_named_by_the_hooks_file_an_override_gives_is_no_override(
    tmp_path: Path,
) -> None:
    """`DISPATCHER_HOOKS_FILE` overrides `hooks_file` as any key is, and the variables that
    hooks file names are its secrets, as those of a hooks file the configuration names are."""
    hooks = tmp_path / "hooks.yaml"
    hooks.write_text("hooks: []  # auth: {type: bearer, token: ${env:DISPATCHER_SMS_TOKEN}}\n")
    environ = {"DISPATCHER_HOOKS_FILE": str(hooks), "DISPATCHER_SMS_TOKEN": "t"}
    assert load_settings(None, environ=environ).hooks_file == str(hooks)
    assert load_settings(write(tmp_path, "http_port: 0\n"), environ=environ).hooks_file == str(
        hooks
    )


def tenant_tokens(*tenants: str) -> str:
    entries = "".join(
        f"    - {{token: t{i}-0123456789abcdef, role: viewer, tenant: {tenant!r}}}\n"
        for i, tenant in enumerate(tenants)
    )
    return f"admin:\n  tokens:\n{entries}"


@pytest.mark.parametrize(
    ("first", "second", "key"),
    [
        ("acme-eu", "acme.eu", "ACME_EU"),
        ("Acme", "acme", "ACME"),
        ("acme_eu", "ACME-EU", "ACME_EU"),
        ("acme-eu", "acme--eu", "ACME_EU"),
        ("acme", "acme-", "ACME"),
    ],
)
def test_tenants_that_would_share_a_secret_prefix_are_refused(
    tmp_path: Path, first: str, second: str, key: str
) -> None:
    path = write(tmp_path, tenant_tokens("globex", first, second))
    told = (
        f"{path}:2: admin.tokens: tenants {first!r} and {second!r} would share the secret"
        f" prefix <secrets.env_prefix>{key}__: tenant names must differ in more than case"
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(told)}"):
        load_settings(path, environ={})


def test_tenants_whose_names_begin_one_another_load_with_prefixes_apart(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, tenant_tokens("acme", "acme-eu", "acme")), environ={})
    prefixes = {settings.secrets.tenant_prefix(t.tenant or "") for t in settings.admin.tokens}
    assert prefixes == {"DISPATCHER_SECRET_ACME__", "DISPATCHER_SECRET_ACME_EU__"}
