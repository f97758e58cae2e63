"""LR schedules (`Optimizer.lr`) built from paddle's schedulers, with optional linear warm-up.

Steps are iterations unless `by_epoch: True`, in which case they are epochs. The returned scheduler carries
`by_epoch` so the engine knows to call `.step()` once per iteration or once per epoch.

Schedules and edge cases follow PaddleClas's `ppcls/optimizer/learning_rate.py`:
- a warm-up of at least the run's epochs is clamped to the run (the whole run warms up towards
  `learning_rate`), with a warning;
- a decay with no steps left after the warm-up (Cosine `T_max <= 0`, Linear `decay_steps <= 0`) keeps
  `learning_rate` constant after the warm-up, with a warning;
- `by_epoch: True` moves the LR once per epoch; fractional epoch values are rounded, with a warning;
- `last_epoch` is accepted; the schedule always starts at step 0 here (a resume restores its position from
  the checkpoint), so utils.config warns when it is not -1.
"""

import paddle

from ppcls_lite.utils.config import LR_KEYS, _warn, did_you_mean, normalize_numbers


class ConstantLR(paddle.optimizer.lr.LRScheduler):
    """The same learning rate at every step (a scheduler all the same, so the engine treats all alike)."""

    def get_lr(self):
        return self.base_lr


class LinearWarmup(paddle.optimizer.lr.LinearWarmup):
    """paddle's LinearWarmup, restoring its inner schedule without paddle's 'unused values' warning."""

    def set_state_dict(self, state_dict):
        state = dict(state_dict)
        inner = state.pop("LinearWarmup_LR", None)
        paddle.optimizer.lr.LRScheduler.set_state_dict(self, state)
        if inner is not None and isinstance(self.learning_rate, paddle.optimizer.lr.LRScheduler):
            self.learning_rate.set_state_dict(inner)


def _required(cfg, key, name):
    if cfg.get(key) is None:
        raise ValueError(f"Optimizer.lr.{key} is required for the {name} schedule")
    return cfg[key]


def _steps_left_or_constant(name, lr, steps, what, epochs, warmup, clamped):
    """PaddleClas keeps the LR constant when no steps are left for the decay after the warm-up."""
    if steps > 0:
        return None
    if not clamped:  # after a clamp, the clamp warning already says the whole run is warm-up
        _warn(f"{name} schedule: {what} = {steps} (Global.epochs {epochs:g} - Optimizer.lr.warmup_epoch {warmup:g}); "
              f"the LR stays at learning_rate {lr:g} after the warm-up, as in PaddleClas.")
    return ConstantLR(lr)


def _cosine(cfg, epochs, unit, warmup, clamped):
    lr = float(_required(cfg, "learning_rate", "Cosine"))
    t_max = int(round((epochs - warmup) * unit))
    constant = _steps_left_or_constant("Cosine", lr, t_max, "T_max", epochs, warmup, clamped)
    if constant is not None:
        return constant, lr
    return paddle.optimizer.lr.CosineAnnealingDecay(lr, T_max=t_max, eta_min=float(cfg.get("eta_min") or 0.0)), lr


def _linear(cfg, epochs, unit, warmup, clamped):
    """PaddleClas's `Linear`: paddle's PolynomialDecay to `end_lr` over the steps after the warm-up."""
    lr = float(_required(cfg, "learning_rate", "Linear"))
    decay_steps = int(round((epochs - warmup) * unit))
    constant = _steps_left_or_constant("Linear", lr, decay_steps, "decay_steps", epochs, warmup, clamped)
    if constant is not None:
        return constant, lr
    scheduler = paddle.optimizer.lr.PolynomialDecay(
        lr, decay_steps=decay_steps, end_lr=float(cfg.get("end_lr") or 0.0), power=float(cfg.get("power", 1.0)),
        cycle=bool(cfg.get("cycle", False)))
    return scheduler, lr


def _piecewise(cfg, epochs, unit, warmup, clamped):
    decay_epochs = list(_required(cfg, "decay_epochs", "Piecewise"))
    values = [float(v) for v in _required(cfg, "values", "Piecewise")]
    if len(values) != len(decay_epochs) + 1:
        raise ValueError(f"Piecewise schedule: Optimizer.lr.values needs one more entry than decay_epochs "
                         f"(got {len(values)} values for {len(decay_epochs)} boundaries)")
    lr = cfg.get("learning_rate")
    if lr is not None and float(lr) != values[0]:
        _warn(f"Piecewise schedule: Optimizer.lr.learning_rate ({lr}) is not used; the rate starts at "
              f"values[0] = {values[0]} and follows values/decay_epochs.")
    boundaries = [int(round(float(e) * unit)) for e in decay_epochs]
    return paddle.optimizer.lr.PiecewiseDecay(boundaries, values), values[0]


