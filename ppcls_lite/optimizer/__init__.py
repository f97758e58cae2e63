"""Optimizer + LR schedule builder: `build_optimizer(config["Optimizer"], epochs, steps_per_epoch, model)`."""
from ppcls_lite.utils.config import ANY, register_name_check, register_section_schema, register_value_check

from .learning_rate import SCHEDULES, UNSUPPORTED_SCHEDULES, ConstantLR, build_lr_scheduler, lr_keys
from .optimizer import (GRAD_CLIP_KEYS, GRAD_CLIPS, OPTIMIZERS, REGULARIZER_KEYS, REGULARIZERS, build_optimizer,
                        check_optimizer_values, optimizer_keys, split_decay_params)

# The Optimizer section's closed keys, from the registered optimizers and schedules (checked by get_config / -o).
register_section_schema("Optimizer", {
    **{key: ANY for key in optimizer_keys()},
    "lr": {key: ANY for key in lr_keys()},
    "regularizer": {key: ANY for key in REGULARIZER_KEYS},
    "grad_clip": {key: ANY for key in GRAD_CLIP_KEYS},
})
register_name_check("Optimizer.name", OPTIMIZERS)
register_name_check("Optimizer.lr.name", SCHEDULES, also_accepted=UNSUPPORTED_SCHEDULES)  # built to say why not
register_name_check("Optimizer.regularizer.name", REGULARIZERS)
register_name_check("Optimizer.grad_clip.name", GRAD_CLIPS)
register_value_check(check_optimizer_values)

__all__ = ["SCHEDULES", "ConstantLR", "build_lr_scheduler", "lr_keys", "OPTIMIZERS", "build_optimizer",
           "optimizer_keys", "split_decay_params"]
