"""Experiment configs: load YAML, merge `_BASE_` files, apply `-o key.path=value` overrides, validate.

The schema is PaddleClas's (sections Global, AMP, EMA, Arch, Loss, Optimizer, DataLoader, Infer, Metric);
docs/CONFIG.md describes every key. Entry points:

    get_config(path, overrides=None, show=False) -> dict
    parse_args(description=None, extra_args=None, argv=None) -> argparse.Namespace   (-c, -o, + tool flags)
    print_config(config), save_config(config, path)

Validation rule (also used for `-o`): the schema marks every level either *closed* (a fixed set of known
keys, e.g. the sections, `Global`, `AMP`, `Optimizer`, `Optimizer.lr`) or *free-form* (constructor kwargs
checked later by the builder that consumes them: `Arch`, a dataset, sampler, loader, an op's params, a
loss/metric's params, `Infer.PostProcess`). At a closed level an unknown key is an error that lists the
valid keys and the closest match; a known key may be added even if the file does not set it. At a
free-form level `-o` may add one new final key (the builder rejects it if it is not a real kwarg), but an
intermediate path component must exist.

The builder packages own their sections' rules and declare them here when imported (this layer imports
nothing above it): the closed keys (`register_section_schema`, e.g. the optimizer package's `Optimizer`), the
names their registries know (`register_name_check`) and their value ranges (`register_value_check`). The
tools import every builder, so a config is fully checked before anything runs or is written.
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple, Union

import yaml

from ppcls_lite.utils import logger
from ppcls_lite.utils.cli import os_error_naming
from ppcls_lite.utils.files import write_text_atomic
from ppcls_lite.utils.registry import Registry, did_you_mean, parse_named_list
from ppcls_lite.utils.schema import AMP_DEFAULTS, EMA_DEFAULTS, GLOBAL_DEFAULTS, INFER_DEFAULTS  # noqa: F401 (re-exported)

# ---------------------------------------------------------------------------------------------------------
# Schema. ANY marks a free-form value: any structure below it; `-o` may add a new final key to its dicts.
ANY = None

# PaddleClas keys that are accepted but change nothing here: key -> why (printed once as a warning).
IGNORED_GLOBAL_KEYS = {
    "use_dali": "NVIDIA DALI data loading is not supported; the normal DataLoader is used",
    "use_multilabel": "multi-label training is not supported; single-label classification is used",
    "distributed": "data parallelism follows the launcher (python -m paddle.distributed.launch), not this key",
    "start_eval_epoch": "evaluation runs every Global.eval_interval epochs from the first one",
}
# PaddleClas Global keys handled in get_config: `class_num` (its older place for Arch.class_num), `ema`
# (its older place for the EMA section: {enable, decay}) and `eval_mode` (only "classification" exists here).
GLOBAL_KEYS = list(GLOBAL_DEFAULTS) + list(IGNORED_GLOBAL_KEYS) + ["class_num", "ema", "eval_mode"]

SECTIONS = ["Global", "AMP", "EMA", "Arch", "Loss", "Optimizer", "DataLoader", "Infer", "Metric"]
SCHEMA = {
    "Global": {k: ANY for k in GLOBAL_KEYS},
    "AMP": {k: ANY for k in AMP_DEFAULTS},
    "EMA": {k: ANY for k in EMA_DEFAULTS},
    "Arch": ANY,
    "Loss": {"Train": ANY, "Eval": ANY},
    "Optimizer": ANY,  # closed by the optimizer package (register_section_schema), which owns its keys
    "DataLoader": ANY,  # closed by the data package: {Train, Eval, Test} x {dataset, sampler, loader}
    "Infer": {k: ANY for k in INFER_DEFAULTS},
    "Metric": {"Train": ANY, "Eval": ANY},
}
assert list(SCHEMA) == SECTIONS


def register_section_schema(section: str, schema: dict) -> None:
    """Close `section` with the keys its builder package owns (a nested dict of key -> ANY or a sub-level).

    Builder packages call it when imported (the optimizer package declares Optimizer, Optimizer.lr, ...), so
    the checks here are assembled from the registries without this layer importing the layers above it.
    """
    if section not in SCHEMA:
        raise ValueError(f"unknown section {section!r}; sections: {', '.join(SECTIONS)}")
    SCHEMA[section] = schema


# Names checked when a config loads, declared by the builder packages as (key path, registry, is a named list,
# older names also accepted). A `*` in the path matches every key at that level (`Loss.*` = Loss.Train, Loss.Eval).
NAME_CHECKS: list = []


def register_name_check(path: str, registry: Registry, named_list: bool = False,
                        also_accepted: Iterable[str] = ()) -> None:
    """Reject an unknown name at `path` (a value, or each item of a named list) before anything runs or is written."""
    NAME_CHECKS.append((path.split("."), registry, named_list, tuple(also_accepted)))


def _values_at(node, parts, where=""):
    """(path, value) for every value at the dotted `parts` below `node` (`*` matches any key); absent -> nothing."""
    if not parts:
        yield where, node
        return
    if not isinstance(node, dict):
        return
    keys = list(node) if parts[0] == "*" else [parts[0]]
    for key in keys:
        if key in node and node[key] is not None:
            yield from _values_at(node[key], parts[1:], f"{where}.{key}" if where else str(key))


def _check_names(config: dict) -> None:
    """Every name a builder registry will look up is registered (ConfigError naming the path and valid names)."""
    for parts, registry, named_list, also_accepted in NAME_CHECKS:
        for where, value in _values_at(config, parts):
            items = ([(f"{where}.{i}", name) for i, name, _ in iter_named_list(value, where)] if named_list
                     else [(where, value)])
            for item_where, name in items:
                if name not in also_accepted and name not in registry:
                    try:
                        registry.canonical(name, item_where)
                    except KeyError as exc:  # UnknownNameError: the message names the path and the valid names
                        raise ConfigError(str(exc)) from None

# Sections whose string values that look like numbers are converted ('1e-5' -> 1e-05): YAML 1.1 reads `1e-5`
# (no dot) as a string. DataLoader/Infer are left alone: `NormalizeImage.scale: 1.0/255.0` is parsed by the op.
NUMERIC_SECTIONS = ("AMP", "EMA", "Loss", "Optimizer", "Metric")
_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_INT_RE = re.compile(r"^[+-]?\d+$")


class ConfigError(ValueError):
    """A config file or override is invalid; the message says which key and what is valid."""


# ---------------------------------------------------------------------------------------------------------
# Messages


def _warn(message: str) -> None:
    """Warn through the project logger. Config warnings are the same on every data-parallel rank, so only rank 0
    prints them (once per run)."""
    if int(os.environ.get("PADDLE_TRAINER_ID", "0") or 0) != 0:
        return
    logger.warning(message)


def _info(message: str) -> None:
    """An info line through the project logger (rank 0 prints it)."""
    logger.info(message)


def _unknown_key_message(key, where, valid) -> str:
    valid = list(valid)
    if not where:
        return f"unknown section '{key}'. Valid sections: {', '.join(valid)}.{did_you_mean(key, valid)}"
    return f"unknown key '{key}' in {where}. Valid keys there: {', '.join(map(str, valid))}.{did_you_mean(key, valid)}"


def _describe_list(items) -> str:
    """'0 (DecodeImage), 1 (RandCropImage)' for op lists, plain indices otherwise."""
    parts = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and len(item) == 1:
            parts.append(f"{i} ({next(iter(item))})")
        else:
            parts.append(str(i))
    return ", ".join(parts) or "(empty list)"


# ---------------------------------------------------------------------------------------------------------
# Loading and _BASE_


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections (Global, Arch, ...), "
                          f"got {type(data).__name__}")
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


def load_yaml_with_bases(path: Union[str, Path], _chain: tuple = ()) -> dict:
    """Load `path`, first merging the file(s) named by its `_BASE_` key (relative to `path`), recursively."""
    path = Path(path).absolute()
    if path in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, path))
        raise ConfigError(f"_BASE_ cycle: {cycle}")
    data = _read_yaml(path)
    bases = data.pop("_BASE_", None)
    if bases is None:
        return data
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"_BASE_ in {path} must be a path or a list of paths, got {bases!r}")
    merged = {}
    for base in bases:
        base_path = path.parent / os.path.expanduser(base)
        if not base_path.is_file():
            raise FileNotFoundError(f"_BASE_ file '{base}' named in {path} not found (looked for {base_path})")
        merged = merge_config(merged, load_yaml_with_bases(base_path, (*_chain, path)))
    return merge_config(merged, data)


# ---------------------------------------------------------------------------------------------------------
# -o overrides


def parse_override(text: str) -> Tuple[list, Any]:
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


def apply_override(config: dict, text: str) -> None:
    """Apply one `-o key.path=value` in place, following the closed/free-form rule of the module docstring."""
    parts, value = parse_override(text)
    node, schema = config, SCHEMA
    op_item = False
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[:i])
        if isinstance(node, list):
            if not re.fullmatch(r"-?\d+", part) or not -len(node) <= int(part) < len(node):
                raise ConfigError(f"override '{text}': '{where}' is a list; '{part}' is not a valid index. "
                                  f"Valid indices: {_describe_list(node)}")
            index = int(part)
            if last:
                node[index] = value
                return
            if node[index] is None:  # an op without params, e.g. `- ToCHWImage:`; cannot descend into None
                raise ConfigError(f"override '{text}': '{where}.{part}' is empty; nothing to set below it")
            node, schema = node[index], ANY
            op_item = isinstance(node, dict) and len(node) == 1  # {OpName: params}
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"override '{text}': '{where}' is a value ({node!r}), not a section; "
                              f"set it as -o {where}=VALUE")
        known = schema if isinstance(schema, dict) else None
        if part not in node:
            if known is not None and part not in known:
                raise ConfigError(f"override '{text}': " + _unknown_key_message(part, where, known))
            if known is None and not last:
                existing = list(node)
                listed = ", ".join(map(str, existing)) or "none"
                raise ConfigError(f"override '{text}': '{where}' has no key '{part}' (existing keys: {listed})."
                                  f"{did_you_mean(part, existing)}")
            if not last:
                if known is None or not isinstance(known[part], dict):
                    raise ConfigError(f"override '{text}': '{'.'.join(parts[:i + 1])}' is a value, not a section; "
                                      f"set it as -o {'.'.join(parts[:i + 1])}=VALUE")
                node[part] = {}  # a known sub-section the file does not set, e.g. Optimizer.regularizer
        if last:
            node[part] = value
            return
        child_schema = known[part] if known is not None else ANY
        # An empty mapping written as null: a known sub-section (`EMA:`) or an op without params (`- AutoAugment:`).
        if node[part] is None and (isinstance(child_schema, dict) or op_item):
            node[part] = {}
        node, schema = node[part], child_schema
        op_item = False


# ---------------------------------------------------------------------------------------------------------
# Normalisation and validation


def to_number(value: Any) -> Any:
    """A number-looking string ('1e-5', '3') as an int or float; any other value unchanged."""
    if isinstance(value, str) and _NUMBER_RE.match(value.strip()):
        text = value.strip()
        return int(text) if _INT_RE.match(text) else float(text)
    return value


def normalize_numbers(value: Any) -> Any:
    """Recursively turn number-looking strings ('1e-5', '0.1') into numbers."""
    if isinstance(value, dict):
        return {k: normalize_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize_numbers(v) for v in value]
    return to_number(value)


def _check_keys(node, schema, where):
    """Every key of `node` must be known where the schema is closed; recurse into closed sub-levels."""
    if schema is ANY:
        return
    if node is None:
        return
    if not isinstance(node, dict):
        raise ConfigError(f"'{where or 'config'}' must be a mapping of keys ({', '.join(schema)}), "
                          f"got {type(node).__name__}: {node!r}")
    for key, value in node.items():
        if key not in schema:
            raise ConfigError(_unknown_key_message(key, where, schema))
        _check_keys(value, schema[key], f"{where}.{key}" if where else key)


def iter_named_list(items: Any, where: str) -> Iterator[tuple]:
    """PaddleClas named lists (`[{CELoss: {weight: 1.0}}, ...]`, op lists) -> (index, name, params); ConfigError
    for a malformed item."""
    return parse_named_list(items, where, error=ConfigError)


def _check_named_list(items, where):
    """Loss/Metric lists and op lists: each item a one-key mapping {Name: {params} | null}."""
    if items is not None:
        for _ in iter_named_list(items, where):
            pass


# ---------------------------------------------------------------------------------------------------------
# Value ranges. Each rule: (test on a real number, text of the valid range). Paths are reported as `-o` takes
# them (`Optimizer.lr.eta_min`, `Loss.Train.0.CELoss.epsilon`, `DataLoader.Train.sampler.batch_size`).

_Rule = Tuple[Callable[[Any], bool], str]  # (test on a real number, text of the valid range)

POSITIVE = (lambda v: v > 0, "> 0")
NON_NEGATIVE = (lambda v: v >= 0, ">= 0")
FRACTION = (lambda v: 0 <= v < 1, "in [0, 1)")
PROBABILITY = (lambda v: 0 <= v <= 1, "in [0, 1]")
COUNT = (lambda v: v >= 1, "a whole number >= 1")
NON_NEGATIVE_COUNT = (lambda v: v >= 0, "a whole number >= 0")
_WHOLE_NUMBER_RULES = (COUNT, NON_NEGATIVE_COUNT)

GLOBAL_VALUE_RULES = {"epochs": COUNT, "save_interval": COUNT, "eval_interval": COUNT,
                      "print_batch_step": COUNT, "class_num": COUNT}
# Image sizes of the ops: an int or a [w, h] pair of them.
SIZE = (lambda v: v >= 1, "a whole number >= 1 (pixels), or a list [width, height] of them")


def is_real(value: Any) -> bool:
    """True for a finite int or float (bool excluded)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_value(problems: List[str], path: str, value: Any, rule: _Rule) -> None:
    """Append the message naming the key, the value and the valid range when `value` breaks `rule`."""
    test, valid = rule
    number = to_number(value)
    whole = rule in _WHOLE_NUMBER_RULES or rule is SIZE
    if not (is_real(number) and (not whole or isinstance(number, int)) and test(number)):
        problems.append(f"{path} must be {valid}, got {value!r}")


