"""`build_model(arch_config)`: a registered model from an `Arch`-style mapping, with its pretrained weights."""
from paddle import nn

from ppcls_lite.utils.save_load import load_pretrained

from .pretrained import resolve_pretrained
from .registry import MODELS

# Arch keys that build_model takes itself; every other key is a constructor kwarg of the model family.
BUILD_KEYS = ("name", "pretrained", "use_ssld")


def check_arch(arch_config: dict, where: str = "Arch") -> tuple:
    """(registered name, constructor kwargs, weights to load or None) of an Arch-style mapping; every config
    error (unknown name or key, a bad `pretrained`) is raised here, before anything is built or downloaded."""
    if not isinstance(arch_config, dict) or not arch_config.get("name"):
        raise ValueError(f"the {where} config section needs a model 'name' (one of list_models()), "
                         f"got {arch_config!r}")
    kwargs = dict(arch_config)
    name = kwargs.pop("name")
    pretrained = kwargs.pop("pretrained", None)
    use_ssld = bool(kwargs.pop("use_ssld", False))  # PaddleClas: download the SSLD-distilled weights instead
    name = MODELS.canonical(name, f"{where}.name")  # an older PaddleClas name builds the model it names now
    if "scale" in kwargs:
        raise ValueError(f"{where}.scale is not used: the width comes from the model name (e.g. {name} -> pick "
                         f"another name from list_models() such as MobileNetV3_large_x0_5); remove {where}.scale")
    MODELS.check_params(name, kwargs, f"{where} ({name})", extra=BUILD_KEYS)
    return name, kwargs, resolve_pretrained(name, pretrained, use_ssld)


def build_model(arch_config: dict, where: str = "Arch") -> nn.Layer:
    """Build the model named by `arch_config["name"]` (a TheseusLayer, or a DistillationModel); other keys are
    constructor kwargs.

    `pretrained`: True downloads PaddleClas's ImageNet weights of the model (its SSLD ones with `use_ssld: True`)
    into the cache and checks they fit before loading; an http(s) URL is downloaded and checked the same way;
    a local .pdparams/.safetensors path (extension optional) is loaded non-strictly; False/None loads nothing.
    A classifier of another class count is skipped in every case. `arch_config` is not modified.
    `where` names the config section in error messages (a distillation sub-model: `Arch.models.1.Student`).
    """
    name, kwargs, source = check_arch(arch_config, where)
    model = MODELS.build(name, kwargs, where)
    if source:
        load_pretrained(model, source)
    return model
