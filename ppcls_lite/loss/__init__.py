"""Losses. `build_loss(config["Loss"]["Train"])` -> callable `(outputs, labels) -> {"loss": ..., "<Name>": ...}`.

`outputs` is what the model returned; the distillation losses (loss/distillation.py) read a DistillationModel's
{sub-model name: output} dict and return several named losses each.
"""
from ppcls_lite.utils.config import register_name_check, register_value_check

from .celoss import LOSSES, CELoss, MixCELoss, SoftTargetCrossEntropy
from .combined import CombinedLoss, build_loss, check_loss_values
from .distillation import (DistillationCELoss, DistillationDKDLoss, DistillationDMLLoss, DistillationGTCELoss,
                           DistillationKLDivLoss)

register_name_check("Loss.*", LOSSES, named_list=True)
register_value_check(check_loss_values)

__all__ = ["CELoss", "MixCELoss", "SoftTargetCrossEntropy", "CombinedLoss", "LOSSES", "build_loss",
           "DistillationCELoss", "DistillationGTCELoss", "DistillationDMLLoss", "DistillationKLDivLoss",
           "DistillationDKDLoss"]
