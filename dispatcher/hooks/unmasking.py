"""A definition shown masked and sent back (the API's GET then PUT, the console's editor): each
`***` sent back unchanged stands for the stored value it hides, found by what it belongs to,
never by its position in a list:

- a value shown as `***` (a credential, a header or field from a reference), or a URL's piece
  with a `***` in it (its password, a path segment, a query value, the fragment): the stored
  value of the same key, header, field (by `name`) or URL piece;
- an encryption key: the stored key of the same `id`;
- an entry of a list of plain secrets (`auth.secrets`), shown as `***1`, `***2` ...: the stored
  entry at that position (1 is the first), wherever the entry now stands.

A `***` that stands for nothing stored is left for `masks_left` to name, so it is never saved.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from dispatcher.config.secrets import MASK, without_references
from dispatcher.hooks.masking import mask_header, mask_url, numbered_mask
from dispatcher.model.auth import SECRET_AUTH_KEYS

NUMBERED = re.compile(re.escape(MASK) + r"([0-9]+)")
IDENTITIES = ("id", "name")  # what names an entry of a list of objects (a key, a field)


def keep_masked(new: Any, old: Any) -> Any:
    """`new` with every masked value that came back unchanged replaced by `old`'s value it
    stands for, so saving a definition shown masked never overwrites a secret with the mask."""
    if isinstance(new, dict):
        before = old if isinstance(old, dict) else {}
        kept = {k: keep_masked(v, before.get(k)) for k, v in new.items()}
        if isinstance(new.get("url"), str) and isinstance(before.get("url"), str):
            kept["url"] = _restored_url(new["url"], before["url"])
        return kept
    if isinstance(new, list):
        before_list = old if isinstance(old, list) else []
        return [_kept_entry(v, before_list) for v in new]
    shown = (MASK, mask_url(old), mask_header("authorization", old)) if isinstance(old, str) else ()
    return old if isinstance(new, str) and MASK in new and new in shown else new


def _kept_entry(new: Any, old: list[Any]) -> Any:
    if isinstance(new, dict):
        return keep_masked(new, _same_entry(new, old))
    if isinstance(new, str):
        numbered = NUMBERED.fullmatch(new)
        if numbered is not None and 1 <= int(numbered.group(1)) <= len(old):
            return old[int(numbered.group(1)) - 1]
        return new
    return keep_masked(new, None)


def _same_entry(new: dict[str, Any], old: list[Any]) -> dict[str, Any] | None:
    """The stored entry of the same identity (`id`, else `name`) as `new`; None without one."""
    for key in IDENTITIES:
        if isinstance(new.get(key), str):
            found = [e for e in old if isinstance(e, dict) and e.get(key) == new[key]]
            return found[0] if len(found) == 1 else None
    return None


def _restored_url(new: str, old: str) -> str:
    """`new` with each piece holding `***` that shows `old`'s piece replaced by that piece."""
    if MASK not in new:
        return new
    if new == mask_url(old):
        return old
    try:
        ours, theirs = urlsplit(new), urlsplit(old)
    except ValueError:
        return new
    netloc = _piece(ours.netloc, theirs.netloc, _netloc_shown(theirs.netloc))
    path = "/".join(_segments(ours.path.split("/"), theirs.path.split("/")))
    query = _query(ours.query, theirs.query)
    fragment = _piece(ours.fragment, theirs.fragment)
    return urlunsplit((ours.scheme, netloc, path, query, fragment))


def _shown(old: str) -> set[str]:
    """How a piece of a URL may have been shown: whole as the mask, or its references masked."""
    return {MASK, without_references(old)}


def _netloc_shown(old: str) -> set[str]:
    found = _shown(old)
    for form in (old, without_references(old)):
        found.add(urlsplit(mask_url(f"x://{form}")).netloc)  # mask_url: "<url>" when unreadable
    return found


def _piece(new: str, old: str, shown: set[str] | None = None) -> str:
    if MASK in new and new in (_shown(old) if shown is None else shown):
        return old
    return new


