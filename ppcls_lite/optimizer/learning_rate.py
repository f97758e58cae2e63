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
  the checkpoint), so ppcls_lite.config warns when it is not -1.
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import paddle

from ppcls_lite.utils.config_rules import (COUNT, NON_NEGATIVE, POSITIVE, check_each, check_keys_of, is_real,
                                           normalize_numbers, to_number, warn)
from ppcls_lite.utils.registry import Registry, check_keys


class ConstantLR(paddle.optimizer.lr.LRScheduler):
    """The same learning rate at every step (a scheduler all the same, so the engine treats all alike)."""

    def get_lr(self) -> float:
        """The constant base learning rate."""
        return self.base_lr


class LinearWarmup(paddle.optimizer.lr.LinearWarmup):
    """paddle's LinearWarmup, restoring its inner schedule without paddle's 'unused values' warning."""

    def set_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore the warm-up position and its inner schedule from a checkpoint."""
        state = dict(state_dict)
        inner = state.pop("LinearWarmup_LR", None)
        paddle.optimizer.lr.LRScheduler.set_state_dict(self, state)
        if inner is not None and isinstance(self.learning_rate, paddle.optimizer.lr.LRScheduler):
            self.learning_rate.set_state_dict(inner)


@dataclass
class ScheduleRun:
    """What every schedule builder gets besides its own keys: the run's length and the warm-up."""

    name: str        # the schedule's name, for messages
    epochs: float    # Global.epochs
    unit: int        # steps per epoch (1 with by_epoch)
    warmup: float    # warm-up epochs (already clamped to the run)
    clamped: bool    # the warm-up was clamped to the whole run

    def required(self, key: str, value: Any) -> Any:
        """`value` of Optimizer.lr.`key`, which this schedule cannot do without."""
        if value is None:
            raise ValueError(f"Optimizer.lr.{key} is required for the {self.name} schedule")
        return value

    def decay_steps_or_constant(self, lr: float, steps: int, what: str) -> Optional["ConstantLR"]:
        """PaddleClas keeps the LR constant when no steps are left for the decay after the warm-up."""
        if steps > 0:
            return None
        if not self.clamped:  # after a clamp, the clamp warning already says the whole run is warm-up
            warn(f"{self.name} schedule: {what} = {steps} (Global.epochs {self.epochs:g} - Optimizer.lr.warmup_epoch "
                 f"{self.warmup:g}); the LR stays at learning_rate {lr:g} after the warm-up, as in PaddleClas.")
        return ConstantLR(lr)


# LR schedules an `Optimizer.lr.name` may name. Each builder takes the ScheduleRun and its own keys, and returns
# (scheduler, the rate a warm-up climbs to).
SCHEDULES = Registry("LR schedule")


@SCHEDULES.register("Cosine")
def cosine(run: ScheduleRun, learning_rate: Optional[float] = None, eta_min: Optional[float] = None) -> Tuple[paddle.optimizer.lr.LRScheduler, float]:
    """Cosine decay from learning_rate to eta_min over the steps after the warm-up."""
    lr = float(run.required("learning_rate", learning_rate))
    t_max = int(round((run.epochs - run.warmup) * run.unit))
    constant_lr = run.decay_steps_or_constant(lr, t_max, "T_max")
    if constant_lr is not None:
        return constant_lr, lr
    return paddle.optimizer.lr.CosineAnnealingDecay(lr, T_max=t_max, eta_min=float(eta_min or 0.0)), lr


@SCHEDULES.register("Piecewise")
def piecewise(run: ScheduleRun, decay_epochs: Optional[list] = None, values: Optional[list] = None,
              learning_rate: Optional[float] = None) -> Tuple[paddle.optimizer.lr.LRScheduler, float]:
    """values[i] until decay_epochs[i]; learning_rate is not used (PaddleClas starts at values[0])."""
    decay_epochs = list(run.required("decay_epochs", decay_epochs))
    values = [float(v) for v in run.required("values", values)]
    if len(values) != len(decay_epochs) + 1:
        raise ValueError(f"Piecewise schedule: Optimizer.lr.values needs one more entry than decay_epochs "
                         f"(got {len(values)} values for {len(decay_epochs)} boundaries)")
    if learning_rate is not None and float(learning_rate) != values[0]:
        warn(f"Piecewise schedule: Optimizer.lr.learning_rate ({learning_rate}) is not used; the rate starts at "
             f"values[0] = {values[0]} and follows values/decay_epochs.")
    boundaries = [int(round(float(e) * run.unit)) for e in decay_epochs]
    return paddle.optimizer.lr.PiecewiseDecay(boundaries, values), values[0]


@SCHEDULES.register("Step")
def step(run: ScheduleRun, learning_rate: Optional[float] = None, step_size: Optional[float] = None,
         gamma: float = 0.1) -> Tuple[paddle.optimizer.lr.LRScheduler, float]:
    """learning_rate * gamma ** (epoch // step_size)."""
    lr = float(run.required("learning_rate", learning_rate))
    steps = int(round(float(run.required("step_size", step_size)) * run.unit))
    if steps <= 0:
        raise ValueError(f"Step schedule: Optimizer.lr.step_size must be > 0 epochs, got {step_size}")
    return paddle.optimizer.lr.StepDecay(lr, step_size=steps, gamma=float(gamma)), lr


