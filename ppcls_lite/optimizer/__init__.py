"""Optimizer + LR schedule builder: `build_optimizer(config["Optimizer"], epochs, steps_per_epoch, model)`."""
from .learning_rate import SCHEDULES, ConstantLR, build_lr_scheduler
from .optimizer import OPTIMIZERS, build_optimizer, split_decay_params

__all__ = ["SCHEDULES", "ConstantLR", "build_lr_scheduler", "OPTIMIZERS", "build_optimizer", "split_decay_params"]
