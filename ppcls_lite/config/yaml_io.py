"""Config files in and out: YAML reading (a key written twice in one mapping is an error), `_BASE_` merging, and
the config as text (config_to_text, print_config, save_config)."""
from __future__ import annotations

import copy
import os
import reprlib
from pathlib import Path
from typing import Any, Dict, Set, Tuple, Union

import yaml

from ppcls_lite.utils import logger
from ppcls_lite.utils.cli import os_error_naming
from ppcls_lite.utils.config_rules import ConfigError
from ppcls_lite.utils.files import write_text_atomic

_MERGE_TAG = "tag:yaml.org,2002:merge"  # `<<: *anchor`: its keys may be overridden, that is not a duplicate


def _check_duplicate_keys(loader: yaml.SafeLoader, node: yaml.Node, path: Path, where: str, seen: Set[int]) -> None:
    """ConfigError naming the file, the mapping and both lines when a mapping below `node` has a key twice."""
    if id(node) in seen:  # an alias points back at a node already walked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: Dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = loader.construct_object(key_node, deep=True) if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1
            if key is not None and key in lines:
                place = f"in {where}" if where else "at the top level"
                raise ConfigError(f"config file {path}: key '{key}' is written twice {place} (lines {lines[key]} "
                                  f"and {line}); YAML would silently keep only the second. Delete one of them or "
                                  "merge the two.")
            if key is not None:
                lines[key] = line
            _check_duplicate_keys(loader, value_node, path, f"{where}.{key}" if where else str(key), seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicate_keys(loader, item, path, f"{where}.{i}", seen)


def _load_yaml(text: str, path: Path) -> Any:
    """The YAML document in `text` (None when empty), refusing duplicate keys."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_duplicate_keys(loader, node, path, "", set())
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml(path: Path) -> dict:
    """One config file as a mapping of sections; ConfigError naming the file for anything else."""
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        data = _load_yaml(path.read_text(encoding="utf-8"), path)
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {path} is not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8") \
            from None
    if data is None:
        raise ConfigError(f"config file {path} is empty (no YAML content): it must hold a mapping of sections "
                          "such as Global:, Arch:, DataLoader:")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} holds a {type(data).__name__} ({reprlib.repr(data)}), not a mapping "
                          "of sections such as Global:, Arch:, DataLoader:")
    return data


def merge_config(base: dict, child: dict) -> dict:
    """Recursive merge: dicts merge key by key, anything else (lists, scalars) in `child` replaces `base`."""
    merged = copy.deepcopy(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_config(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_yaml_with_bases(path: Union[str, Path], _chain: Tuple[Path, ...] = ()) -> dict:
    """Load `path`, first merging the file(s) named by its `_BASE_` key (relative to `path`), recursively."""
    path = Path(path).absolute()
    if path in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, path))
        raise ConfigError(f"_BASE_ cycle: {cycle}")
    data = read_yaml(path)
    bases = data.pop("_BASE_", None)
    if bases is None:
        return data
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"_BASE_ in {path} must be a path or a list of paths, got {bases!r}")
    merged: dict = {}
    for base in bases:
        base_path = path.parent / os.path.expanduser(base)
        if not base_path.is_file():
            raise FileNotFoundError(f"_BASE_ file '{base}' named in {path} not found (looked for {base_path})")
        merged = merge_config(merged, load_yaml_with_bases(base_path, (*_chain, path)))
    return merge_config(merged, data)


# ---------------------------------------------------------------------------------------------------------
# Text out


class _ConfigDumper(yaml.SafeDumper):
    """Block style for mappings; lists of plain values on one line ([0.485, 0.456, 0.406])."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flat = all(not isinstance(v, (dict, list)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_ConfigDumper.add_representer(list, _represent_list)


def config_to_text(config: dict) -> str:
    """Readable, indented YAML text (what save_config writes and print_config shows)."""
    return yaml.dump(config, Dumper=_ConfigDumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                     indent=2, width=100)


def print_config(config: dict) -> None:
    """Log `config` as YAML between two rules (rank 0 prints info lines)."""
    logger.info("---------------- config ----------------")
    for line in config_to_text(config).rstrip("\n").splitlines():
        logger.info(line)
    logger.info("----------------------------------------")


def save_config(config: dict, path: Union[str, Path]) -> None:
    """Write `config` as YAML to `path` (parent dirs created; written to a temp name, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_text_atomic(path, config_to_text(config))
    except OSError as exc:  # full or read-only disk: no temp file left, and the error names config.yaml
        raise os_error_naming(exc, path) from exc