@SCHEDULES.register("ConstLR")  # PaddleClas's newer name for Constant
@SCHEDULES.register("Constant")
def constant(run: ScheduleRun, learning_rate: Optional[float] = None) -> Tuple[paddle.optimizer.lr.LRScheduler, float]:
    """The same rate throughout."""
    lr = float(run.required("learning_rate", learning_rate))
    return ConstantLR(lr), lr


@SCHEDULES.register("Linear")
def linear(run: ScheduleRun, learning_rate: Optional[float] = None, end_lr: Optional[float] = None,
           power: float = 1.0, cycle: bool = False) -> Tuple[paddle.optimizer.lr.LRScheduler, float]:
    """PaddleClas's `Linear`: paddle's PolynomialDecay to `end_lr` over the steps after the warm-up."""
    lr = float(run.required("learning_rate", learning_rate))
    decay_steps = int(round((run.epochs - run.warmup) * run.unit))
    constant_lr = run.decay_steps_or_constant(lr, decay_steps, "decay_steps")
    if constant_lr is not None:
        return constant_lr, lr
    scheduler = paddle.optimizer.lr.PolynomialDecay(lr, decay_steps=decay_steps, end_lr=float(end_lr or 0.0),
                                                    power=float(power), cycle=bool(cycle))
    return scheduler, lr


@SCHEDULES.register("MultiStepDecay")
def multistep(run: ScheduleRun, learning_rate: Optional[float] = None, milestones: Optional[list] = None,
              gamma: float = 0.1) -> Tuple[paddle.optimizer.lr.LRScheduler, float]:
    """learning_rate times gamma at each milestone epoch."""
    lr = float(run.required("learning_rate", learning_rate))
    steps = [int(round(float(m) * run.unit)) for m in run.required("milestones", milestones)]
    if steps != sorted(set(steps)):
        raise ValueError(f"MultiStepDecay schedule: Optimizer.lr.milestones must increase, got {milestones}")
    return paddle.optimizer.lr.MultiStepDecay(lr, milestones=steps, gamma=float(gamma)), lr


@SCHEDULES.register("OneCycleLR")
def one_cycle(run: ScheduleRun, max_learning_rate: Optional[float] = None, divide_factor: float = 25.0,
              end_learning_rate: float = 1e-10, phase_pct: float = 0.3, anneal_strategy: str = "cos",
              three_phase: bool = False) -> Tuple[paddle.optimizer.lr.LRScheduler, float]:
    """PaddleClas's `OneCycleLR`: paddle's OneCycleLR over the run's steps, its peak is `max_learning_rate`."""
    peak = float(run.required("max_learning_rate", max_learning_rate))
    scheduler = paddle.optimizer.lr.OneCycleLR(
        peak, total_steps=max(1, int(round(run.epochs * run.unit))), divide_factor=float(divide_factor),
        end_learning_rate=float(end_learning_rate), phase_pct=float(phase_pct),
        anneal_strategy=str(anneal_strategy), three_phase=bool(three_phase))
    return scheduler, peak


@SCHEDULES.register("Cyclic")
def cyclic(run: ScheduleRun, base_learning_rate: Optional[float] = None, max_learning_rate: Optional[float] = None,
           step_size_up: Optional[int] = None, step_size_down: Optional[int] = None, mode: str = "triangular",
           exp_gamma: float = 1.0, scale_mode: str = "cycle") -> Tuple[paddle.optimizer.lr.LRScheduler, float]:
    """PaddleClas's `Cyclic`: paddle's CyclicLR between base and max rate; step sizes are steps, as there."""
    base = float(run.required("base_learning_rate", base_learning_rate))
    scheduler = paddle.optimizer.lr.CyclicLR(
        base, float(run.required("max_learning_rate", max_learning_rate)),
        step_size_up=int(run.required("step_size_up", step_size_up)),
        step_size_down=None if step_size_down is None else int(step_size_down), mode=str(mode),
        exp_gamma=float(exp_gamma), scale_mode=str(scale_mode))
    return scheduler, base


# Keys every schedule accepts besides its own.
COMMON_LR_KEYS = ("name", "warmup_epoch", "warmup_start_lr", "by_epoch", "last_epoch", "verbose")


def schedule_keys(name: str) -> list:
    """The own keys of schedule `name` (its builder's, minus the run)."""
    return SCHEDULES.accepted(name, "Optimizer.lr.name", injected=["run"])


def lr_keys() -> list:
    """Every key Optimizer.lr may hold: the common ones, then each schedule's own (the config schema)."""
    return SCHEDULES.all_accepted(COMMON_LR_KEYS, injected=["run"])


