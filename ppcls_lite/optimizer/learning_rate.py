"""LR schedules (`Optimizer.lr`) built from paddle's schedulers, with optional linear warm-up.

Steps are iterations unless `by_epoch: True`, in which case they are epochs. The returned scheduler carries
`by_epoch` so the engine knows to call `.step()` once per iteration or once per epoch.
"""

import paddle

from ppcls_lite.utils.config import LR_KEYS, did_you_mean, normalize_numbers


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


def _cosine(cfg, epochs, unit, warmup):
    lr = float(_required(cfg, "learning_rate", "Cosine"))
    t_max = int(round((epochs - warmup) * unit))
    if t_max <= 0:
        raise ValueError(f"Cosine schedule: Global.epochs ({epochs}) must exceed Optimizer.lr.warmup_epoch ({warmup})")
    return paddle.optimizer.lr.CosineAnnealingDecay(lr, T_max=t_max, eta_min=float(cfg.get("eta_min") or 0.0)), lr


def _piecewise(cfg, epochs, unit, warmup):
    decay_epochs = list(_required(cfg, "decay_epochs", "Piecewise"))
    values = [float(v) for v in _required(cfg, "values", "Piecewise")]
    if len(values) != len(decay_epochs) + 1:
        raise ValueError(f"Piecewise schedule: Optimizer.lr.values needs one more entry than decay_epochs "
                         f"(got {len(values)} values for {len(decay_epochs)} boundaries)")
    boundaries = [int(round(float(e) * unit)) for e in decay_epochs]
    return paddle.optimizer.lr.PiecewiseDecay(boundaries, values), values[0]


def _step(cfg, epochs, unit, warmup):
    lr = float(_required(cfg, "learning_rate", "Step"))
    step_size = int(round(float(_required(cfg, "step_size", "Step")) * unit))
    if step_size <= 0:
        raise ValueError(f"Step schedule: Optimizer.lr.step_size must be > 0 epochs, got {cfg['step_size']}")
    gamma = float(cfg.get("gamma", 0.1))
    return paddle.optimizer.lr.StepDecay(lr, step_size=step_size, gamma=gamma), lr


def _constant(cfg, epochs, unit, warmup):
    lr = float(_required(cfg, "learning_rate", "Constant"))
    return ConstantLR(lr), lr


# name -> (builder, keys it uses besides name/warmup_epoch/warmup_start_lr/by_epoch)
SCHEDULES = {
    "Cosine": (_cosine, ("learning_rate", "eta_min")),
    "Piecewise": (_piecewise, ("decay_epochs", "values", "learning_rate")),  # learning_rate unused (values[0])
    "Step": (_step, ("learning_rate", "step_size", "gamma")),
    "Constant": (_constant, ("learning_rate",)),
}


def build_lr_scheduler(lr_config, epochs, steps_per_epoch):
    """`lr_config` is the YAML Optimizer.lr mapping (or a plain number for a constant rate)."""
    if isinstance(lr_config, (int, float)):
        lr_config = {"name": "Constant", "learning_rate": lr_config}
    if not isinstance(lr_config, dict):
        raise ValueError(f"Optimizer.lr must be a mapping like {{name: Cosine, learning_rate: 0.1}}, got {lr_config!r}")
    cfg = normalize_numbers(dict(lr_config))
    unknown = [k for k in cfg if k not in LR_KEYS]
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in Optimizer.lr. Valid keys: {', '.join(LR_KEYS)}")
    name = cfg.get("name", "Constant")
    if name not in SCHEDULES:
        raise ValueError(f"unknown LR schedule Optimizer.lr.name='{name}'. Valid: {', '.join(SCHEDULES)}."
                         f"{did_you_mean(name, SCHEDULES)}")
    if int(steps_per_epoch) <= 0:
        raise ValueError(f"steps_per_epoch must be > 0, got {steps_per_epoch} (is the training list empty?)")
    by_epoch = bool(cfg.get("by_epoch", False))
    unit = 1 if by_epoch else int(steps_per_epoch)
    warmup_epoch = float(cfg.get("warmup_epoch") or 0)
    builder, _ = SCHEDULES[name]
    scheduler, peak_lr = builder(cfg, float(epochs), unit, warmup_epoch)

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
