"""Checks on one hook definition that a JSON Schema cannot express, as (path, message) pairs.

Each check guards its own input types, so it can run on a definition the schema already
rejected: a file's every problem is reported at once.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from dispatcher.errors import SecretError
from dispatcher.render.convert import convert
from dispatcher.render.formats import nest
from dispatcher.render.mapping import event_path, parse_template
from dispatcher.render.paths import ROOT_PATHS, parse_path
from dispatcher.render.xml import is_xml_name
from dispatcher.secrets import Secret, is_reference, resolve

Finding = tuple[tuple[str | int, ...], str]
SOURCES = ("from", "value", "template")
OPERATORS = ("equals", "exists", "matches", "in")
ALGORITHMS = ("A256GCM", "A128GCM", "A256CBC-HS512", "A128CBC-HS256", "C20P", "fernet")
KeyCheck = Callable[[str, Secret], str | None]


def hook_problems(raw: Any, *, key_check: KeyCheck | None = None) -> list[Finding]:
    """Everything wrong with one definition beyond its shape."""
    if not isinstance(raw, dict):
        return []
    found: list[Finding] = []
    for check in (_events, _url, _fields, _formats, _response, _headers):
        found.extend(check(raw))
    found.extend(_secrets(raw))
    found.extend(_encryption(raw, key_check))
    return found


def hook_warnings(raw: Any) -> list[Finding]:
    """Things that are allowed but probably not meant."""
    if not isinstance(raw, dict) or not isinstance(raw.get("url"), str):
        return []
    parts = urlsplit(raw["url"])
    found: list[Finding] = []
    if parts.scheme.lower() == "http":
        found.append((("url",), "plain http: the body travels unencrypted (use https)"))
    host = (parts.hostname or "").lower()
    if not raw.get("allow_private_networks") and _private(host):
        found.append(
            (
                ("url",),
                f"{host} is a private address: sending needs allow_private_networks (hook or service)",
            )
        )
    return found


def _events(raw: dict[str, Any]) -> Iterator[Finding]:
    for i, pattern in _items(raw.get("events")):
        if not isinstance(pattern, str):
            continue
        if re.search(r"\s", pattern):
            yield ("events", i), f"event type {pattern!r} contains whitespace"
        depth = 0
        for ch in pattern:
            depth += {"[": 1, "]": -1}.get(ch, 0)
            if depth not in (0, 1):
                break
        if depth != 0:
            yield ("events", i), f"glob {pattern!r} has an unbalanced '[' or ']'"


def _url(raw: dict[str, Any]) -> Iterator[Finding]:
    url = raw.get("url")
    if not isinstance(url, str):
        return
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port out of range)
    except ValueError as exc:
        yield ("url",), f"is not a valid URL: {exc}"
        return
    if not parts.hostname:
        yield ("url",), "has no host"
    if parts.username or parts.password:
        yield ("url",), "must not hold credentials (use auth)"
    if parts.fragment:
        yield ("url",), "must not have a #fragment"


def _fields(raw: dict[str, Any]) -> Iterator[Finding]:
    fields = [(i, f) for i, f in _items(raw.get("fields")) if isinstance(f, dict)]
    for i, spec in fields:
        given = [key for key in SOURCES if key in spec]
        if len(given) != 1:
            what = "none" if not given else " and ".join(given)
            yield ("fields", i), f"give exactly one of from, value or template (found {what})"
        yield from _field(i, spec)
    if raw.get("format", "json") in ("json", "xml"):
        names = [(spec["name"], None) for _, spec in fields if isinstance(spec.get("name"), str)]
        try:
            nest(names)
        except ValueError as exc:
            yield ("fields",), f"field names clash: {exc}"


def _field(i: int, spec: dict[str, Any]) -> Iterator[Finding]:
    source, template, kind = spec.get("from"), spec.get("template"), spec.get("type")
    if isinstance(source, str):
        try:
            event_path(source)
        except ValueError as exc:
            yield ("fields", i, "from"), f"invalid path: {exc}"
    if isinstance(template, str):
        try:
            parse_template(template)
        except ValueError as exc:
            yield ("fields", i, "template"), f"invalid template: {exc}"
    if "format" in spec and kind not in ("datetime", "decimal"):
        yield ("fields", i, "format"), "format applies only to types datetime and decimal"
    elif kind == "decimal" and isinstance(spec.get("format"), str):
        try:
            convert(0, kind, spec["format"])
        except ValueError as exc:
            yield ("fields", i, "format"), str(exc)
    if not isinstance(kind, str):
        return
    for key in ("value", "default"):
        if spec.get(key) is not None:
            try:
                convert(spec[key], kind, spec.get("format"))
            except ValueError as exc:
                yield ("fields", i, key), f"is not a valid {kind}: {exc}"


def _formats(raw: dict[str, Any]) -> Iterator[Finding]:
    fmt = raw.get("format", "json")
    csv, xml = raw.get("csv"), raw.get("xml")
    if isinstance(csv, dict) and csv.get("delimiter") in ('"', "\r", "\n"):
        yield ("csv", "delimiter"), "cannot be a quote or a line break"
    if fmt != "csv" and csv is not None:
        yield ("csv",), "csv settings given but format is not csv"
    if fmt != "xml" and xml is not None:
        yield ("xml",), "xml settings given but format is not xml"
    if isinstance(xml, dict):
        for key in ("root", "item"):
            name = xml.get(key)
            if isinstance(name, str) and not is_xml_name(name):
                yield ("xml", key), f"{name!r} is not an XML element name"
    if fmt == "xml":
        for i, spec in _items(raw.get("fields")):
            name = spec.get("name") if isinstance(spec, dict) else None
            if isinstance(name, str) and not _xml_field_name(name):
                yield ("fields", i, "name"), f"{name!r} cannot be written as XML elements"


def _xml_field_name(name: str) -> bool:
    *parents, leaf = name.split(".")
    leaf = leaf.removeprefix("@")
    return all(is_xml_name(part) for part in (*parents, leaf))


def _response(raw: dict[str, Any]) -> Iterator[Finding]:
    response = raw.get("response")
    if not isinstance(response, dict):
        return
    text = response.get("format") == "text"
    for i, entry in _items(response.get("expect")):
        if not isinstance(entry, dict):
            continue
        where = ("response", "expect", i)
        if not any(op in entry for op in OPERATORS):
            yield where, "checks nothing: give equals, exists, matches or in"
        yield from _response_path((*where, "path"), entry.get("path", ""), text)
        if isinstance(entry.get("matches"), str):
            try:
                re.compile(entry["matches"])
            except re.error as exc:
                yield (*where, "matches"), f"invalid regular expression: {exc}"
    capture = response.get("capture")
    for name, path in capture.items() if isinstance(capture, dict) else ():
        yield from _response_path(("response", "capture", name), path, text)


def _response_path(where: tuple[str | int, ...], path: Any, text: bool) -> Iterator[Finding]:
    if not isinstance(path, str):
        return
    if text and path.strip() not in ROOT_PATHS:
        yield where, "a text response has no paths: use '' or '.' (the whole body)"
        return
    try:
        parse_path(path)
    except ValueError as exc:
        yield where, f"invalid path: {exc}"


def _headers(raw: dict[str, Any]) -> Iterator[Finding]:
    headers = raw.get("headers")
    for name, value in headers.items() if isinstance(headers, dict) else ():
        if is_reference(value):
            yield ("headers", name), "secret references work in auth and encryption only"
        if isinstance(value, str) and ("\r" in value or "\n" in value):
            yield ("headers", name), "a header value cannot hold a line break"


def _secrets(raw: dict[str, Any]) -> Iterator[Finding]:
    hook = raw.get("id", "?")
    for path, value in _walk(raw.get("auth"), ("auth",)):
        yield from _resolvable(hook, path, value)
    encryption = raw.get("encryption")
    if isinstance(encryption, dict):
        yield from _resolvable(hook, ("encryption", "key"), encryption.get("key"))
        for i, entry in _items(encryption.get("keys")):
            if isinstance(entry, dict):
                yield from _resolvable(hook, ("encryption", "keys", i, "key"), entry.get("key"))


def _resolvable(hook: Any, path: tuple[str | int, ...], value: Any) -> Iterator[Finding]:
    if is_reference(value):
        try:
            resolve(value)
        except SecretError as exc:
            yield path, f"hook {hook}: cannot resolve secret: {exc}"


def _encryption(raw: dict[str, Any], key_check: KeyCheck | None) -> Iterator[Finding]:
    spec = raw.get("encryption")
    if not isinstance(spec, dict):
        return
    keys = [(i, e) for i, e in _items(spec.get("keys")) if isinstance(e, dict)]
    has_key = "key" in spec
    if has_key == bool(keys):
        yield ("encryption",), "give either key (with key_id) or keys, not both or neither"
    elif keys and not any(e.get("state", "active") == "active" for _, e in keys):
        yield ("encryption", "keys"), "no key is active"
    algorithm = spec.get("algorithm")
    if key_check is None or algorithm not in ALGORITHMS:
        return  # an unknown algorithm is the schema's finding
    places: list[tuple[tuple[str | int, ...], Any]] = [(("encryption", "key"), spec.get("key"))]
    places += [(("encryption", "keys", i, "key"), e.get("key")) for i, e in keys]
    for path, value in places:
        if not isinstance(value, str):
            continue
        try:
            problem = key_check(algorithm, resolve(value))
        except SecretError:
            continue  # reported by _secrets
        if problem:
            yield path, problem


def _walk(tree: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _walk(value, (*path, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from _walk(value, (*path, i))
    else:
        yield path, tree


def _items(value: Any) -> list[tuple[int, Any]]:
    return list(enumerate(value)) if isinstance(value, list) else []


def _private(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return not address.is_global