def _step(cfg, epochs, unit, warmup, clamped):
    lr = float(_required(cfg, "learning_rate", "Step"))
    step_size = int(round(float(_required(cfg, "step_size", "Step")) * unit))
    if step_size <= 0:
        raise ValueError(f"Step schedule: Optimizer.lr.step_size must be > 0 epochs, got {cfg['step_size']}")
    gamma = float(cfg.get("gamma", 0.1))
    return paddle.optimizer.lr.StepDecay(lr, step_size=step_size, gamma=gamma), lr


def _multistep(cfg, epochs, unit, warmup, clamped):
    lr = float(_required(cfg, "learning_rate", "MultiStepDecay"))
    milestones = [int(round(float(m) * unit)) for m in _required(cfg, "milestones", "MultiStepDecay")]
    if milestones != sorted(set(milestones)):
        raise ValueError(f"MultiStepDecay schedule: Optimizer.lr.milestones must increase, got {cfg['milestones']}")
    return paddle.optimizer.lr.MultiStepDecay(lr, milestones=milestones, gamma=float(cfg.get("gamma", 0.1))), lr


def _one_cycle(cfg, epochs, unit, warmup, clamped):
    """PaddleClas's `OneCycleLR`: paddle's OneCycleLR over the run's steps, its peak is `max_learning_rate`."""
    peak = float(_required(cfg, "max_learning_rate", "OneCycleLR"))
    scheduler = paddle.optimizer.lr.OneCycleLR(
        peak, total_steps=max(1, int(round(epochs * unit))), divide_factor=float(cfg.get("divide_factor", 25.0)),
        end_learning_rate=float(cfg.get("end_learning_rate", 1e-10)), phase_pct=float(cfg.get("phase_pct", 0.3)),
        anneal_strategy=str(cfg.get("anneal_strategy", "cos")), three_phase=bool(cfg.get("three_phase", False)))
    return scheduler, peak


def _cyclic(cfg, epochs, unit, warmup, clamped):
    """PaddleClas's `Cyclic`: paddle's CyclicLR between base and max rate; step sizes are steps, as there."""
    base = float(_required(cfg, "base_learning_rate", "Cyclic"))
    down = cfg.get("step_size_down")
    scheduler = paddle.optimizer.lr.CyclicLR(
        base, float(_required(cfg, "max_learning_rate", "Cyclic")),
        step_size_up=int(_required(cfg, "step_size_up", "Cyclic")),
        step_size_down=None if down is None else int(down), mode=str(cfg.get("mode", "triangular")),
        exp_gamma=float(cfg.get("exp_gamma", 1.0)), scale_mode=str(cfg.get("scale_mode", "cycle")))
    return scheduler, base


def _constant(cfg, epochs, unit, warmup, clamped):
    lr = float(_required(cfg, "learning_rate", "Constant"))
    return ConstantLR(lr), lr


# Keys every schedule accepts besides its own.
COMMON_LR_KEYS = ("name", "warmup_epoch", "warmup_start_lr", "by_epoch", "last_epoch", "verbose")
# name -> (builder, its own keys). ConstLR is PaddleClas's newer name for Constant.
SCHEDULES = {
    "Cosine": (_cosine, ("learning_rate", "eta_min")),
    "Piecewise": (_piecewise, ("decay_epochs", "values", "learning_rate")),
    "Step": (_step, ("learning_rate", "step_size", "gamma")),
    "Constant": (_constant, ("learning_rate",)),
    "ConstLR": (_constant, ("learning_rate",)),
    "Linear": (_linear, ("learning_rate", "end_lr", "power", "cycle")),
    "MultiStepDecay": (_multistep, ("learning_rate", "milestones", "gamma")),
    "OneCycleLR": (_one_cycle, ("max_learning_rate", "divide_factor", "end_learning_rate", "phase_pct",
                                "anneal_strategy", "three_phase")),
    "Cyclic": (_cyclic, ("base_learning_rate", "max_learning_rate", "step_size_up", "step_size_down", "mode",
                         "exp_gamma", "scale_mode")),
}
# PaddleClas schedules that cannot work here, and why.
UNSUPPORTED_SCHEDULES = {
    "ReduceOnPlateau": "it steps on an eval metric, and the engine steps schedules by iteration or epoch only",
    "CosineFixmatch": "it belongs to PaddleClas's semi-supervised FixMatch training, which ppcls_lite does not have",
}