def check_keys_of(problems: List[str], section: Any, rules: dict[str, _Rule], where: str) -> None:
    """_check every key of `rules` that `section` (a mapping, or anything else: skipped) sets."""
    if isinstance(section, dict):
        for key, rule in rules.items():
            if section.get(key) is not None:
                check_value(problems, f"{where}.{key}", section[key], rule)


def check_each(problems: List[str], values: Any, rule: _Rule, where: str) -> None:
    """A list (each item, paths `where.0`, `where.1`, ...) or a single value."""
    if isinstance(values, (list, tuple)):
        for i, value in enumerate(values):
            check_value(problems, f"{where}.{i}", value, rule)
    elif values is not None:
        check_value(problems, where, values, rule)


# Value checks of the builder sections, declared by the builder packages (register_value_check).
VALUE_CHECKS: list = []


def register_value_check(check: Callable[[dict, list], None]) -> None:
    """Add `check(config, problems)`, which appends one message per out-of-range value of its builder's section."""
    VALUE_CHECKS.append(check)


def check_values(config: dict) -> None:
    """Raise one ConfigError listing every value out of its valid range (key path, value, range).

    Runs after the key and list-shape checks of validate_config, so the lists it walks are well formed."""
    problems = []
    g = config.get("Global") or {}
    check_keys_of(problems, g, GLOBAL_VALUE_RULES, "Global")
    if g.get("seed") is not None and (isinstance(g["seed"], bool) or not isinstance(g["seed"], int)):
        problems.append(f"Global.seed must be a whole number, got {g['seed']!r}")
    shape = g.get("image_shape")
    if shape is not None and not (isinstance(shape, list) and len(shape) == 3
                                  and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape)):
        problems.append(f"Global.image_shape must be a list [channels, height, width] of whole numbers >= 1, "
                        f"got {shape!r}")
    check_keys_of(problems, g.get("ema"), {"decay": FRACTION}, "Global.ema")
    check_keys_of(problems, config.get("Arch"), {"class_num": COUNT}, "Arch")
    check_keys_of(problems, config.get("AMP"), {"scale_loss": POSITIVE}, "AMP")
    check_keys_of(problems, config.get("EMA"), {"decay": FRACTION}, "EMA")
    for check in VALUE_CHECKS:  # the builder packages' own sections
        check(config, problems)
    infer = config.get("Infer")
    if isinstance(infer, dict):
        check_keys_of(problems, infer, {"batch_size": COUNT}, "Infer")
        check_keys_of(problems, infer.get("PostProcess"), {"topk": COUNT}, "Infer.PostProcess")
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else
                          f"{len(problems)} values are out of range:\n  " + "\n  ".join(problems))


