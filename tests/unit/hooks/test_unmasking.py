"""A definition shown masked and sent back: each `***` takes the stored value it stands for, found
by what it belongs to (the URL's piece, a key's id, a field's name, a secret's shown number),
and a `***` that stands for nothing stored is named, never saved."""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher.config.secrets import SecretScope
from dispatcher.hooks.definitions import examine_edit
from dispatcher.hooks.describe import describe
from dispatcher.hooks.masking import mask_definition
from dispatcher.hooks.unmasking import keep_masked, masks_left
from dispatcher.model.hook import Hook

SCOPE = SecretScope(env_prefix="T_", dir="/nonexistent")


def hook(**extra: Any) -> dict[str, Any]:
    return {"id": "erp", "events": ["order.*"], "url": "https://erp.example.com/in", **extra}


def shown(raw: dict[str, Any]) -> dict[str, Any]:
    """The definition as the API shows it (`GET /api/hooks/{id}`)."""
    return dict(describe(Hook.from_dict(raw)))


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("T_PATH", "T_CODE", "T_OLD", "T_NEW", "T_K1", "T_K2"):
        monkeypatch.setenv(name, "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3")


@pytest.mark.parametrize(
    "url",
    [
        "https://erp.example.com/in/${env:T_PATH}",
        "https://erp.example.com/in/v1-${env:T_PATH}/x",
        "https://erp.example.com/in?code=${env:T_CODE}&page=2",
        "https://erp.example.com/in?token=${env:T_CODE}&code=${env:T_PATH}",
        "https://u:${env:T_CODE}@erp.example.com/in#${env:T_PATH}",
    ],
)
def test_a_url_shown_masked_and_sent_back_keeps_its_references_wherever_they_are(
    url: str,
) -> None:
    stored = hook(url=url)
    for masked in (shown(stored), mask_definition(stored)):  # the API's, the editor's
        assert keep_masked(masked, stored)["url"] == url


def test_a_masked_url_piece_kept_beside_an_edit_keeps_its_reference() -> None:
    stored = hook(url="https://erp.example.com/in/${env:T_PATH}?code=${env:T_CODE}&page=1")
    edited = {**shown(stored), "url": "https://erp2.example.com/in/***?code=***&page=2"}
    assert keep_masked(edited, stored)["url"] == (
        "https://erp2.example.com/in/${env:T_PATH}?code=${env:T_CODE}&page=2"
    )


def test_a_url_holding_a_mask_that_stands_for_nothing_stored_is_refused() -> None:
    stored = hook(url="https://erp.example.com/in/${env:T_PATH}")
    moved = {**shown(stored), "url": "https://erp.example.com/out/***/***"}
    for previous in (stored, None):  # an edit; a new hook
        problems = examine_edit(moved, previous, SCOPE)
        assert isinstance(problems, list)
        assert [p.path for p in problems] == ["url"]
        assert "stands for no secret" in problems[0].message


def test_dropping_the_retired_encryption_key_keeps_the_others_by_id() -> None:
    stored = hook(
        encryption={
            "algorithm": "A256GCM",
            "keys": [
                {"id": "k1", "key": "${env:T_K1}", "state": "decrypt-only"},
                {"id": "k2", "key": "${env:T_K2}", "state": "active"},
            ],
        }
    )
    edited = shown(stored)
    edited["encryption"]["keys"] = edited["encryption"]["keys"][1:]
    assert keep_masked(edited, stored)["encryption"]["keys"] == [
        {"id": "k2", "key": "${env:T_K2}", "state": "active"}
    ]
    edited["encryption"]["keys"] = [{"id": "k3", "key": "***", "state": "active"}]
    problems = examine_edit(edited, stored, SCOPE)
    assert isinstance(problems, list)
    assert [p.path for p in problems] == ["encryption.keys[0].key"]
    assert "no stored key of id 'k3'" in problems[0].message


def test_a_list_of_secrets_is_shown_numbered_and_restored_by_the_number() -> None:
    stored = hook(auth={"type": "hmac", "secrets": ["${env:T_OLD}", "${env:T_NEW}"]})
    for masked in (shown(stored), mask_definition(stored)):
        assert masked["auth"]["secrets"] == ["***1", "***2"]
        dropped = {**masked, "auth": {"type": "hmac", "secrets": ["***2"]}}
        assert keep_masked(dropped, stored)["auth"]["secrets"] == ["${env:T_NEW}"]
        added = {**masked, "auth": {"type": "hmac", "secrets": ["${env:T_K1}", "***2"]}}
        assert keep_masked(added, stored)["auth"]["secrets"] == ["${env:T_K1}", "${env:T_NEW}"]


@pytest.mark.parametrize("entry", ["***3", "***0", "***", "***x"])
def test_a_list_entry_naming_no_stored_secret_is_refused(entry: str) -> None:
    stored = hook(auth={"type": "hmac", "secrets": ["${env:T_OLD}", "${env:T_NEW}"]})
    edited = {**shown(stored), "auth": {"type": "hmac", "secrets": ["***1", entry]}}
    problems = examine_edit(edited, stored, SCOPE)
    assert isinstance(problems, list)
    assert [p.path for p in problems] == ["auth.secrets[1]"]
    assert "names no stored entry (***1 to ***2, by stored position)" in problems[0].message


def test_a_field_from_a_reference_keeps_it_by_name_when_an_earlier_field_goes() -> None:
    stored = hook(
        fields=[{"name": "a", "value": "${env:T_OLD}"}, {"name": "b", "value": "${env:T_NEW}"}]
    )
    edited = shown(stored)
    edited["fields"] = edited["fields"][1:]
    kept = keep_masked(edited, stored)
    assert [f["value"] for f in kept["fields"]] == ["${env:T_NEW}"]
    renamed = {**edited, "fields": [{"name": "c", "value": "***"}]}
    assert masks_left(keep_masked(renamed, stored), stored) == [
        ("fields[0].value", "*** stands for no stored value of field 'c': write the secret"
         " reference (${env:NAME} or ${file:/path})")
    ]  # fmt: skip
