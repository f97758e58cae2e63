"""Models: `build_model(arch_config)` builds a registered PaddleClas-named model; `list_models()` names them.

`DistillationModel` (arch/distillation.py) is a valid Arch.name too: it wraps named sub-models built the same way.
`RecModel` (arch/recmodel.py) too: a backbone built the same way plus a neck and head from arch/gears.py (retrieval).
"""
from ppcls_lite.utils.config_rules import ANY, NameCheck, SectionRules

from . import backbone  # noqa: F401  (registers the models)
from .builder import BUILD_KEYS, build_model
from .distillation import DistillationModel
from .gears import GEARS
from .recmodel import RecModel, is_retrieval_model, rec_class_num
from .outputs import DistillationOutput, logits_of
from .registry import MODELS, UnknownModelError, registered_names
from .theseus_layer import TheseusLayer

__all__ = ["build_model", "list_models", "BUILD_KEYS", "DistillationModel", "DistillationOutput", "logits_of",
           "MODELS", "TheseusLayer", "UnknownModelError", "CONFIG_RULES", "GEARS", "RecModel", "is_retrieval_model",
           "rec_class_num"]

# The Arch section's rules for ppcls_lite.config: free-form keys (the model's constructor kwargs, checked by
# build_model), and a name every config must give. Arch.class_num is checked with the plain sections.
CONFIG_RULES = SectionRules(schema=lambda: {"Arch": ANY},
                            names=(NameCheck("Arch.name", MODELS, required=True),
                                   NameCheck("Arch.Neck.name", GEARS), NameCheck("Arch.Head.name", GEARS)))


def list_models() -> list:
    """The registered PaddleClas model names, e.g. 'MobileNetV3_large_x1_0' (not the DistillationModel wrapper)."""
    return registered_names()