def validate_config(config: dict) -> None:
    """Raise ConfigError for unknown sections/keys or malformed lists; warn about accepted-but-ignored keys."""
    _check_keys(config, SCHEMA, "")
    arch = config.get("Arch")
    if arch is not None and (not isinstance(arch, dict) or "name" not in arch):
        raise ConfigError("'Arch' must be a mapping with a 'name' (e.g. Arch: {name: MobileNetV3_large_x1_0, "
                          "class_num: 1000}); see tools/model_summary.py --all for the names")
    for section in ("Loss", "Metric"):
        for mode, items in (config.get(section) or {}).items():
            _check_named_list(items, f"{section}.{mode}")
    for mode, loader_cfg in (config.get("DataLoader") or {}).items():
        dataset = (loader_cfg or {}).get("dataset")
        if dataset is not None:
            if not isinstance(dataset, dict) or "name" not in dataset:
                raise ConfigError(f"'DataLoader.{mode}.dataset' must be a mapping with a 'name' "
                                  f"(e.g. ImageNetDataset), got {dataset!r}")
            for ops_key in ("transform_ops", "batch_transform_ops"):
                _check_named_list(dataset.get(ops_key), f"DataLoader.{mode}.dataset.{ops_key}")
    infer = config.get("Infer") or {}
    _check_named_list(infer.get("transforms"), "Infer.transforms")
    _check_names(config)
    global_section = config.get("Global") or {}
    eval_mode = global_section.get("eval_mode")
    if eval_mode not in (None, "classification"):
        raise ConfigError(f"Global.eval_mode={eval_mode!r} is not supported: ppcls_lite trains and evaluates "
                          "classifiers only; set it to classification or remove it")
    check_values(config)
    for message in no_effect_warnings(config):
        _warn(message)


