"""Validation of a loaded config: closed keys, names (and the parameters of each named-list item), value ranges,
no-effect warnings, and PaddleClas's older Global keys. Each check runs once per get_config.

The schema marks every level either *closed* (a fixed set of known keys: the sections, `Global`, `Optimizer`,
`Optimizer.lr`, ...) or *free-form* (`ANY`: constructor kwargs checked later by the builder that takes them: `Arch`,
a dataset, sampler, loader, an op's params, a loss/metric's params, `Infer.PostProcess`). At a closed level an
unknown key is an error that lists the valid keys and the closest match.
"""
from __future__ import annotations

from typing import Any, Iterator, List, Optional, Tuple

from ppcls_lite.utils.config_rules import ANY, ConfigError, NameCheck, iter_named_list, warn
from ppcls_lite.utils.registry import did_you_mean
from ppcls_lite.utils.schema import EMA_DEFAULTS

from .rules import IGNORED_GLOBAL_KEYS, build_schema, name_checks, value_checks


def unknown_key_message(key: Any, where: str, valid: Any) -> str:
    """'unknown key 'x' in Global. Valid keys there: ... Did you mean ...' (or 'unknown section' at the top)."""
    valid = list(valid)
    if not where:
        return f"unknown section '{key}'. Valid sections: {', '.join(valid)}.{did_you_mean(key, valid)}"
    return f"unknown key '{key}' in {where}. Valid keys there: {', '.join(map(str, valid))}.{did_you_mean(key, valid)}"


def check_closed_keys(node: Any, schema: Any, where: str) -> None:
    """Every key of `node` must be known where the schema is closed; recurse into closed sub-levels."""
    if schema is ANY or node is None:
        return
    if not isinstance(node, dict):
        raise ConfigError(f"'{where or 'config'}' must be a mapping of keys ({', '.join(schema)}), "
                          f"got {type(node).__name__}: {node!r}")
    for key, value in node.items():
        if key not in schema:
            raise ConfigError(unknown_key_message(key, where, schema))
        check_closed_keys(value, schema[key], f"{where}.{key}" if where else key)


def _values_at(node: Any, parts: List[str], where: str = "") -> Iterator[Tuple[str, Any]]:
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


def _check_name(check: NameCheck, name: Any, where: str) -> None:
    if name not in check.also_accepted and name not in check.registry:
        try:
            check.registry.canonical(name, where)
        except KeyError as exc:  # UnknownNameError: the message names the path and the valid names
            raise ConfigError(str(exc)) from None


def _require_name(check: NameCheck, config: dict) -> None:
    """The mapping that holds the checked key (`Arch`, `DataLoader.Train.dataset`) must exist with it."""
    *parents, key = check.path.split(".")
    for where, node in _values_at(config, parents):
        if not isinstance(node, dict) or node.get(key) is None:
            examples = ", ".join(check.registry.names()[:3])
            raise ConfigError(f"'{where}' must be a mapping with a '{key}' (a {check.registry.kind} such as "
                              f"{examples}), got {node!r}")


def check_names(config: dict, problems: List[str]) -> None:
    """Raise ConfigError for the first unknown name (naming the path, the valid names and the closest) or malformed
    named list; append the out-of-range parameters of every named-list item to `problems` on the way."""
    for check in name_checks():
        if check.required:
            _require_name(check, config)
        for where, value in _values_at(config, check.path.split(".")):
            if not check.named_list:
                _check_name(check, value, where)
                continue
            for i, name, params in iter_named_list(value, where):
                _check_name(check, name, f"{where}.{i}")
                if check.check_item is not None:
                    check.check_item(problems, name, params, f"{where}.{i}.{name}")


def raise_problems(problems: List[str]) -> None:
    """One ConfigError listing every value out of its range (key path, value, range), if there is any."""
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else
                          f"{len(problems)} values are out of range:\n  " + "\n  ".join(problems))


def check_config(config: dict) -> None:
    """Names, named-list shapes and value ranges of a config whose keys are already checked; warn about keys that
    have no effect. Raises ConfigError."""
    problems: List[str] = []
    check_names(config, problems)  # raises at the first unknown name; collects the list items' bad values
    for check in value_checks():
        check(config, problems)
    raise_problems(problems)
    for message in no_effect_warnings(config):
        warn(message)


def validate_config(config: dict, schema: Optional[dict] = None) -> None:
    """Every check get_config runs, on a config dict built in code. Raises ConfigError."""
    check_closed_keys(config, build_schema() if schema is None else schema, "")
    check_config(config)


def no_effect_warnings(config: dict) -> List[str]:
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


def apply_older_global_keys(config: dict) -> None:
    """PaddleClas's older `Global.class_num` (-> Arch.class_num) and `Global.ema: {enable, decay}` (-> EMA)."""
    global_section = config.get("Global") or {}
    class_num, arch = global_section.get("class_num"), config.get("Arch")
    if class_num is not None and isinstance(arch, dict):
        if arch.get("class_num") is None:
            arch["class_num"] = class_num
            warn(f"Global.class_num is PaddleClas's old place for the class count: Arch.class_num set to "
                 f"{class_num!r} (write Arch.class_num instead).")
        elif arch["class_num"] != class_num:
            warn(f"Global.class_num ({class_num!r}) is ignored: Arch.class_num ({arch['class_num']!r}) is set and "
                 "wins.")
    ema = global_section.get("ema")
    if ema is None:
        return
    if not isinstance(ema, dict):
        raise ConfigError(f"Global.ema must be a mapping like {{enable: True, decay: 0.999}}, got {ema!r}")
    if not ema.get("enable", True):
        warn("Global.ema.enable is False: no EMA (as without the key).")
    elif config.get("EMA") is not None:
        warn("Global.ema is ignored: the EMA section is set and wins.")
    else:
        config["EMA"] = {"decay": ema.get("decay", EMA_DEFAULTS["decay"])}
        warn(f"Global.ema is PaddleClas's old place for EMA: EMA.decay set to {config['EMA']['decay']!r} "
             "(write an EMA section instead).")
