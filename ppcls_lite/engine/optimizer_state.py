"""Optimizer state in `.pdopt`: keyed by PaddleClas's parameter names on save, mapped to this process's on resume.

Paddle keys each accumulator by its parameter's name (`conv2d_12.w_0_velocity_0`), and those names depend on the
process (see arch/param_names.py). So that PaddleClas can resume a ppcls_lite checkpoint, `.pdopt` is written
with the names PaddleClas's own model has in a fresh process (`paddleclas_parameter_names`), and
"param_names" ({structured key: that name}) is stored beside them for ppcls_lite.

A resume accepts, in this order:
1. a `.pdopt` with "param_names" (ppcls_lite's, any version): mapped through the structured keys;
2. a `.pdopt` keyed by PaddleClas's names (PaddleClas's own checkpoints): mapped through those names;
3. any other naming (e.g. `batch_norm2d_N` from a model built with BatchNorm2D, or counters that do not start
   at 0): mapped by parameter order, the order the optimizer creates its accumulators in.
Every mapped accumulator must have its parameter's shape (or be a [1] counter such as Adam's beta powers), and
every trainable parameter must have state, else `CheckpointError` says what does not fit. PaddleClas saves a list
with one dict per optimizer (`[optimizer.state_dict()]`); a list of one is unwrapped.
"""
import re
from typing import Any, Dict, List, Optional

import numpy as np

from ppcls_lite.arch.param_names import paddleclas_parameter_names

# Entries of a .pdopt that are not accumulators: paddle's LR state, AMP master weights, ppcls_lite's extras.
NOT_ACCUMULATORS = ("LR_Scheduler", "master_weights", "lr_scheduler", "param_names", "amp_scaler")
# The accumulator names paddle's optimizers append to a parameter name (`<param>_<name>_<n>`), longest first.
ACCUMULATOR = re.compile(r"^(?P<param>.+)_(?:moment2_max|moment1|moment2|beta1_pow_acc|beta2_pow_acc|beta1_pow|"
                         r"beta2_pow|velocity|mean_square|mean_grad|momentum_decay_pow|momentum|moment|inf_norm|"
                         r"mu_product|learning_rates|avg_squared_grad|avg_squared_update|prevs|rho|d|m|y)_\d+$")


class OptimizerStateError(ValueError):
    """A `.pdopt` whose state does not fit this model and optimizer; the message says what differs."""


def unwrap_optimizer_state(opt_state: Any, path: str) -> dict:
    """A `.pdopt`'s content as one dict: PaddleClas saves `[optimizer.state_dict()]`, ppcls_lite the dict."""
    if isinstance(opt_state, (list, tuple)):
        if len(opt_state) != 1 or not isinstance(opt_state[0], dict):
            raise OptimizerStateError(f"{path} holds {len(opt_state)} optimizer states (PaddleClas writes one per "
                                      f"optimizer); ppcls_lite trains with one optimizer and can resume only a "
                                      f"checkpoint with one. Load the weights only with Global.pretrained_model.")
        opt_state = opt_state[0]
    if not isinstance(opt_state, dict):
        raise OptimizerStateError(f"{path} is not an optimizer state (got {type(opt_state).__name__})")
    return dict(opt_state)


def rename_accumulators(opt_state: dict, old_to_new: Dict[str, str]) -> dict:
    """`opt_state` with each accumulator `<old name>_<suffix>` (and master weight) keyed `<new name>_<suffix>`."""
    if all(old == new for old, new in old_to_new.items()):
        return dict(opt_state)
    by_length = sorted(old_to_new, key=len, reverse=True)
    renamed = {}
    for key, value in opt_state.items():
        if key == "master_weights" and isinstance(value, dict):
            renamed[key] = {old_to_new.get(k, k): v for k, v in value.items()}
            continue
        old = _owner(key, by_length)
        renamed[key if old is None else old_to_new[old] + key[len(old):]] = value
    return renamed


def saved_optimizer_state(optimizer: Any, model: Any) -> dict:
    """`optimizer.state_dict()` keyed by PaddleClas's parameter names, with "param_names" {structured key: name}."""
    paddleclas_names = paddleclas_parameter_names(model)
    current = {key: param.name for key, param in model.named_parameters()}
    state = rename_accumulators(optimizer.state_dict(), {current[k]: paddleclas_names[k] for k in current})
    state["param_names"] = paddleclas_names
    return state


def _accumulator_keys(opt_state: dict) -> List[str]:
    return [k for k in opt_state if k not in NOT_ACCUMULATORS]


def _owner(key: str, names: List[str]) -> Optional[str]:
    """The name in `names` (longest first) that accumulator `key` belongs to (`<name>_<suffix>`), or None."""
    return next((name for name in names if key.startswith(name + "_")), None)


