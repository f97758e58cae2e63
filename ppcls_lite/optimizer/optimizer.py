"""Optimizers (`Optimizer` section): Momentum, SGD, RMSProp, Adam, AdamW with per-parameter-group weight decay.

Keys and defaults follow PaddleClas's `ppcls/optimizer/optimizer.py`; `clip_norm` is PaddleClas's shorthand for
`ClipGradByNorm` (each gradient clipped by its own L2 norm), `grad_clip` selects the clipping class explicitly.
`clip_grad` (PaddleClas's MobileNetV4 configs, after timm's `--clip-grad`) clips all gradients together to that
global L2 norm, as timm does; PaddleClas itself passes the key to its AdamW, which ignores it.
"""
import copy
from dataclasses import dataclass
from typing import Any, Optional

import paddle

from ppcls_lite.utils.config_rules import FRACTION, NON_NEGATIVE, POSITIVE, check_keys_of, normalize_numbers, warn
from ppcls_lite.utils.registry import Registry, check_keys

from .learning_rate import build_lr_scheduler, check_lr_values

# Optimizers an `Optimizer.name` may name: each takes the run's OptimizerSetup and its own keys (with defaults).
OPTIMIZERS = Registry("optimizer")
REGULARIZERS = Registry("regularizer")
REGULARIZERS.add("L2", paddle.regularizer.L2Decay)
REGULARIZERS.add("L1", paddle.regularizer.L1Decay)
GRAD_CLIPS = Registry("gradient clip")
GRAD_CLIPS.add("ClipGradByGlobalNorm", paddle.nn.ClipGradByGlobalNorm)
GRAD_CLIPS.add("ClipGradByNorm", paddle.nn.ClipGradByNorm)
# Keys every optimizer understands.
COMMON_KEYS = ("name", "lr", "regularizer", "weight_decay", "no_weight_decay_name", "one_dim_param_no_weight_decay",
               "clip_norm", "grad_clip", "clip_grad")
# Valid ranges of the Optimizer keys (checked when the config loads).
OPTIMIZER_VALUE_RULES = {"momentum": FRACTION, "beta1": FRACTION, "beta2": FRACTION, "rho": FRACTION,
                         "epsilon": POSITIVE, "weight_decay": NON_NEGATIVE, "clip_norm": POSITIVE,
                         "clip_grad": POSITIVE}
REGULARIZER_KEYS = ("name", "coeff")
GRAD_CLIP_KEYS = ("name", "clip_norm")


@dataclass
class OptimizerSetup:
    """What every optimizer needs besides its own keys: the schedule, the parameter groups, decay and clipping."""

    scheduler: Any
    decay: list            # (name, param) pairs that get weight decay
    no_decay: list         # (name, param) pairs that do not
    regularizer: Optional[str]
    coeff: float
    grad_clip: Any

    def coupled(self) -> dict:
        """Constructor kwargs with coupled decay (gradient += coeff * param), set per parameter group."""
        groups = []
        if self.decay:
            regularizer = REGULARIZERS.get(self.regularizer)(self.coeff) if self.regularizer is not None else 0.0
            groups.append({"params": [p for _, p in self.decay], "weight_decay": regularizer})
        if self.no_decay:
            groups.append({"params": [p for _, p in self.no_decay], "weight_decay": 0.0})
        return {"learning_rate": self.scheduler, "parameters": groups, "grad_clip": self.grad_clip}


@OPTIMIZERS.register()
def Momentum(setup: OptimizerSetup, momentum: float = 0.9, use_nesterov: bool = False,
             multi_precision: bool = False) -> paddle.optimizer.Optimizer:
    """paddle's Momentum (SGD with momentum)."""
    return paddle.optimizer.Momentum(**setup.coupled(), momentum=float(momentum), use_nesterov=bool(use_nesterov),
                                     multi_precision=bool(multi_precision))


@OPTIMIZERS.register()
def SGD(setup: OptimizerSetup, multi_precision: bool = False) -> paddle.optimizer.Optimizer:
    """paddle's plain SGD."""
    return paddle.optimizer.SGD(**setup.coupled(), multi_precision=bool(multi_precision))


@OPTIMIZERS.register()
def RMSProp(setup: OptimizerSetup, rho: float = 0.95, epsilon: float = 1e-6, momentum: float = 0.0,
            centered: bool = False, multi_precision: bool = False) -> paddle.optimizer.Optimizer:
    """paddle's RMSProp; PaddleClas's accepts multi_precision and does not use it, so here."""
    return paddle.optimizer.RMSProp(**setup.coupled(), rho=float(rho), epsilon=float(epsilon),
                                    momentum=float(momentum), centered=bool(centered))


@OPTIMIZERS.register()
def Adam(setup: OptimizerSetup, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8,
         lazy_mode: bool = False, multi_precision: bool = False) -> paddle.optimizer.Optimizer:
    """paddle's Adam; coupled decay like SGD/Momentum (coeff * param is added to the gradient)."""
    return paddle.optimizer.Adam(**setup.coupled(), beta1=float(beta1), beta2=float(beta2), epsilon=float(epsilon),
                                 lazy_mode=bool(lazy_mode), multi_precision=bool(multi_precision))