def no_effect_warnings(config: dict) -> list:
    """One line per PaddleClas key in `config` that is accepted but changes nothing here."""
    messages = []
    for key, why in IGNORED_GLOBAL_KEYS.items():
        if (config.get("Global") or {}).get(key):
            messages.append(f"Global.{key} has no effect here: {why}.")
    lr = (config.get("Optimizer") or {}).get("lr")
    if isinstance(lr, dict):
        last_epoch = lr.get("last_epoch")
        if last_epoch is not None and last_epoch != -1:
            messages.append(f"Optimizer.lr.last_epoch={last_epoch!r} has no effect here: every schedule starts at "
                            "step 0; to continue a run use Global.checkpoints or --resume auto, which restore the "
                            "schedule's position from the checkpoint.")
        if lr.get("verbose"):
            messages.append("Optimizer.lr.verbose has no effect here: the LR is logged every print_batch_step "
                            "instead.")
    return messages


def _apply_global_ema(config: dict) -> None:
    """PaddleClas's older `Global.ema: {enable, decay}`: turns EMA on (as an EMA section) unless one is set."""
    ema = (config.get("Global") or {}).get("ema")
    if ema is None:
        return
    if not isinstance(ema, dict):
        raise ConfigError(f"Global.ema must be a mapping like {{enable: True, decay: 0.999}}, got {ema!r}")
    if not ema.get("enable", True):
        _warn("Global.ema.enable is False: no EMA (as without the key).")
    elif config.get("EMA") is not None:
        _warn("Global.ema is ignored: the EMA section is set and wins.")
    else:
        config["EMA"] = {"decay": ema.get("decay", EMA_DEFAULTS["decay"])}
        _warn(f"Global.ema is PaddleClas's old place for EMA: EMA.decay set to {config['EMA']['decay']!r} "
              "(write an EMA section instead).")


