"""Losses. `build_loss(config["Loss"]["Train"])` -> callable `(logits, labels) -> {"loss": ..., "<Name>": ...}`."""
from .celoss import CELoss
from .combined import LOSSES, CombinedLoss, build_loss

__all__ = ["CELoss", "CombinedLoss", "LOSSES", "build_loss"]
