"""The hook store's rules without a broker: what it refuses, how records fold, file + store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dispatcher.config.secrets import SecretScope
from dispatcher.config.settings import Settings
from dispatcher.config.topics import Topics
from dispatcher.errors import ConfigError
from dispatcher.hooks.definitions import (
    check_definition,
    definitions_in_file,
    examine_text,
    fold,
    literal_secrets,
    merged,
    refusals,
)
from dispatcher.kafka.store import HookStore
from dispatcher.model.event import Record
from dispatcher.model.hook import Hook


def definition(hook_id: str = "crm", **extra: Any) -> dict[str, Any]:
    return {"id": hook_id, "events": ["customer.*"], "url": "https://crm.example/in", **extra}


def record(key: str | None, value: Any, offset: int = 0) -> Record:
    raw = (
        None
        if value is None
        else (value if isinstance(value, bytes) else json.dumps(value).encode())
    )
    return Record("store", 0, offset, None if key is None else key.encode(), raw, ())


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"auth": {"type": "bearer", "token": "t0ps3cret"}}, "auth.token"),
        ({"auth": {"type": "basic", "username": "u", "password": "t0ps3cret"}}, "auth.password"),
        ({"auth": {"type": "hmac", "secret": ["${env:HOME}", "t0ps3cret"]}}, "auth.secret[1]"),
        (
            {"encryption": {"algorithm": "A256GCM", "key": "t0ps3cret", "key_id": "k"}},
            "encryption.key",
        ),
        (
            {"encryption": {"algorithm": "A256GCM", "keys": [{"id": "k", "key": "t0ps3cret"}]}},
            "encryption.keys[0].key",
        ),
    ],
)
def test_the_store_refuses_literal_secrets_without_repeating_them(
    extra: dict[str, Any], path: str
) -> None:
    found = literal_secrets(definition(**extra), "hook")
    assert [p.path for p in found] == [path]
    assert all("t0ps3cret" not in str(p) for p in refusals(definition(**extra), "hook"))


def test_secret_references_and_non_secret_settings_are_accepted() -> None:
    hook = definition(
        auth={"type": "api_key", "name": "X-Key", "value": "${env:HOME}", "in": "header"}
    )
    assert literal_secrets(hook, "hook") == []
    assert refusals(hook, "hook") == []
    assert literal_secrets("not a mapping", "hook") == []


def test_folding_applies_definitions_and_tombstones_and_ignores_what_is_invalid() -> None:
    stored: dict[str, Hook] = {}
    assert fold(stored, record("crm", definition())) is None
    assert stored["crm"].url == "https://crm.example/in"
    ignored = [
        fold(stored, record("crm", definition(url="not a url", format="yaml"), 1)),
        fold(stored, record("crm", definition("erp"), 2)),
        fold(stored, record("crm", b"{not json", 3)),
        fold(stored, record(None, definition(), 4)),
    ]
    assert all(ignored), ignored
    assert "store[0]@2" in str(ignored[1])
    assert stored["crm"].url == "https://crm.example/in"  # the last valid definition stays
    assert fold(stored, record("crm", definition(url="https://crm.example/v2"), 5)) is None
    assert stored["crm"].url == "https://crm.example/v2"
    assert fold(stored, record("crm", None, 6)) is None
    assert stored == {}
    assert fold(stored, record("never-there", None, 7)) is None


def test_the_store_overrides_the_file_by_id_and_adds_its_own_after_the_file() -> None:
    file_hooks = [Hook.from_dict(definition(i)) for i in ("b", "a")]
    stored = {
        i: Hook.from_dict(definition(i, url=f"https://store.example/{i}")) for i in ("z", "a", "c")
    }
    index = merged(file_hooks, stored)
    assert [(h.id, h.url.split("/")[2]) for h in index] == [
        ("b", "crm.example"),
        ("a", "store.example"),
        ("c", "store.example"),
        ("z", "store.example"),
    ]


def test_an_apply_with_any_invalid_definition_writes_nothing() -> None:
    settings = Settings(kafka={"bootstrap.servers": "127.0.0.1:1"}, topics=Topics(hooks="store"))
    store = HookStore(settings)
    with pytest.raises(ConfigError) as refused:
        check_definition(definition("bad", events=[]), "hooks[1]")
    assert "hooks[1]" in str(refused.value)
    good = check_definition(definition("good"), "hooks[0]")
    with pytest.raises(ConfigError) as refused:
        store.apply([good, good])
    assert "hooks[1]: id: duplicate id 'good'" in str(refused.value)
    assert store._producer is None  # never connected: nothing was written


def test_a_file_is_checked_whole_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "hooks.yaml"
    path.write_text(
        "hooks:\n"
        "  - id: ok\n    events: [a]\n    url: https://a.example/\n"
        "  - id: bad\n    events: [a]\n    url: https://a.example/\n    format: yaml\n"
    )
    with pytest.raises(ConfigError, match=rf"{path}:8: hooks\[1\]\.format"):
        definitions_in_file(path)
    path.write_text(
        "hooks:\n  - id: ok\n    events: [a]\n    url: https://a.example/\n"
        "    auth: {type: bearer, token: plain}\n"
    )
    with pytest.raises(ConfigError, match="secret references only"):
        definitions_in_file(path)
    path.write_text("hooks:\n  - id: ok\n    events: [a]\n    url: https://a.example/\n")
    checked = definitions_in_file(path)
    assert [d.raw for d in checked] == [{"id": "ok", "events": ["a"], "url": "https://a.example/"}]
    assert [d.hook.id for d in checked] == ["ok"]


def test_a_definition_as_yaml_reports_each_problem_at_its_own_line() -> None:
    text = "id: a\nevents: [x]\nurl: http://127.0.0.1/a\nformat: yaml\n\ntimeout: soon\n"
    problems = examine_text(text)
    assert isinstance(problems, list)
    assert [(p.line, p.path) for p in problems] == [(4, "format"), (6, "timeout")]
    broken = examine_text("id: a\nevents: [x\n")
    assert isinstance(broken, list)
    assert broken[0].line is not None
    assert "invalid YAML" in broken[0].message


def test_a_definition_as_yaml_keeps_the_stored_secret_behind_a_mask(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXAMINE_TOKEN", "tok-1")
    stored = {"id": "a", "events": ["x"], "url": "http://127.0.0.1/a"}
    stored["auth"] = {"type": "bearer", "token": "${env:EXAMINE_TOKEN}"}
    text = "id: a\nevents: [x]\nurl: http://127.0.0.1/a\nauth: {type: bearer, token: '***'}\n"
    checked = examine_text(text, stored)
    assert not isinstance(checked, list)
    assert checked.raw["auth"]["token"] == "${env:EXAMINE_TOKEN}"
    refused = examine_text(text)  # nothing stored: the mask is a literal secret, refused
    assert isinstance(refused, list)
    assert [p.path for p in refused] == ["auth.token"]


def test_the_store_takes_only_references_its_secret_scope_admits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPATCHER_SECRET_CRM", "crm-token")
    monkeypatch.setenv("DUGAA_ADMIN_TOKEN", "admin-token")
    (tmp_path / "outside").write_text("outside-value")
    scope = SecretScope(dir=str(tmp_path / "secrets"))
    allowed = definition(auth={"type": "bearer", "token": "${env:DISPATCHER_SECRET_CRM}"})
    assert check_definition(allowed, "t", scope).hook.auth.get("token").reveal() == "crm-token"
    for reference in ("${env:DUGAA_ADMIN_TOKEN}", f"${{file:{tmp_path}/outside}}"):
        refused = definition(auth={"type": "bearer", "token": reference})
        with pytest.raises(ConfigError, match="is not allowed") as caught:
            check_definition(refused, "t", scope)
        assert "admin-token" not in str(caught.value)
        assert "outside-value" not in str(caught.value)
        stored: dict[str, Hook] = {}
        reason = fold(stored, record("crm", refused), scope)
        assert reason is not None
        assert "is not allowed" in reason
        assert stored == {}


def test_the_store_refuses_a_literal_secret_wherever_a_reference_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DISPATCHER_SECRET_VENDOR", "v-1")
    literal_header = definition(headers={"X-Api-Key": "k-123", "X-Tenant": "acme"})
    literal_query = definition(url="https://crm.example/in?token=t-123&n=1")
    assert [p.path for p in literal_secrets(literal_header, "t")] == ["headers.X-Api-Key"]
    assert [p.path for p in literal_secrets(literal_query, "t")] == ["url (token=)"]
    referring = definition(
        url="https://crm.example/in?token=${env:DISPATCHER_SECRET_VENDOR}",
        headers={"X-Api-Key": "${env:DISPATCHER_SECRET_VENDOR}"},
        fields=[{"name": "pin", "value": "${env:DISPATCHER_SECRET_VENDOR}"}],
    )
    assert literal_secrets(referring, "t") == []
    assert check_definition(referring, "t", SecretScope()).hook.headers[0][1].reveal() == "v-1"
