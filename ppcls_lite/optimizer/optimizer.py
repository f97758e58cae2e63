"""Optimizers (`Optimizer` section): Momentum, SGD, RMSProp, Adam, AdamW with per-parameter-group weight decay.

Keys and defaults follow PaddleClas's `ppcls/optimizer/optimizer.py`; `clip_norm` is PaddleClas's shorthand for
`ClipGradByNorm` (each gradient clipped by its own L2 norm), `grad_clip` selects the clipping class explicitly.
"""
import copy

import paddle

from ppcls_lite.utils.config import OPTIMIZER_KEYS, _warn, did_you_mean, normalize_numbers

from .learning_rate import build_lr_scheduler

# name -> {optimizer-specific key: default}
OPTIMIZERS = {
    "Momentum": {"momentum": 0.9, "use_nesterov": False, "multi_precision": False},
    "SGD": {"multi_precision": False},
    # PaddleClas's RMSProp accepts multi_precision and does not use it; so here.
    "RMSProp": {"rho": 0.95, "epsilon": 1e-6, "momentum": 0.0, "centered": False, "multi_precision": False},
    "Adam": {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "lazy_mode": False, "multi_precision": False},
    "AdamW": {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "lazy_mode": False, "multi_precision": False},
}
# Keys every optimizer understands.
_COMMON_KEYS = {"name", "lr", "regularizer", "weight_decay", "no_weight_decay_name", "one_dim_param_no_weight_decay",
                "clip_norm", "grad_clip"}
REGULARIZERS = {"L2": paddle.regularizer.L2Decay, "L1": paddle.regularizer.L1Decay}
GRAD_CLIPS = {"ClipGradByGlobalNorm": paddle.nn.ClipGradByGlobalNorm, "ClipGradByNorm": paddle.nn.ClipGradByNorm}


def split_decay_params(model, no_weight_decay_name=None, one_dim_param_no_weight_decay=False):
    """Split trainable parameters into (decay, no_decay) lists of (structured_name, param).

    A parameter gets no decay if its structured name (from model.named_parameters(), e.g.
    `blocks.0.conv.bias`) contains one of the space-separated substrings of `no_weight_decay_name`, or, with
    `one_dim_param_no_weight_decay`, if it is 1-D (BN scale/shift, biases). Frozen params are left out.
    """
    if isinstance(no_weight_decay_name, str):
        patterns = no_weight_decay_name.split()
    else:
        patterns = list(no_weight_decay_name or [])
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.stop_gradient:
            continue
        skip = any(p in name for p in patterns) or (one_dim_param_no_weight_decay and len(param.shape) == 1)
        (no_decay if skip else decay).append((name, param))
    return decay, no_decay


def _decay_coeff(cfg):
    """(regularizer name, coeff) from `regularizer: {name, coeff}` or a plain `weight_decay` number."""
    reg = cfg.get("regularizer")
    if reg is not None and cfg.get("weight_decay") is not None:
        raise ValueError("set either Optimizer.regularizer or Optimizer.weight_decay, not both")
    if reg is None:
        wd = cfg.get("weight_decay")
        if wd is None:
            return None, 0.0
        return "L2", float(wd)
    if not isinstance(reg, dict):
        raise ValueError(f"Optimizer.regularizer must be a mapping like {{name: L2, coeff: 1e-4}}, got {reg!r}")
    name = reg.get("name", "L2")
    if name not in REGULARIZERS:
        raise ValueError(f"unknown Optimizer.regularizer.name '{name}'. Valid: {', '.join(REGULARIZERS)}."
                         f"{did_you_mean(name, REGULARIZERS)}")
    unknown = [k for k in reg if k not in ("name", "coeff")]
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in Optimizer.regularizer. Valid keys: name, coeff")
    return name, float(reg.get("coeff", 0.0))


def _grad_clip(cfg):
    if cfg.get("clip_norm") is not None and cfg.get("grad_clip") is not None:
        raise ValueError("set either Optimizer.clip_norm or Optimizer.grad_clip, not both")
    if cfg.get("clip_norm") is not None:  # PaddleClas's meaning: per-gradient norm
        return paddle.nn.ClipGradByNorm(clip_norm=float(cfg["clip_norm"]))
    clip = cfg.get("grad_clip")
    if clip is None:
        return None
    if not isinstance(clip, dict):
        raise ValueError(f"Optimizer.grad_clip must be a mapping like {{name: ClipGradByGlobalNorm, clip_norm: 1.0}}")
    name = clip.get("name", "ClipGradByGlobalNorm")
    if name not in GRAD_CLIPS:
        raise ValueError(f"unknown Optimizer.grad_clip.name '{name}'. Valid: {', '.join(GRAD_CLIPS)}."
                         f"{did_you_mean(name, GRAD_CLIPS)}")
    if clip.get("clip_norm") is None:
        raise ValueError("Optimizer.grad_clip.clip_norm is required")
    return GRAD_CLIPS[name](clip_norm=float(clip["clip_norm"]))


