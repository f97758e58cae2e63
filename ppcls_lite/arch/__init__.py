"""Models: `build_model(arch_config)` builds a registered PaddleClas-named model; `list_models()` names them."""
from ppcls_lite.utils.config_rules import ANY, NameCheck, SectionRules

from . import backbone  # noqa: F401  (registers the models)
from .pretrained import resolve_pretrained
from .registry import MODELS, UnknownModelError, registered_names
from .theseus_layer import TheseusLayer

__all__ = ["build_model", "list_models", "MODELS", "TheseusLayer", "UnknownModelError", "CONFIG_RULES"]

# The Arch section's rules for ppcls_lite.config: free-form keys (the model's constructor kwargs, checked by
# build_model), and a name every config must give. Arch.class_num is checked with the plain sections.
CONFIG_RULES = SectionRules(schema=lambda: {"Arch": ANY},
                            names=(NameCheck("Arch.name", MODELS, required=True),))

# Arch keys that build_model takes itself; every other key is a constructor kwarg of the model family.
BUILD_KEYS = ("name", "pretrained", "use_ssld")


def list_models() -> list:
    """The registered PaddleClas model names, e.g. 'MobileNetV3_large_x1_0'."""
    return registered_names()


def build_model(arch_config: dict) -> TheseusLayer:
    """Build the model named by `arch_config["name"]`; other keys are constructor kwargs.

    `pretrained`: True downloads PaddleClas's ImageNet weights of the model (its SSLD ones with `use_ssld: True`)
    into the cache and checks they fit before loading; an http(s) URL is downloaded and checked the same way;
    a local .pdparams/.safetensors path (extension optional) is loaded non-strictly; False/None loads nothing.
    A classifier of another class count is skipped in every case. `arch_config` is not modified.
    """
    if not isinstance(arch_config, dict) or not arch_config.get("name"):
        raise ValueError(f"the Arch config section needs a model 'name' (one of list_models()), got {arch_config!r}")
    kwargs = dict(arch_config)
    name = kwargs.pop("name")
    pretrained = kwargs.pop("pretrained", None)
    use_ssld = bool(kwargs.pop("use_ssld", False))  # PaddleClas: download the SSLD-distilled weights instead
    name = MODELS.canonical(name, "Arch.name")  # an older PaddleClas name builds the model it names now
    if "scale" in kwargs:
        raise ValueError(f"Arch.scale is not used: the width comes from the model name (e.g. {name} -> pick "
                         f"another name from list_models() such as MobileNetV3_large_x0_5); remove Arch.scale")
    MODELS.check_params(name, kwargs, f"Arch ({name})", extra=BUILD_KEYS)
    source = resolve_pretrained(name, pretrained, use_ssld)  # before building: a bad value fails fast
    model = MODELS.build(name, kwargs, "Arch")
    if source:
        from ppcls_lite.utils.save_load import load_pretrained
        load_pretrained(model, source)
    return model
