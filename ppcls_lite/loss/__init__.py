"""Losses. `build_loss(config["Loss"]["Train"])` -> callable `(outputs, labels) -> {"loss": ..., "<Name>": ...}`.

`outputs` is what the model returned; the metric-learning losses (loss/metric_learning.py: TripletLossV2,
TripletLoss, SupConLoss) read a RecModel's `features`; the distillation losses (loss/distillation.py) read a DistillationModel's
{sub-model name: output} dict and return several named losses each.
"""
from ppcls_lite.utils.config_rules import ANY, NameCheck, SectionRules

from .celoss import LOSSES, CELoss, MixCELoss, SoftTargetCrossEntropy
from .combined import CombinedLoss, build_loss, check_loss_item
from .distillation import (DistillationCELoss, DistillationDKDLoss, DistillationDMLLoss, DistillationGTCELoss,
                           DistillationKLDivLoss)
from .metric_learning import SupConLoss, TripletLoss, TripletLossV2

__all__ = ["CELoss", "MixCELoss", "SoftTargetCrossEntropy", "CombinedLoss", "LOSSES", "build_loss",
           "DistillationCELoss", "DistillationGTCELoss", "DistillationDMLLoss", "DistillationKLDivLoss",
           "DistillationDKDLoss", "TripletLossV2", "TripletLoss", "SupConLoss", "CONFIG_RULES"]

# The Loss section's rules for ppcls_lite.config: Loss.Train / Loss.Eval, each a named list of registered losses.
CONFIG_RULES = SectionRules(schema=lambda: {"Loss": {"Train": ANY, "Eval": ANY}},
                            names=(NameCheck("Loss.*", LOSSES, named_list=True, check_item=check_loss_item),))