def build_optimizer(optimizer_config, epochs, steps_per_epoch, model):
    """Return (optimizer, lr_scheduler) for `model` from the YAML `Optimizer` section.

    The scheduler has attribute `by_epoch` (step it once per epoch if True, else once per iteration).
    """
    if not isinstance(optimizer_config, dict):
        raise ValueError(f"Optimizer must be a mapping like {{name: Momentum, lr: {{...}}}}, got {optimizer_config!r}")
    cfg = normalize_numbers(copy.deepcopy(optimizer_config))
    unknown = [k for k in cfg if k not in OPTIMIZER_KEYS]
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in Optimizer. Valid keys: {', '.join(OPTIMIZER_KEYS)}")
    name = cfg.get("name")
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer Optimizer.name='{name}'. Valid: {', '.join(OPTIMIZERS)}."
                         f"{did_you_mean(name, OPTIMIZERS)}")
    if cfg.get("lr") is None:
        raise ValueError("Optimizer.lr is required, e.g. lr: {name: Cosine, learning_rate: 0.1}")
    defaults = OPTIMIZERS[name]
    foreign = [k for k in cfg if k not in _COMMON_KEYS and k not in defaults]
    if foreign:
        _warn(f"Optimizer key(s) {foreign} do not apply to {name} and are ignored "
                      f"({name} takes: {', '.join(defaults) or 'no extra keys'})")
    options = {k: cfg.get(k, v) for k, v in defaults.items()}

    scheduler = build_lr_scheduler(cfg["lr"], epochs, steps_per_epoch)
    reg_name, coeff = _decay_coeff(cfg)
    if name == "AdamW" and reg_name is None:
        coeff = 0.01  # paddle's AdamW default
    decay, no_decay = split_decay_params(model, cfg.get("no_weight_decay_name"),
                                         bool(cfg.get("one_dim_param_no_weight_decay", False)))
    if not decay and not no_decay:
        raise ValueError("the model has no trainable parameters (every parameter has stop_gradient=True); "
                         "check Arch.freeze_befor / stop_after")
    grad_clip = _grad_clip(cfg)

    if name == "AdamW":
        if reg_name == "L1":
            raise ValueError("AdamW applies decoupled (L2-style) weight decay; use regularizer name L2 or weight_decay")
        # AdamW decays by coefficient; paddle selects params by their (auto-generated) .name.
        decay_ids = {p.name for _, p in decay}
        optimizer = paddle.optimizer.AdamW(
            learning_rate=scheduler, parameters=[p for _, p in decay + no_decay], weight_decay=coeff,
            apply_decay_param_fun=lambda param_name: param_name in decay_ids, grad_clip=grad_clip,
            beta1=float(options["beta1"]), beta2=float(options["beta2"]), epsilon=float(options["epsilon"]),
            lazy_mode=bool(options["lazy_mode"]), multi_precision=bool(options["multi_precision"]),
        )
        return optimizer, scheduler

    # Coupled decay (gradient += coeff * param) set per group; paddle stores it on each param as .regularizer.
    groups = []
    if decay:
        regularizer = REGULARIZERS[reg_name](coeff) if reg_name is not None else 0.0
        groups.append({"params": [p for _, p in decay], "weight_decay": regularizer})
    if no_decay:
        groups.append({"params": [p for _, p in no_decay], "weight_decay": 0.0})
    common = {"learning_rate": scheduler, "parameters": groups, "grad_clip": grad_clip}
    if name == "Momentum":
        optimizer = paddle.optimizer.Momentum(**common, momentum=float(options["momentum"]),
                                              use_nesterov=bool(options["use_nesterov"]),
                                              multi_precision=bool(options["multi_precision"]))
    elif name == "SGD":
        optimizer = paddle.optimizer.SGD(**common, multi_precision=bool(options["multi_precision"]))
    elif name == "Adam":  # coupled decay like SGD/Momentum: paddle's Adam adds coeff * param to the gradient
        optimizer = paddle.optimizer.Adam(**common, beta1=float(options["beta1"]), beta2=float(options["beta2"]),
                                          epsilon=float(options["epsilon"]), lazy_mode=bool(options["lazy_mode"]),
                                          multi_precision=bool(options["multi_precision"]))
    else:  # RMSProp
        optimizer = paddle.optimizer.RMSProp(**common, rho=float(options["rho"]), epsilon=float(options["epsilon"]),
                                             momentum=float(options["momentum"]), centered=bool(options["centered"]))
    return optimizer, scheduler