def _warn_fractional_epochs(cfg):
    """by_epoch counts whole epochs: say which fractional epoch values get rounded (PaddleClas would fail)."""
    rounded = []
    for key in ("warmup_epoch", "step_size", "decay_epochs", "milestones"):
        values = cfg.get(key)
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, float) and not value.is_integer():
                rounded.append(f"{key} {value:g} -> {round(value)}")
    if rounded:
        _warn(f"Optimizer.lr.by_epoch is True, so the schedule moves once per epoch and counts whole epochs: "
              f"{', '.join(rounded)}.")


def build_lr_scheduler(lr_config, epochs, steps_per_epoch):
    """`lr_config` is the YAML Optimizer.lr mapping (or a plain number for a constant rate)."""
    if isinstance(lr_config, (int, float)):
        lr_config = {"name": "Constant", "learning_rate": lr_config}
    if not isinstance(lr_config, dict):
        raise ValueError(f"Optimizer.lr must be a mapping like {{name: Cosine, learning_rate: 0.1}}, got {lr_config!r}")
    cfg = normalize_numbers(dict(lr_config))
    unknown = [k for k in cfg if k not in LR_KEYS]
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in Optimizer.lr. Valid keys: {', '.join(LR_KEYS)}."
                         f"{did_you_mean(unknown[0], LR_KEYS)}")
    name = cfg.get("name", "Constant")
    if name in UNSUPPORTED_SCHEDULES:
        raise ValueError(f"Optimizer.lr.name={name} is a PaddleClas schedule that is not supported here: "
                         f"{UNSUPPORTED_SCHEDULES[name]}. Valid: {', '.join(SCHEDULES)}")
    if name not in SCHEDULES:
        raise ValueError(f"unknown LR schedule Optimizer.lr.name='{name}'. Valid: {', '.join(SCHEDULES)}."
                         f"{did_you_mean(name, SCHEDULES)}")
    builder, own_keys = SCHEDULES[name]
    foreign = [k for k in cfg if k not in own_keys and k not in COMMON_LR_KEYS]
    if foreign:
        _warn(f"Optimizer.lr key(s) {foreign} do not apply to the {name} schedule and are ignored "
              f"({name} takes: {', '.join(own_keys)})")
    if int(steps_per_epoch) <= 0:
        raise ValueError(f"steps_per_epoch must be > 0, got {steps_per_epoch} (is the training list empty?)")
    by_epoch = bool(cfg.get("by_epoch", False))
    unit = 1 if by_epoch else int(steps_per_epoch)
    if by_epoch:
        _warn_fractional_epochs(cfg)
    epochs = float(epochs)
    warmup_epoch = float(cfg.get("warmup_epoch") or 0)
    clamped = warmup_epoch > 0 and warmup_epoch >= epochs
    if clamped:
        _warn(f"Optimizer.lr.warmup_epoch ({warmup_epoch:g}) >= Global.epochs ({epochs:g}): the warm-up is clamped "
              f"to {epochs:g} epochs, so the whole run warms up towards learning_rate (as PaddleClas does).")
        warmup_epoch = epochs
    scheduler, peak_lr = builder(cfg, epochs, unit, warmup_epoch, clamped)

    warmup_steps = int(round(warmup_epoch * unit))
    if warmup_steps > 0:
        start_lr = float(cfg.get("warmup_start_lr") or 0.0)
        if start_lr >= peak_lr:
            raise ValueError(f"Optimizer.lr.warmup_start_lr ({start_lr}) must be below the learning rate it warms up "
                             f"to ({peak_lr}); lower it or set warmup_epoch: 0")
        # After warm-up LinearWarmup calls the inner schedule with (step - warmup_steps): the schedule starts then.
        scheduler = LinearWarmup(scheduler, warmup_steps, start_lr=start_lr, end_lr=peak_lr)
    scheduler.by_epoch = by_epoch
    scheduler.warmup_steps = warmup_steps
    return scheduler
