"""Experiment configs: load YAML, merge `_BASE_` files, apply `-o key.path=value` overrides, validate.

The schema is PaddleClas's (sections Global, AMP, EMA, Arch, Loss, Optimizer, DataLoader, Infer, Metric);
docs/CONFIG.md describes every key. Entry points:

    get_config(path, overrides=None, show=False) -> dict
    parse_args(description=None, extra_args=None, argv=None) -> argparse.Namespace   (-c, -o, + tool flags)
    print_config(config), save_config(config, path), config_to_text(config)

Modules, one job each: yaml_io (reading, duplicate keys, `_BASE_`, text out), overrides (`-o`), rules (where the
checks come from: the plain sections here, each builder package's `CONFIG_RULES`), validate (closed keys, names,
value ranges, no-effect warnings), cli (`parse_args`). The builder packages are imported by rules.py, so a config
is checked completely whatever the caller imported before.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Union

from ppcls_lite.utils.config_rules import ConfigError, normalize_numbers

from .cli import parse_args
from .overrides import apply_override, parse_override
from .rules import SECTIONS, build_schema, describe_checks
from .validate import apply_older_global_keys, check_closed_keys, check_config, validate_config
from .yaml_io import config_to_text, load_yaml_with_bases, merge_config, print_config, read_yaml, save_config

__all__ = ["ConfigError", "get_config", "parse_args", "print_config", "save_config", "config_to_text",
           "load_yaml_with_bases", "merge_config", "read_yaml", "apply_override", "parse_override",
           "validate_config", "describe_checks", "build_schema", "SECTIONS"]

# Sections whose string values that look like numbers are converted ('1e-5' -> 1e-05): YAML 1.1 reads `1e-5`
# (no dot) as a string. DataLoader/Infer are left alone: `NormalizeImage.scale: 1.0/255.0` is parsed by the op.
NUMERIC_SECTIONS = ("AMP", "EMA", "Slim", "Loss", "Optimizer", "Metric")


def get_config(path: Union[str, Path], overrides: Optional[List[str]] = None, show: bool = False) -> dict:
    """Load `path` (merging `_BASE_`), apply `overrides` (['Global.epochs=3', ...]), normalise, validate.

    Raises ConfigError naming the file (or the override) and the key; each check runs once: the file's keys before
    the overrides (so an override is not blamed for the file), each override's value as it is written, then the
    names, list shapes and value ranges of the result."""
    config = load_yaml_with_bases(path)
    schema = build_schema()
    try:
        check_closed_keys(config, schema, "")
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    for text in overrides or []:
        apply_override(config, text, schema)
    for section in NUMERIC_SECTIONS:
        if section in config:
            config[section] = normalize_numbers(config[section])
    try:
        check_config(config)
        apply_older_global_keys(config)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    # Sections in the canonical order (merging bases may have appended e.g. Arch last).
    config = {k: config[k] for k in SECTIONS if k in config}
    if show:
        print_config(config)
    return config