def _apply_global_class_num(config: dict) -> None:
    """PaddleClas's older `Global.class_num`: it sets Arch.class_num when Arch has none, else it is ignored."""
    global_section = config.get("Global") or {}
    class_num = global_section.get("class_num")
    arch = config.get("Arch")
    if class_num is None or not isinstance(arch, dict):
        return
    if arch.get("class_num") is None:
        arch["class_num"] = class_num
        _warn(f"Global.class_num is PaddleClas's old place for the class count: Arch.class_num set to {class_num!r} "
              "(write Arch.class_num instead).")
    elif arch["class_num"] != class_num:
        _warn(f"Global.class_num ({class_num!r}) is ignored: Arch.class_num ({arch['class_num']!r}) is set and wins.")


# ---------------------------------------------------------------------------------------------------------
# Public entry points


def get_config(path: Union[str, Path], overrides: Optional[List[str]] = None, show: bool = False) -> dict:
    """Load `path` (merging `_BASE_`), apply `overrides` (['Global.epochs=3', ...]), normalise, validate."""
    config = load_yaml_with_bases(path)
    try:
        _check_keys(config, SCHEMA, "")  # catch a bad file before overrides blame the wrong thing
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    for text in overrides or []:
        apply_override(config, text)
    for section in NUMERIC_SECTIONS:
        if section in config:
            config[section] = normalize_numbers(config[section])
    try:
        validate_config(config)
        _apply_global_class_num(config)
        _apply_global_ema(config)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    # Sections in the canonical order (merging bases may have appended e.g. Arch last).
    config = {k: config[k] for k in SECTIONS if k in config}
    if show:
        print_config(config)
    return config


