"""Checks on the secrets and encryption keys of one hook definition, values never shown.

A reference (`${env:NAME}`, `${file:/path}`) that cannot be resolved is named by its place
and its variable or file; a key that does not fit its algorithm is described by its length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from dispatcher.config.secrets import (
    Secret,
    SecretScope,
    holds_reference,
    is_reference,
    resolve,
    resolve_within,
)
from dispatcher.errors import SecretError
from dispatcher.pipeline.render.target import CONTROL_IN_HEADERS, FORBIDDEN_IN_HEADERS
from dispatcher.security.auth import BASIC_USER_COLON
from dispatcher.security.encryption import ALGORITHMS
from dispatcher.security.signing import check_secret

Steps = tuple[str | int, ...]
Finding = tuple[Steps, str]
KeyCheck = Callable[[str, Secret], str | None]


def secret_problems(raw: dict[str, Any], scope: SecretScope | None = None) -> Iterator[Finding]:
    """References that cannot be resolved (within `scope`, if any): in `auth`, `encryption`,
    header values, field constants and the URL's path and query."""
    hook = raw.get("id", "?")
    for path, value in _walk(raw.get("auth"), ("auth",)):
        yield from _resolvable(hook, path, value, scope)
    headers = raw.get("headers")
    for name, value in headers.items() if isinstance(headers, dict) else ():
        yield from _resolvable(hook, ("headers", name), value, scope)
        if is_reference(value):  # a value written out is checked as the hook's own text
            yield from _in_a_header(hook, ("headers", name), value, scope)
    for i, spec in items(raw.get("fields")):
        if isinstance(spec, dict):
            yield from _resolvable(hook, ("fields", i, "value"), spec.get("value"), scope)
    url = raw.get("url")
    if holds_reference(url):
        try:
            resolve_within(str(url), str, scope=scope)
        except SecretError as exc:
            yield ("url",), f"hook {hook}: cannot resolve secret: {exc}"
    yield from _signing_problems(hook, raw.get("auth"), scope)
    yield from _basic_problems(hook, raw.get("auth"), scope)
    yield from _header_problems(hook, raw.get("auth"), scope)
    encryption = raw.get("encryption")
    if isinstance(encryption, dict):
        yield from _resolvable(hook, ("encryption", "key"), encryption.get("key"), scope)
        for i, entry in items(encryption.get("keys")):
            if isinstance(entry, dict):
                place = ("encryption", "keys", i, "key")
                yield from _resolvable(hook, place, entry.get("key"), scope)


WHOLE_VALUE = "a secret reference must be the whole value (within a value it is sent as written)"
NO_REFERENCE = "a default is sent as written: a secret reference is resolved only in value"


def partial_references(raw: dict[str, Any]) -> Iterator[Finding]:
    """Secret references where they would be sent as written, `${env:NAME}` and all: within a
    value that resolves only a whole reference (auth, headers, a field's `value`, encryption
    keys), or anywhere in a field's `default`, which resolves none. Named by place, never shown."""
    places = list(_walk(raw.get("auth"), ("auth",)))
    headers = raw.get("headers")
    if isinstance(headers, dict):
        places += [(("headers", name), value) for name, value in headers.items()]
    encryption = raw.get("encryption")
    if isinstance(encryption, dict):
        places.append((("encryption", "key"), encryption.get("key")))
        places += [
            (("encryption", "keys", i, "key"), entry.get("key"))
            for i, entry in items(encryption.get("keys"))
            if isinstance(entry, dict)
        ]
    for i, spec in items(raw.get("fields")):
        if isinstance(spec, dict):
            places.append((("fields", i, "value"), spec.get("value")))
            if holds_reference(spec.get("default")):
                yield ("fields", i, "default"), NO_REFERENCE
    for path, value in places:
        if holds_reference(value) and not is_reference(value):
            yield path, WHOLE_VALUE


def _resolvable(hook: Any, path: Steps, value: Any, scope: SecretScope | None) -> Iterator[Finding]:
    if is_reference(value):
        try:
            resolve(value, scope=scope)
        except SecretError as exc:
            yield path, f"hook {hook}: cannot resolve secret: {exc}"


def _signing_problems(hook: Any, auth: Any, scope: SecretScope | None) -> Iterator[Finding]:
    """hmac secrets that resolve but cannot sign (not `whsec_<base64>`, too short): found at
    load, not at the first delivery."""
    if not isinstance(auth, dict) or auth.get("type") != "hmac":
        return
    places: list[tuple[Steps, Any]] = [(("auth", "secret"), auth.get("secret"))]
    places += [(("auth", "secrets", i), value) for i, value in items(auth.get("secrets"))]
    for path, value in places:
        if not isinstance(value, str):
            continue
        try:
            problem = check_secret(resolve(value, scope=scope))
        except SecretError:
            continue  # reported as unresolvable
        if problem:
            yield path, f"hook {hook}: {problem}"


