"""Losses. `build_loss(config["Loss"]["Train"])` -> callable `(logits, labels) -> {"loss": ..., "<Name>": ...}`."""
from ppcls_lite.utils.config_rules import ANY, NameCheck, SectionRules

from .celoss import LOSSES, CELoss, MixCELoss, SoftTargetCrossEntropy
from .combined import CombinedLoss, build_loss, check_loss_item

__all__ = ["CELoss", "MixCELoss", "SoftTargetCrossEntropy", "CombinedLoss", "LOSSES", "build_loss", "CONFIG_RULES"]

# The Loss section's rules for ppcls_lite.config: Loss.Train / Loss.Eval, each a named list of registered losses.
CONFIG_RULES = SectionRules(schema=lambda: {"Loss": {"Train": ANY, "Eval": ANY}},
                            names=(NameCheck("Loss.*", LOSSES, named_list=True, check_item=check_loss_item),))
