"""Optimizer + LR schedule builder: `build_optimizer(config["Optimizer"], epochs, steps_per_epoch, model)`."""
from ppcls_lite.utils.config import ANY, register_section_schema

from .learning_rate import SCHEDULES, ConstantLR, build_lr_scheduler, lr_keys
from .optimizer import (GRAD_CLIP_KEYS, OPTIMIZERS, REGULARIZER_KEYS, build_optimizer, optimizer_keys,
                        split_decay_params)

# The Optimizer section's closed keys, from the registered optimizers and schedules (checked by get_config / -o).
register_section_schema("Optimizer", {
    **{key: ANY for key in optimizer_keys()},
    "lr": {key: ANY for key in lr_keys()},
    "regularizer": {key: ANY for key in REGULARIZER_KEYS},
    "grad_clip": {key: ANY for key in GRAD_CLIP_KEYS},
})

__all__ = ["SCHEDULES", "ConstantLR", "build_lr_scheduler", "lr_keys", "OPTIMIZERS", "build_optimizer",
           "optimizer_keys", "split_decay_params"]