class _ConfigDumper(yaml.SafeDumper):
    """Block style for mappings; lists of plain values on one line ([0.485, 0.456, 0.406])."""


def _represent_list(dumper, data):
    flat = all(not isinstance(v, (dict, list)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_ConfigDumper.add_representer(list, _represent_list)


def config_to_text(config: dict) -> str:
    """Readable, indented YAML text (what save_config writes and print_config shows)."""
    return yaml.dump(config, Dumper=_ConfigDumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                     indent=2, width=100)


def print_config(config: dict) -> None:
    """Log `config` as YAML between two rules."""
    _info("---------------- config ----------------")
    for line in config_to_text(config).rstrip("\n").splitlines():
        _info(line)
    _info("----------------------------------------")


def save_config(config: dict, path: Union[str, Path]) -> None:
    """Write `config` as YAML to `path` (parent dirs created; written to a temp name, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_text_atomic(path, config_to_text(config))
    except OSError as exc:  # full or read-only disk: no temp file left, and the error names config.yaml
        raise os_error_naming(exc, path) from exc


def parse_args(description: Optional[str] = None, extra_args: Optional[Callable] = None,
               argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Shared command line of the tools: -c/--config (required), -o/--override (repeatable).

    `extra_args(parser)` may add tool-specific flags; `argv` defaults to sys.argv[1:].
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("-c", "--config", required=True, help="path to the YAML config, e.g. configs/MobileNetV2.yaml")
    parser.add_argument(
        "-o", "--override", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, repeatable: -o Global.epochs=3 "
             "-o DataLoader.Train.dataset.transform_ops.1.RandCropImage.size=96",
    )
    # Acted on by utils.cli.run_cli (which takes it out of argv first); listed here so that --help shows it.
    parser.add_argument("--debug", action="store_true",
                        help="print the full traceback of an error instead of one line (or set PPCLS_LITE_DEBUG=1)")
    if extra_args is not None:
        extra_args(parser)
    return parser.parse_args(argv)