@OPTIMIZERS.register()
def AdamW(setup: OptimizerSetup, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8,
          lazy_mode: bool = False, multi_precision: bool = False) -> paddle.optimizer.Optimizer:
    """paddle's AdamW: decoupled decay by coefficient (0.01, paddle's default, when the config sets none)."""
    if setup.regularizer == "L1":
        raise ValueError("AdamW applies decoupled (L2-style) weight decay; use regularizer name L2 or weight_decay")
    coeff = 0.01 if setup.regularizer is None else setup.coeff
    # paddle selects the decayed params by their (auto-generated) .name.
    decay_ids = {p.name for _, p in setup.decay}
    return paddle.optimizer.AdamW(
        learning_rate=setup.scheduler, parameters=[p for _, p in setup.decay + setup.no_decay], weight_decay=coeff,
        apply_decay_param_fun=lambda param_name: param_name in decay_ids, grad_clip=setup.grad_clip,
        beta1=float(beta1), beta2=float(beta2), epsilon=float(epsilon), lazy_mode=bool(lazy_mode),
        multi_precision=bool(multi_precision))


def check_optimizer_values(config: dict, problems: list) -> None:
    """Append a message for each value of the Optimizer section out of its range."""
    opt = config.get("Optimizer")
    if isinstance(opt, dict):
        check_keys_of(problems, opt, OPTIMIZER_VALUE_RULES, "Optimizer")
        check_keys_of(problems, opt.get("regularizer"), {"coeff": NON_NEGATIVE}, "Optimizer.regularizer")
        check_keys_of(problems, opt.get("grad_clip"), {"clip_norm": POSITIVE}, "Optimizer.grad_clip")
        check_lr_values(problems, opt.get("lr"))


def own_keys(name: str) -> list:
    """The keys of `name` beyond COMMON_KEYS (its constructor's, minus the setup)."""
    return OPTIMIZERS.accepted(name, "Optimizer.name", injected=["setup"])


def optimizer_keys() -> list:
    """Every key the Optimizer section may hold: the common ones, then each optimizer's own (the config schema)."""
    return OPTIMIZERS.all_accepted(COMMON_KEYS, injected=["setup"])


def split_decay_params(model: paddle.nn.Layer, no_weight_decay_name: "str | list | None" = None,
                       one_dim_param_no_weight_decay: bool = False) -> tuple:
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
    name = REGULARIZERS.canonical(reg.get("name", "L2"), "Optimizer.regularizer.name")
    check_keys(reg, REGULARIZER_KEYS, "Optimizer.regularizer")
    return name, float(reg.get("coeff", 0.0))


def _grad_clip(cfg):
    given = [key for key in ("clip_norm", "grad_clip", "clip_grad") if cfg.get(key) is not None]
    if len(given) > 1:
        raise ValueError(f"set only one of Optimizer.clip_norm, grad_clip and clip_grad, not {' and '.join(given)}")
    if cfg.get("clip_norm") is not None:  # PaddleClas's meaning: per-gradient norm
        return paddle.nn.ClipGradByNorm(clip_norm=float(cfg["clip_norm"]))
    if cfg.get("clip_grad") is not None:  # timm's meaning: the global norm of all gradients
        return paddle.nn.ClipGradByGlobalNorm(clip_norm=float(cfg["clip_grad"]))
    clip = cfg.get("grad_clip")
    if clip is None:
        return None
    if not isinstance(clip, dict):
        raise ValueError(f"Optimizer.grad_clip must be a mapping like {{name: ClipGradByGlobalNorm, clip_norm: 1.0}}")
    name = GRAD_CLIPS.canonical(clip.get("name", "ClipGradByGlobalNorm"), "Optimizer.grad_clip.name")
    check_keys(clip, GRAD_CLIP_KEYS, "Optimizer.grad_clip")
    if clip.get("clip_norm") is None:
        raise ValueError("Optimizer.grad_clip.clip_norm is required")
    return GRAD_CLIPS.get(name)(clip_norm=float(clip["clip_norm"]))


def build_optimizer(optimizer_config: dict, epochs: float, steps_per_epoch: int, model: paddle.nn.Layer) -> tuple:
    """Return (optimizer, lr_scheduler) for `model` from the YAML `Optimizer` section.

    The scheduler has attribute `by_epoch` (step it once per epoch if True, else once per iteration).
    """
    if not isinstance(optimizer_config, dict):
        raise ValueError(f"Optimizer must be a mapping like {{name: Momentum, lr: {{...}}}}, got {optimizer_config!r}")
    cfg = normalize_numbers(copy.deepcopy(optimizer_config))
    check_keys(cfg, optimizer_keys(), "Optimizer")
    name = cfg.get("name")
    OPTIMIZERS.canonical(name, "Optimizer.name")
    if cfg.get("lr") is None:
        raise ValueError("Optimizer.lr is required, e.g. lr: {name: Cosine, learning_rate: 0.1}")
    own = own_keys(name)
    foreign = [k for k in cfg if k not in COMMON_KEYS and k not in own]
    if foreign:
        warn(f"Optimizer key(s) {foreign} do not apply to {name} and are ignored "
             f"({name} takes: {', '.join(own) or 'no extra keys'})")

    scheduler = build_lr_scheduler(cfg["lr"], epochs, steps_per_epoch)
    reg_name, coeff = _decay_coeff(cfg)
    decay, no_decay = split_decay_params(model, cfg.get("no_weight_decay_name"),
                                         bool(cfg.get("one_dim_param_no_weight_decay", False)))
    if not decay and not no_decay:
        raise ValueError("the model has no trainable parameters (every parameter has stop_gradient=True); "
                         "check Arch.freeze_befor / stop_after")
    setup = OptimizerSetup(scheduler, decay, no_decay, reg_name, coeff, _grad_clip(cfg))
    optimizer = OPTIMIZERS.build(name, {k: cfg[k] for k in own if k in cfg}, "Optimizer", setup=setup)
    return optimizer, scheduler
