"""Load hooks files. (Placeholder: full validation with line numbers is being built.)"""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML

from dispatcher.errors import ConfigError
from dispatcher.hooks.model import Hook


def load_hooks_file(path: str | Path) -> list[Hook]:
    """Every hook in `path`; raise `ConfigError` listing all problems as FILE:LINE: path: message."""
    text = Path(path).read_text(encoding="utf-8")
    document = YAML(typ="safe").load(text) or {}
    if not isinstance(document, dict) or not isinstance(document.get("hooks", []), list):
        raise ConfigError(f"{path}:1: hooks: must be a mapping with a 'hooks' list")
    return [Hook.from_dict(raw, where=f"hooks[{i}]") for i, raw in enumerate(document.get("hooks", []))]
