"""The `charset` a Content-Type names, and the Python codec that reads it. Pure.

Used for what third parties answer (`expect.py`) and for the text data of binary-mode events
(`decode.py`): one reading of a media type's parameters, one list of codecs.
"""

from __future__ import annotations

import encodings
import pkgutil
from encodings import normalize_encoding
from encodings.aliases import aliases

# Names of Python's own encodings: a charset is looked up only when it is one, since the codec
# registry caches every name asked for, unknown ones too, and a header's name is anyone's.
KNOWN_ENCODINGS = (
    frozenset(aliases)
    | frozenset(aliases.values())
    | {module.name for module in pkgutil.iter_modules(encodings.__path__)}
)


def media_type(content_type: str) -> str:
    """The media type of a Content-Type value, lower case, without parameters ("" for none)."""
    return content_type.split(";", 1)[0].strip().lower()


def charset(content_type: str) -> str:
    """The `charset` parameter of a Content-Type value, unquoted ("" without one)."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').strip()
    return ""


def codec(name: str) -> str | None:
    """The name of the Python codec for charset `name`, or None when Python has none by that
    name. It may still be no text encoding (`base64`): decoding with it raises `LookupError`."""
    normalized = normalize_encoding(name.lower())
    return normalized if normalized in KNOWN_ENCODINGS else None
