"""`-o key.path=value` overrides, applied to a loaded config with the closed/free-form rule of the schema.

At a closed level (validate.py) a known key may be added even if the file does not set it, an unknown one is an
error with the closest valid key. At a free-form level `-o` may add one new final key (the builder rejects it if it
is not a real kwarg), but an intermediate path component must exist. A value written at a closed level is checked
against the schema below it here, so the config needs no second key check after the overrides.
"""
from __future__ import annotations

import re
from typing import Any, List, Tuple

import yaml

from ppcls_lite.utils.config_rules import ANY, ConfigError
from ppcls_lite.utils.registry import did_you_mean

from .validate import check_closed_keys, unknown_key_message


def parse_override(text: str) -> Tuple[List[str], Any]:
    """'A.b.0.c=value' -> (['A', 'b', '0', 'c'], value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like -o Section.key=value (e.g. -o Global.epochs=3)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{text}': bad key path '{key}' (use dots between keys, e.g. Global.epochs)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"override '{text}': value '{raw}' is not valid YAML ({e})") from e
    return key.split("."), value


def _describe_list(items: list) -> str:
    """'0 (DecodeImage), 1 (RandCropImage)' for op lists, plain indices otherwise."""
    parts = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and len(item) == 1:
            parts.append(f"{i} ({next(iter(item))})")
        else:
            parts.append(str(i))
    return ", ".join(parts) or "(empty list)"


def _set(node: dict, key: str, value: Any, schema: Any, text: str, where: str) -> None:
    """Write the final value, checking a mapping written at a closed level against the schema below it."""
    try:
        check_closed_keys(value, schema, where)
    except ConfigError as e:
        raise ConfigError(f"override '{text}': {e}") from None
    node[key] = value


def apply_override(config: dict, text: str, schema: dict) -> None:
    """Apply one `-o key.path=value` to `config` in place (`schema`: {section: closed keys}, see validate.py)."""
    parts, value = parse_override(text)
    node, level = config, schema
    op_item = False
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[:i])
        here = ".".join(parts[:i + 1])
        if isinstance(node, list):
            if not re.fullmatch(r"-?\d+", part) or not -len(node) <= int(part) < len(node):
                raise ConfigError(f"override '{text}': '{where}' is a list; '{part}' is not a valid index. "
                                  f"Valid indices: {_describe_list(node)}")
            index = int(part)
            if last:
                node[index] = value
                return
            if node[index] is None:  # an op without params, e.g. `- ToCHWImage:`; cannot descend into None
                raise ConfigError(f"override '{text}': '{here}' is empty; nothing to set below it")
            node, level = node[index], ANY
            op_item = isinstance(node, dict) and len(node) == 1  # {OpName: params}
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"override '{text}': '{where}' is a value ({node!r}), not a section; "
                              f"set it as -o {where}=VALUE")
        known = level if isinstance(level, dict) else None
        if part not in node:
            if known is not None and part not in known:
                raise ConfigError(f"override '{text}': " + unknown_key_message(part, where, known))
            if known is None and not last:
                existing = list(node)
                listed = ", ".join(map(str, existing)) or "none"
                raise ConfigError(f"override '{text}': '{where}' has no key '{part}' (existing keys: {listed})."
                                  f"{did_you_mean(part, existing)}")
            if not last:
                if known is None or not isinstance(known[part], dict):
                    raise ConfigError(f"override '{text}': '{here}' is a value, not a section; "
                                      f"set it as -o {here}=VALUE")
                node[part] = {}  # a known sub-section the file does not set, e.g. Optimizer.regularizer
        child_level = known[part] if known is not None else ANY
        if last:
            _set(node, part, value, child_level, text, here)
            return
        # An empty mapping written as null: a known sub-section (`EMA:`) or an op without params (`- AutoAugment:`).
        if node[part] is None and (isinstance(child_level, dict) or op_item):
            node[part] = {}
        node, level = node[part], child_level
        op_item = False
