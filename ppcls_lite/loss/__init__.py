"""Losses. `build_loss(config["Loss"]["Train"])` -> callable `(logits, labels) -> {"loss": ..., "<Name>": ...}`."""
from .celoss import LOSSES, CELoss, MixCELoss, SoftTargetCrossEntropy
from .combined import CombinedLoss, build_loss

__all__ = ["CELoss", "MixCELoss", "SoftTargetCrossEntropy", "CombinedLoss", "LOSSES", "build_loss"]