def _segments(new: list[str], old: list[str]) -> Iterator[str]:
    """Path segments: by position when the count is the same; else a masked segment takes the
    one stored segment it shows, if just one does."""
    for i, segment in enumerate(new):
        if MASK not in segment:
            yield segment
        elif len(new) == len(old):
            yield _piece(segment, old[i])
        else:
            found = {o for o in old if segment in _shown(o)}
            yield found.pop() if len(found) == 1 else segment


def _query(new: str, old: str) -> str:
    """Query pieces: a masked one takes the stored piece of the same name and occurrence whose
    value it shows (kept as written, encoding and all)."""
    stored: dict[str, list[str]] = {}
    for piece in old.split("&") if old else ():
        stored.setdefault(_name(piece), []).append(piece)
    seen: dict[str, int] = {}
    pieces = []
    for piece in new.split("&") if new else ():
        name = _name(piece)
        nth = seen[name] = seen.get(name, -1) + 1
        if MASK in piece and nth < len(stored.get(name, ())):
            before = stored[name][nth]
            if _value(piece) in _shown(_value(before)):
                piece = before
        pieces.append(piece)
    return "&".join(pieces)


def _name(piece: str) -> str:
    return unquote_plus(piece.partition("=")[0])


def _value(piece: str) -> str:
    return unquote_plus(piece.partition("=")[2])


def masks_left(raw: dict[str, Any], previous: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Where `raw` (restored by `keep_masked`) still holds a `***` that stands for nothing
    stored, and why: (path, message). A header or field holding the very value stored (a
    literal `***` written long ago) is left alone."""
    before = previous or {}
    found: list[tuple[str, str]] = []
    url = raw.get("url")
    if isinstance(url, str) and MASK in url:
        found.append(("url", f"{MASK} stands for no secret of the stored URL here: {_write}"))
    auth = raw.get("auth")
    if isinstance(auth, dict):
        given = before.get("auth")
        stored: dict[str, Any] = given if isinstance(given, dict) else {}
        for key in SECRET_AUTH_KEYS.get(str(auth.get("type")), ()):
            found += _secrets_left(f"auth.{key}", auth.get(key), stored.get(key))
    encryption = raw.get("encryption")
    if isinstance(encryption, dict):
        if _masked(encryption.get("key")):
            found.append(("encryption.key", f"{MASK} stands for no stored key: {_write}"))
        keys = encryption.get("keys")
        for i, entry in enumerate(keys if isinstance(keys, list) else ()):
            if isinstance(entry, dict) and _masked(entry.get("key")):
                message = f"{MASK} stands for no stored key of id {entry.get('id')!r}: {_write}"
                found.append((f"encryption.keys[{i}].key", message))
    headers, stored_headers = raw.get("headers"), before.get("headers")
    for name, value in headers.items() if isinstance(headers, dict) else ():
        was = stored_headers.get(name) if isinstance(stored_headers, dict) else None
        if _masked(value) and value != was:
            found.append((f"headers.{name}", f"{MASK} stands for no stored value: {_write}"))
    fields, stored_fields = raw.get("fields"), before.get("fields")
    for i, spec in enumerate(fields if isinstance(fields, list) else ()):
        if isinstance(spec, dict) and _masked(spec.get("value")):
            was = _same_entry(spec, stored_fields if isinstance(stored_fields, list) else [])
            if was is None or was.get("value") != spec["value"]:
                message = f"{MASK} stands for no stored value of field {spec.get('name')!r}"
                found.append((f"fields[{i}].value", f"{message}: {_write}"))
    return found


_write = "write the secret reference (${env:NAME} or ${file:/path})"


def _masked(value: Any) -> bool:
    return isinstance(value, str) and MASK in value


def _secrets_left(path: str, value: Any, stored: Any) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        return [(path, f"{MASK} stands for no stored secret: {_write}")] if _masked(value) else []
    count = len(stored) if isinstance(stored, list) else 0
    names = f"{numbered_mask(0)} to {numbered_mask(count - 1)}" if count else "none is stored"
    return [
        (f"{path}[{i}]", f"{entry!r} names no stored entry ({names}, by stored position)")
        for i, entry in enumerate(value)
        if _masked(entry)
    ]
