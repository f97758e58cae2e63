"""Losses. `build_loss(config["Loss"]["Train"])` -> callable `(logits, labels) -> {"loss": ..., "<Name>": ...}`."""
from ppcls_lite.utils.config import register_name_check, register_value_check

from .celoss import LOSSES, CELoss, MixCELoss, SoftTargetCrossEntropy
from .combined import CombinedLoss, build_loss, check_loss_values

register_name_check("Loss.*", LOSSES, named_list=True)
register_value_check(check_loss_values)

__all__ = ["CELoss", "MixCELoss", "SoftTargetCrossEntropy", "CombinedLoss", "LOSSES", "build_loss"]
