"""Losses. `build_loss(config["Loss"]["Train"])` -> callable `(logits, labels) -> {"loss": ..., "<Name>": ...}`."""
from .celoss import CELoss, MixCELoss, SoftTargetCrossEntropy
from .combined import LOSSES, CombinedLoss, build_loss

__all__ = ["CELoss", "MixCELoss", "SoftTargetCrossEntropy", "CombinedLoss", "LOSSES", "build_loss"]