def _by_names(keys: List[str], saved: Dict[str, str], current: Dict[str, str]) -> Optional[Dict[str, str]]:
    """{saved name: current name} through the structured keys, if every accumulator belongs to a saved name."""
    names = sorted((saved[k] for k in saved if k in current), key=len, reverse=True)
    if any(_owner(key, names) is None for key in keys):
        return None
    return {saved[k]: current[k] for k in saved if k in current}


def _by_order(keys: List[str], trainable: List[Any], path: str) -> Dict[str, str]:
    """{saved name: current name}, the saved parameters in the order of their first accumulator zipped with the
    trainable parameters in the optimizer's order."""
    saved_order: List[str] = []
    for key in keys:
        match = ACCUMULATOR.match(key)
        if match is None:
            raise OptimizerStateError(f"{path}: {key!r} is not an optimizer accumulator this version knows; the "
                                      f"file comes from another optimizer or framework. Load the weights only "
                                      f"with Global.pretrained_model.")
        if match["param"] not in saved_order:
            saved_order.append(match["param"])
    if len(saved_order) != len(trainable):
        raise OptimizerStateError(
            f"{path} holds optimizer state for {len(saved_order)} parameters, but this model trains "
            f"{len(trainable)}: the checkpoint was made with other frozen layers (Arch.freeze_befor) or another "
            f"model. Resume with the config it was trained with, or load the weights only with "
            f"Global.pretrained_model.")
    return {old: param.name for old, param in zip(saved_order, trainable)}


def _check_fits(opt_state: dict, old_to_new: Dict[str, str], trainable: List[Any], path: str,
                every_parameter: bool) -> None:
    """Each accumulator has its parameter's shape (or is a [1] counter); with `every_parameter`, each trainable
    parameter has state (a foreign file; ppcls_lite's own have none for parameters that never got a gradient)."""
    by_name = {param.name: param for param in trainable}
    owners = sorted(old_to_new, key=len, reverse=True)
    with_state = set()
    for key in _accumulator_keys(opt_state):
        old = _owner(key, owners)
        param = by_name.get(old_to_new.get(old)) if old else None
        if param is None:
            continue
        with_state.add(param.name)
        shape = [int(v) for v in getattr(opt_state[key], "shape", np.shape(opt_state[key]))]
        if shape != list(param.shape) and int(np.prod(shape)) != 1:
            raise OptimizerStateError(f"{path}: optimizer state {key} has shape {shape}, but the parameter it was "
                                      f"matched to has {list(param.shape)}: the checkpoint belongs to another "
                                      f"model (or layer order). Resume with the config it was trained with.")
    missing = [p.name for p in trainable if p.name not in with_state]
    if missing and every_parameter:
        raise OptimizerStateError(f"{path} has no optimizer state for {len(missing)} trainable parameters (e.g. "
                                  f"{missing[:3]}): it was made with another optimizer or other frozen layers. "
                                  f"Resume with the config it was trained with, or load the weights only with "
                                  f"Global.pretrained_model.")


def trainable_parameters(optimizer: Any, model: Any) -> List[Any]:
    """The parameters the optimizer updates, in the order it creates their state (parameter groups in order)."""
    params = getattr(optimizer, "_parameter_list", None) or list(model.parameters())
    flat = []
    for item in params:
        flat.extend(item["params"] if isinstance(item, dict) else [item])
    return [p for p in flat if not p.stop_gradient]


def restore_optimizer_state(opt_state: dict, optimizer: Any, model: Any, path: str) -> dict:
    """A `.pdopt` dict (ppcls_lite's or PaddleClas's) re-keyed to this process's parameter names (see module
    doc); the extras ("lr_scheduler", "param_names", "amp_scaler") are removed. Raises OptimizerStateError."""
    state = {k: v for k, v in opt_state.items() if k not in ("lr_scheduler", "param_names", "amp_scaler")}
    keys = _accumulator_keys(state)
    if not keys:  # SGD keeps none
        return state
    trainable = trainable_parameters(optimizer, model)
    current = {key: param.name for key, param in model.named_parameters()}
    saved = opt_state.get("param_names")
    old_to_new = _by_names(keys, saved, current) if saved else None
    own_file = old_to_new is not None
    if old_to_new is None:
        old_to_new = _by_names(keys, paddleclas_parameter_names(model), current)
    if old_to_new is None:
        old_to_new = _by_order(keys, trainable, path)
    _check_fits(state, old_to_new, trainable, path, every_parameter=not own_file)
    return rename_accumulators(state, old_to_new)