def _basic_problems(hook: Any, auth: Any, scope: SecretScope | None) -> Iterator[Finding]:
    """A Basic username (written out or a reference) that no receiver would read whole; it is
    not shown, nor is the password."""
    if not isinstance(auth, dict) or auth.get("type") != "basic":
        return
    username = auth.get("username")
    if not isinstance(username, str):
        return
    try:
        if ":" in resolve(username, scope=scope).reveal():
            yield ("auth", "username"), f"hook {hook}: {BASIC_USER_COLON}"
    except SecretError:
        return  # reported as unresolvable


# where a credential goes in a header as it is: a bearer token, an API key (unless in the query)
HEADER_CREDENTIALS = {"bearer": "token", "api_key": "value"}
NOT_A_HEADER_VALUE = (
    "cannot be sent in a header: it holds a line break, a NUL or another control character but"
    " tab, or text other than ASCII (a variable's value keeps a final newline; a file's is"
    " stripped)"
)


def _header_problems(hook: Any, auth: Any, scope: SecretScope | None) -> Iterator[Finding]:
    """A bearer token or a header's API key that no header can carry."""
    if not isinstance(auth, dict) or auth.get("in") == "query":
        return
    name = HEADER_CREDENTIALS.get(str(auth.get("type")))
    if name is not None:
        yield from _in_a_header(hook, ("auth", name), auth.get(name), scope)


def _in_a_header(
    hook: Any, path: Steps, value: Any, scope: SecretScope | None
) -> Iterator[Finding]:
    """A secret that no header can carry, found at load rather than as every request is refused
    before it is sent (a header value must not start a header of its own); never shown."""
    if not isinstance(value, str):
        return
    try:
        text = resolve(value, scope=scope).reveal()
    except SecretError:
        return  # reported as unresolvable
    if (
        not text.isascii()
        or any(ch in text for ch in FORBIDDEN_IN_HEADERS)
        or CONTROL_IN_HEADERS.search(text)
    ):
        yield path, f"hook {hook}: {NOT_A_HEADER_VALUE}"


BOTH_FORMS = "give either key (with an optional key_id) or keys, not both or neither"
KEY_ID_BESIDE_KEYS = "would be ignored beside keys, as it goes with key: give each key its own id"
DECRYPT_ONLY = "keep one active and make the others decrypt-only (a key without state is active)"


def encryption_problems(
    raw: dict[str, Any], key_check: KeyCheck | None, scope: SecretScope | None = None
) -> Iterator[Finding]:
    """Encryption given in both forms or neither, a key set a rotation would not hold (see
    `_key_set_problems`), and keys `key_check` refuses."""
    spec = raw.get("encryption")
    if not isinstance(spec, dict):
        return
    keys = [(i, e) for i, e in items(spec.get("keys")) if isinstance(e, dict)]
    has_key = "key" in spec
    if has_key == bool(keys):
        yield ("encryption",), BOTH_FORMS
    elif keys:
        yield from _key_set_problems(spec, keys)
    algorithm = spec.get("algorithm")
    if key_check is None or algorithm not in ALGORITHMS:
        return  # an unknown algorithm is the schema's finding
    places: list[tuple[tuple[str | int, ...], Any]] = [(("encryption", "key"), spec.get("key"))]
    places += [(("encryption", "keys", i, "key"), e.get("key")) for i, e in keys]
    for path, value in places:
        if not isinstance(value, str):
            continue
        try:
            problem = key_check(algorithm, resolve(value, scope=scope))
        except SecretError:
            continue  # reported by _secrets
        if problem:
            yield path, problem


def _key_set_problems(spec: dict[str, Any], keys: list[tuple[int, Any]]) -> Iterator[Finding]:
    """What a key set must be for each part of it to count: exactly one active key (it
    encrypts; of several, the first would, unseen), each id once (a receiver picks its key by
    the `kid` sent), and no `key_id` beside it (each key has its own, and it would be ignored)."""
    if "key_id" in spec:
        yield ("encryption", "key_id"), KEY_ID_BESIDE_KEYS
    active = [i for i, entry in keys if entry.get("state", "active") == "active"]
    if not active:
        yield ("encryption", "keys"), "no key is active"
    elif len(active) > 1:
        named = ", ".join(f"keys[{i}]" for i in active)
        says = f"{len(active)} keys are active ({named}); exactly one encrypts: {DECRYPT_ONLY}"
        yield ("encryption", "keys"), says
    first: dict[str, int] = {}
    for i, entry in keys:
        key_id = entry.get("id")
        if not isinstance(key_id, str):
            continue
        if key_id in first:
            says = f"duplicate key id {key_id!r} (first at keys[{first[key_id]}])"
            yield ("encryption", "keys", i, "id"), f"{says}: a receiver picks the key by its id"
        else:
            first[key_id] = i


def _walk(tree: Any, path: Steps) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _walk(value, (*path, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from _walk(value, (*path, i))
    else:
        yield path, tree


def items(value: Any) -> list[tuple[int, Any]]:
    """The numbered entries of `value` when it is a list, else none."""
    return list(enumerate(value)) if isinstance(value, list) else []
