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
"""
from __future__ import annotations

import argparse
import copy
import difflib
import os
import re
import sys
from pathlib import Path

import yaml

# ---------------------------------------------------------------------------------------------------------
# Schema. ANY marks a free-form value: any structure below it; `-o` may add a new final key to its dicts.
ANY = None

# Global keys with the default the engine uses when the key is absent (documentation and engine both read it).
GLOBAL_DEFAULTS = {
    "checkpoints": None,
    "pretrained_model": None,
    "output_dir": "./output/",
    "device": "cpu",
    "save_interval": 1,
    "eval_during_train": True,
    "eval_interval": 1,
    "epochs": 10,
    "print_batch_step": 10,
    "use_visualdl": False,
    "image_shape": [3, 224, 224],
    "save_inference_dir": "./inference",
    "to_static": False,
    "seed": 42,
}
# PaddleClas keys that are accepted but change nothing here: key -> why (printed once as a warning).
IGNORED_GLOBAL_KEYS = {
    "use_dali": "NVIDIA DALI data loading is not supported; the normal DataLoader is used",
    "use_multilabel": "multi-label training is not supported; single-label classification is used",
}
GLOBAL_KEYS = list(GLOBAL_DEFAULTS) + list(IGNORED_GLOBAL_KEYS)

AMP_DEFAULTS = {
    "use_amp": False,
    "scale_loss": 1.0,
    "use_dynamic_loss_scaling": False,
    "level": "O1",
    "use_fp16_test": False,
    "use_promote": False,
}
EMA_DEFAULTS = {"decay": 0.9999}

# Keys of the Optimizer section (union over the supported optimizers) and of Optimizer.lr (union over schedules).
OPTIMIZER_KEYS = [
    "name", "momentum", "use_nesterov", "rho", "epsilon", "centered", "beta1", "beta2", "weight_decay",
    "lr", "regularizer", "no_weight_decay_name", "one_dim_param_no_weight_decay", "clip_norm", "grad_clip",
    "multi_precision",
]
LR_KEYS = [
    "name", "learning_rate", "warmup_epoch", "warmup_start_lr", "eta_min", "by_epoch", "decay_epochs", "values",
    "step_size", "gamma",
]
REGULARIZER_KEYS = ["name", "coeff"]
GRAD_CLIP_KEYS = ["name", "clip_norm"]

SECTIONS = ["Global", "AMP", "EMA", "Arch", "Loss", "Optimizer", "DataLoader", "Infer", "Metric"]
_LOADER_MODE_SCHEMA = {"dataset": ANY, "sampler": ANY, "loader": ANY}
SCHEMA = {
    "Global": {k: ANY for k in GLOBAL_KEYS},
    "AMP": {k: ANY for k in AMP_DEFAULTS},
    "EMA": {k: ANY for k in EMA_DEFAULTS},
    "Arch": ANY,
    "Loss": {"Train": ANY, "Eval": ANY},
    "Optimizer": {
        **{k: ANY for k in OPTIMIZER_KEYS},
        "lr": {k: ANY for k in LR_KEYS},
        "regularizer": {k: ANY for k in REGULARIZER_KEYS},
        "grad_clip": {k: ANY for k in GRAD_CLIP_KEYS},
    },
    "DataLoader": {mode: dict(_LOADER_MODE_SCHEMA) for mode in ("Train", "Eval", "Test")},
    "Infer": {"infer_imgs": ANY, "batch_size": ANY, "transforms": ANY, "PostProcess": ANY},
    "Metric": {"Train": ANY, "Eval": ANY},
}
assert list(SCHEMA) == SECTIONS

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
    """Warn through the project logger when it exists, else on stderr (config loads before the logger is set up)."""
    try:
        from ppcls_lite.utils import logger

        warn = getattr(logger, "warning", None) or logger.get_logger().warning
    except Exception:  # logger missing or not initialised: keep config usable on its own
        warn = None
    if warn is not None:
        warn(message)
    else:
        print(f"WARNING: {message}", file=sys.stderr)


def _info(message: str) -> None:
    try:
        from ppcls_lite.utils import logger

        info = getattr(logger, "info", None) or logger.get_logger().info
    except Exception:
        info = None
    if info is not None:
        info(message)
    else:
        print(message)


def did_you_mean(name, candidates) -> str:
    """` Did you mean 'X'?` for the closest candidate, or '' (shared by every "unknown name" error)."""
    match = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" Did you mean '{match[0]}'?" if match else ""


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


def load_yaml_with_bases(path, _chain=()) -> dict:
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


def parse_override(text: str):
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


def _to_number(value):
    if isinstance(value, str) and _NUMBER_RE.match(value.strip()):
        text = value.strip()
        return int(text) if _INT_RE.match(text) else float(text)
    return value


def normalize_numbers(value):
    """Recursively turn number-looking strings ('1e-5', '0.1') into numbers."""
    if isinstance(value, dict):
        return {k: normalize_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize_numbers(v) for v in value]
    return _to_number(value)


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


def iter_named_list(items, where):
    """PaddleClas lists of one-key mappings (`[{CELoss: {weight: 1.0}}, ...]`, op lists) -> (index, name, params).

    Each item must be a mapping {Name: {params} | null}; params come back as a new dict (empty for null).
    """
    if not isinstance(items, list):
        raise ConfigError(f"'{where}' must be a list like [{{Name: {{param: value}}}}], got {items!r}")
    for i, item in enumerate(items):
        if not (isinstance(item, dict) and len(item) == 1):
            raise ConfigError(f"'{where}.{i}' must be a one-key mapping like {{CELoss: {{weight: 1.0}}}}, got {item!r}")
        name, params = next(iter(item.items()))
        if params is not None and not isinstance(params, dict):
            raise ConfigError(f"'{where}.{i}.{name}' must hold a mapping of parameters, got {params!r}")
        yield i, name, dict(params or {})


def _check_named_list(items, where):
    """Loss/Metric lists and op lists: each item a one-key mapping {Name: {params} | null}."""
    if items is not None:
        for _ in iter_named_list(items, where):
            pass


_POSITIVE_INT_GLOBAL_KEYS = ("epochs", "save_interval", "eval_interval", "print_batch_step")


def _check_global_values(global_section: dict) -> None:
    """Counts must be whole numbers (a typo such as `-o Global.epochs=3.5` fails here, not mid-training)."""
    for key in _POSITIVE_INT_GLOBAL_KEYS:
        value = global_section.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"Global.{key} must be a positive whole number, got {value!r}")
    seed = global_section.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ConfigError(f"Global.seed must be a whole number, got {seed!r}")


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
    _check_global_values(config.get("Global") or {})
    for key, why in IGNORED_GLOBAL_KEYS.items():
        if (config.get("Global") or {}).get(key):
            _warn(f"Global.{key} has no effect here: {why}.")


# ---------------------------------------------------------------------------------------------------------
# Public entry points


def get_config(path, overrides=None, show: bool = False) -> dict:
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
    _info("---------------- config ----------------")
    for line in config_to_text(config).rstrip("\n").splitlines():
        _info(line)
    _info("----------------------------------------")


def save_config(config: dict, path) -> None:
    """Write `config` as YAML to `path` (parent dirs created; written to a temp name, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(config_to_text(config), encoding="utf-8")
    os.replace(tmp, path)


def parse_args(description=None, extra_args=None, argv=None) -> argparse.Namespace:
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
    if extra_args is not None:
        extra_args(parser)
    return parser.parse_args(argv)
