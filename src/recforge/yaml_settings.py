"""YAML as settings want it, and ``key.path=value`` overrides: light, so that commands that only
read data (``recforge data info -O ...``) need not import the experiment schema and torch."""

from __future__ import annotations

import re
from typing import Any

import yaml

from recforge.errors import ConfigError


class ConfigLoader(yaml.SafeLoader):
    """YAML as a config wants it: a key given twice in one mapping is an error (PyYAML keeps the
    last silently), and ``1e-3`` is a number (YAML 1.1 reads it as text without a dot)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[object, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in first_line:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key '{key}' appears twice (lines {first_line[key]} and {line})",
                    key_node.start_mark,
                )
            first_line[key] = line
        return super().construct_mapping(node, deep=deep)


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_override(override: str) -> tuple[tuple[str, ...], Any]:
    """``"model.dim=128"`` → (("model", "dim"), 128); the value is parsed as YAML (so 1e-3, [10, 20])."""
    key, sep, value = override.partition("=")
    if not sep or not key.strip() or any(not part for part in key.strip().split(".")):
        raise ConfigError(f"override '{override}': expected KEY.PATH=VALUE, e.g. model.dim=128")
    try:
        parsed = yaml.load(value, Loader=ConfigLoader) if value.strip() else None
    except yaml.YAMLError as error:
        raise ConfigError(f"override '{override}': value is not valid YAML ({error})") from error
    return tuple(key.strip().split(".")), parsed
