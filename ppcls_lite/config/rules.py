"""Where the config checks come from: the plain sections' rules (Global, AMP, EMA, Infer), written here, and the
builder packages' `CONFIG_RULES` declarations (arch, data, loss, metric, optimizer) and the slim package's, read
here.

This module imports the builder packages itself, so the schema and every name check are complete the moment
`ppcls_lite.config` is used, whatever the caller imported before. The declarations are read at check time, so a
name registered later (a user's own model or op) counts too.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from ppcls_lite import arch, data, loss, metric, optimizer, slim
from ppcls_lite.pipeline import POSTPROCESSES
from ppcls_lite.utils.config_rules import (ANY, COUNT, FRACTION, MAX_IMAGE_SIDE, NON_NEGATIVE_COUNT, POSITIVE,
                                           PROBABILITY, NameCheck, SectionRules, check_keys_of)
from ppcls_lite.utils.schema import AMP_DEFAULTS, EMA_DEFAULTS, GLOBAL_DEFAULTS, INFER_DEFAULTS
from ppcls_lite.utils.threads import check_cpu_threads

# The sections in their canonical order (get_config returns them so).
SECTIONS = ("Global", "AMP", "EMA", "Slim", "Arch", "Loss", "Optimizer", "DataLoader", "Infer", "Metric")

# PaddleClas keys that are accepted but change nothing here: key -> why (printed once as a warning).
IGNORED_GLOBAL_KEYS = {
    "use_dali": "NVIDIA DALI data loading is not supported; the normal DataLoader is used",
    "distributed": "data parallelism follows the launcher (python -m paddle.distributed.launch), not this key",
    # Keys PaddleClas's TIPC lines and export add (issue 23).
    "print_mem_info": "GPU memory is not logged per step",
    "log_ranks": "rank 0 writes the log",
    "export_for_fd": "tools/export_model.py always writes inference.yml (preprocessing, label list) beside the "
                     "model, a superset of PaddleClas's export_for_fd file",
    "uniform_output_enabled": "PaddleX's extra export files are not written",
    "pdx_model_name": "PaddleX's extra export files are not written",
    "hpi_config_path": "PaddleX's high-performance inference config is not written",
}
# PaddleClas Global keys handled in get_config: `class_num` (its older place for Arch.class_num) and `ema` (its older
# place for the EMA section: {enable, decay}).
GLOBAL_KEYS = list(GLOBAL_DEFAULTS) + list(IGNORED_GLOBAL_KEYS) + ["class_num", "ema"]

GLOBAL_VALUE_RULES = {"epochs": COUNT, "save_interval": COUNT, "eval_interval": COUNT,
                      "print_batch_step": COUNT, "class_num": COUNT, "start_eval_epoch": NON_NEGATIVE_COUNT,
                      "sim_block_size": COUNT, "max_image_pixels": NON_NEGATIVE_COUNT}  # max_image_pixels 0: no limit
# Probability thresholds of the task post-processes (Infer.PostProcess keys).
THRESHOLD_KEYS = ("threshold", "glasses_threshold", "hold_threshold", "color_threshold", "type_threshold")
# Post-processes that read a fixed number of outputs: name -> (class count, what they are).
FIXED_OUTPUTS = {"PersonAttribute": (26, "PA100k's 26 pedestrian attributes"),
                 "VehicleAttribute": (19, "10 colours + 9 vehicle types")}
# Global keys with a fixed set of values (null allowed where the default is null).
GLOBAL_CHOICES = {"eval_mode": ("classification", "retrieval"), "retrieval_feature_from": ("features", "backbone"),
                  "feature_binarize": (None, "round", "sign")}


def _is_side(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_IMAGE_SIDE


def check_plain_values(config: dict, problems: List[str]) -> None:
    """Append a message for each value of Global, AMP, EMA, Infer and Arch.class_num out of its range."""
    g = config.get("Global") or {}
    check_keys_of(problems, g, GLOBAL_VALUE_RULES, "Global")
    for key, choices in GLOBAL_CHOICES.items():
        if g.get(key) is not None and g[key] not in choices:
            problems.append(f"Global.{key} must be one of {', '.join(map(str, choices))}, got {g[key]!r}")
    if g.get("feature_normalize") is not None and not isinstance(g["feature_normalize"], bool):
        problems.append(f"Global.feature_normalize must be True or False, got {g['feature_normalize']!r}")
    arch_name = (config.get("Arch") or {}).get("name")
    if g.get("eval_mode") == "retrieval" and arch_name != "RecModel":
        problems.append(f"Global.eval_mode is retrieval but Arch.name is {arch_name!r}: retrieval eval compares "
                        f"the features of a RecModel (Arch: {{name: RecModel, Backbone: ..., Neck: ..., Head: ...}}); "
                        f"set Global.eval_mode: classification for a classifier")
    if g.get("seed") is not None and (isinstance(g["seed"], bool) or not isinstance(g["seed"], int)):
        problems.append(f"Global.seed must be a whole number, got {g['seed']!r}")
    shape = g.get("image_shape")
    if shape is not None and not (isinstance(shape, list) and len(shape) == 3 and all(_is_side(v) for v in shape)):
        problems.append(f"Global.image_shape must be a list [channels, height, width] of whole numbers from 1 to "
                        f"{MAX_IMAGE_SIDE}, got {shape!r}")
    check_keys_of(problems, g.get("ema"), {"decay": FRACTION}, "Global.ema")
    if check_cpu_threads(g.get("cpu_threads")):
        problems.append(check_cpu_threads(g.get("cpu_threads")))
    check_keys_of(problems, config.get("Arch"), {"class_num": COUNT}, "Arch")
    check_keys_of(problems, config.get("AMP"), {"scale_loss": POSITIVE}, "AMP")
    check_keys_of(problems, config.get("EMA"), {"decay": FRACTION}, "EMA")
    infer = config.get("Infer")
    if isinstance(infer, dict):
        check_keys_of(problems, infer, {"batch_size": COUNT}, "Infer")
        check_keys_of(problems, infer.get("PostProcess"), {"topk": COUNT}, "Infer.PostProcess")
        check_postprocess(config, infer.get("PostProcess"), problems)


def check_postprocess(config: dict, postprocess: Any, problems: List[str]) -> None:
    """Thresholds in [0, 1]; ThreshOutput's label_0/label_1 and the attribute post-processes against Arch.class_num."""
    if not isinstance(postprocess, dict):
        return
    check_keys_of(problems, postprocess, {key: PROBABILITY for key in THRESHOLD_KEYS}, "Infer.PostProcess")
    class_num = (config.get("Arch") or {}).get("class_num", 1000)
    name = postprocess.get("name")
    if name == "ThreshOutput" and class_num != 2:
        for key in ("label_0", "label_1"):
            if postprocess.get(key) is not None:
                problems.append(f"Infer.PostProcess.{key} names a class of a yes/no model, but Arch.class_num is "
                                f"{class_num}: set Arch.class_num: 2, or remove label_0/label_1 (ThreshOutput then "
                                f"names classes from class_id_map_file)")
    if name in FIXED_OUTPUTS and class_num != FIXED_OUTPUTS[name][0]:
        count, what = FIXED_OUTPUTS[name]
        problems.append(f"Infer.PostProcess.name {name} reads {count} outputs ({what}), but Arch.class_num is "
                        f"{class_num}: set Arch.class_num: {count} or use MultiLabelThreshOutput")