# Valid ranges of the schedule keys (checked when the config loads), and of each item of the list keys.
LR_VALUE_RULES = {"learning_rate": POSITIVE, "warmup_epoch": NON_NEGATIVE, "warmup_start_lr": NON_NEGATIVE,
                  "eta_min": NON_NEGATIVE, "end_lr": NON_NEGATIVE, "step_size": POSITIVE, "gamma": POSITIVE,
                  "power": POSITIVE, "max_learning_rate": POSITIVE, "base_learning_rate": POSITIVE,
                  "end_learning_rate": NON_NEGATIVE, "divide_factor": POSITIVE, "exp_gamma": POSITIVE,
                  "phase_pct": (lambda v: 0 < v < 1, "in (0, 1)"), "step_size_up": COUNT, "step_size_down": COUNT}
LR_LIST_RULES = {"values": NON_NEGATIVE, "decay_epochs": NON_NEGATIVE, "milestones": NON_NEGATIVE}


def check_lr_values(problems: list, lr: Any, where: str = "Optimizer.lr") -> None:
    """Append a message for each Optimizer.lr value out of its range (before anything is built or written)."""
    if not isinstance(lr, dict):  # a bare number: a constant rate
        check_each(problems, lr, POSITIVE, where)
        return
    check_keys_of(problems, lr, LR_VALUE_RULES, where)
    for key, rule in LR_LIST_RULES.items():
        if lr.get(key) is not None and not isinstance(lr[key], (list, tuple)):
            problems.append(f"{where}.{key} must be a list of numbers {rule[1]}, got {lr[key]!r}")
        else:
            check_each(problems, lr.get(key), rule, f"{where}.{key}")
    peak, eta_min = to_number(lr.get("learning_rate")), to_number(lr.get("eta_min"))
    if is_real(peak) and is_real(eta_min) and 0 < peak < eta_min:
        problems.append(f"{where}.eta_min must be in [0, learning_rate] = [0, {peak}], got {lr['eta_min']!r}")
    values, boundaries = lr.get("values"), lr.get("decay_epochs")
    if isinstance(values, list) and isinstance(boundaries, list) and len(values) != len(boundaries) + 1:
        problems.append(f"{where}.values must have one more entry than decay_epochs ({len(boundaries)} boundaries), "
                        f"got {len(values)} values")
    # The warm-up climbs to the schedule's first rate (as the LR builders do).
    target_key = {"Piecewise": "values", "OneCycleLR": "max_learning_rate",
                  "Cyclic": "base_learning_rate"}.get(lr.get("name"), "learning_rate")
    target = lr.get(target_key)
    if target_key == "values":
        target_key, target = "values[0]", (target[0] if isinstance(target, list) and target else None)
    target, start, warmup = (to_number(v) for v in (target, lr.get("warmup_start_lr"), lr.get("warmup_epoch")))
    if all(is_real(v) for v in (target, start, warmup)) and warmup > 0 and 0 <= start and 0 < target <= start:
        problems.append(f"{where}.warmup_start_lr must be in [0, {target_key}) = [0, {target}) (the warm-up climbs "
                        f"to {target_key}), got {lr['warmup_start_lr']!r}")


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
        warn(f"Optimizer.lr.by_epoch is True, so the schedule moves once per epoch and counts whole epochs: "
             f"{', '.join(rounded)}.")


def build_lr_scheduler(lr_config: "dict | float", epochs: float, steps_per_epoch: int) -> paddle.optimizer.lr.LRScheduler:
    """`lr_config` is the YAML Optimizer.lr mapping (or a plain number for a constant rate)."""
    if isinstance(lr_config, (int, float)):
        lr_config = {"name": "Constant", "learning_rate": lr_config}
    if not isinstance(lr_config, dict):
        raise ValueError(f"Optimizer.lr must be a mapping like {{name: Cosine, learning_rate: 0.1}}, got {lr_config!r}")
    cfg = normalize_numbers(dict(lr_config))
    check_keys(cfg, lr_keys(), "Optimizer.lr")
    name = cfg.get("name", "Constant")
    if name in UNSUPPORTED_SCHEDULES:
        raise ValueError(f"Optimizer.lr.name={name} is a PaddleClas schedule that is not supported here: "
                         f"{UNSUPPORTED_SCHEDULES[name]}. Valid: {', '.join(SCHEDULES)}")
    own_keys = schedule_keys(name)
    foreign = [k for k in cfg if k not in own_keys and k not in COMMON_LR_KEYS]
    if foreign:
        warn(f"Optimizer.lr key(s) {foreign} do not apply to the {name} schedule and are ignored "
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
        warn(f"Optimizer.lr.warmup_epoch ({warmup_epoch:g}) >= Global.epochs ({epochs:g}): the warm-up is clamped "
             f"to {epochs:g} epochs, so the whole run warms up towards learning_rate (as PaddleClas does).")
        warmup_epoch = epochs
    run = ScheduleRun(name, epochs, unit, warmup_epoch, clamped)
    scheduler, peak_lr = SCHEDULES.build(name, {k: cfg[k] for k in own_keys if k in cfg}, "Optimizer.lr", run=run)

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
