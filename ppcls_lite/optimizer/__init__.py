"""Optimizer + LR schedule builder: `build_optimizer(config["Optimizer"], epochs, steps_per_epoch, model)`."""
from ppcls_lite.utils.config_rules import ANY, NameCheck, SectionRules

from .learning_rate import SCHEDULES, UNSUPPORTED_SCHEDULES, ConstantLR, build_lr_scheduler, lr_keys
from .optimizer import (GRAD_CLIP_KEYS, GRAD_CLIPS, OPTIMIZERS, REGULARIZER_KEYS, REGULARIZERS, build_optimizer,
                        check_optimizer_values, optimizer_keys, split_decay_params)

__all__ = ["SCHEDULES", "ConstantLR", "build_lr_scheduler", "lr_keys", "OPTIMIZERS", "build_optimizer",
           "optimizer_keys", "split_decay_params", "CONFIG_RULES"]


def optimizer_schema() -> dict:
    """The Optimizer section's closed keys, from the registered optimizers and schedules (read at check time, so
    an optimizer or schedule registered later brings its keys)."""
    return {"Optimizer": {
        **{key: ANY for key in optimizer_keys()},
        "lr": {key: ANY for key in lr_keys()},
        "regularizer": {key: ANY for key in REGULARIZER_KEYS},
        "grad_clip": {key: ANY for key in GRAD_CLIP_KEYS},
    }}


# The Optimizer section's rules for ppcls_lite.config (the older schedules it names are built to say why not).
CONFIG_RULES = SectionRules(
    schema=optimizer_schema,
    names=(NameCheck("Optimizer.name", OPTIMIZERS),
           NameCheck("Optimizer.lr.name", SCHEDULES, also_accepted=tuple(UNSUPPORTED_SCHEDULES)),
           NameCheck("Optimizer.regularizer.name", REGULARIZERS),
           NameCheck("Optimizer.grad_clip.name", GRAD_CLIPS)),
    check_values=check_optimizer_values)