# The plain sections: closed keys from utils/schema.py's defaults. Infer.transforms is the data package's (ops).
PLAIN_RULES = SectionRules(
    schema=lambda: {"Global": {k: ANY for k in GLOBAL_KEYS}, "AMP": {k: ANY for k in AMP_DEFAULTS},
                    "EMA": {k: ANY for k in EMA_DEFAULTS}, "Infer": {k: ANY for k in INFER_DEFAULTS}},
    names=(NameCheck("Infer.PostProcess.name", POSTPROCESSES),),
    check_values=check_plain_values)


def all_rules() -> Tuple[Tuple[str, SectionRules], ...]:
    """(owner, rules) of every section: the plain ones, then each builder package's declaration."""
    return (("config", PLAIN_RULES), ("arch", arch.CONFIG_RULES), ("loss", loss.CONFIG_RULES),
            ("optimizer", optimizer.CONFIG_RULES), ("data", data.CONFIG_RULES), ("metric", metric.CONFIG_RULES),
            ("slim", slim.CONFIG_RULES))


def build_schema() -> Dict[str, Any]:
    """{section: closed keys} in the canonical order, from every declaration (each section declared once)."""
    schema: Dict[str, Any] = {}
    for owner, rules in all_rules():
        for section, keys in rules.schema().items():
            if section in schema or section not in SECTIONS:
                raise RuntimeError(f"{owner} declares the config section {section!r}, which is "
                                   f"{'declared twice' if section in schema else 'not one of ' + ', '.join(SECTIONS)}")
            schema[section] = keys
    missing = [s for s in SECTIONS if s not in schema]
    if missing:
        raise RuntimeError(f"no package declares the config section(s) {missing}")
    return {section: schema[section] for section in SECTIONS}


def name_checks() -> List[NameCheck]:
    """Every name check, in the order of the declarations."""
    return [check for _, rules in all_rules() for check in rules.names]


def value_checks() -> list:
    """Every section-level value check, in the order of the declarations."""
    return [rules.check_values for _, rules in all_rules() if rules.check_values is not None]


def _schema_lines(node: Any, where: str) -> List[str]:
    if not isinstance(node, dict):
        return [f"free-form {where}"]
    lines = [f"closed {where or '(sections)'}: {', '.join(sorted(map(str, node)))}"]
    for key, child in node.items():
        if isinstance(child, dict):
            lines += _schema_lines(child, f"{where}.{key}" if where else key)
    return lines


def _qualname(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}" if fn else "-"


def describe_checks() -> List[str]:
    """Every check a config goes through, one line each: the closed key levels with their keys, each name check with
    the names its registry knows now, each value check. Two processes that print the same lines check alike."""
    lines = _schema_lines(build_schema(), "")
    for check in name_checks():
        names = sorted(check.registry.names()) + sorted(check.registry.aliases())
        lines.append(f"names {check.path} ({check.registry.kind}{', list' if check.named_list else ''}"
                     f"{', required' if check.required else ''}; also {sorted(check.also_accepted)}; items "
                     f"{_qualname(check.check_item)}): {', '.join(names)}")
    lines += [f"values {_qualname(fn)}" for fn in value_checks()]
    return lines
