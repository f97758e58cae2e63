"""Models: `build_model(arch_config)` builds a registered PaddleClas-named model; `list_models()` names them."""
from . import backbone  # noqa: F401  (registers the models)
from .registry import UnknownModelError, get_model_fn, registered_names
from .theseus_layer import TheseusLayer

__all__ = ["build_model", "list_models", "TheseusLayer", "UnknownModelError"]


def list_models():
    """The registered PaddleClas model names, e.g. 'MobileNetV3_large_x1_0'."""
    return registered_names()


def build_model(arch_config):
    """Build the model named by `arch_config["name"]`; other keys are constructor kwargs.

    `pretrained`: a local .pdparams path (with or without the extension) loaded non-strictly; True is an error
    (nothing is downloaded); False/None loads nothing. `arch_config` is not modified.
    """
    if not isinstance(arch_config, dict) or not arch_config.get("name"):
        raise ValueError(f"the Arch config section needs a model 'name' (one of list_models()), got {arch_config!r}")
    kwargs = dict(arch_config)
    name = kwargs.pop("name")
    pretrained = kwargs.pop("pretrained", None)
    kwargs.pop("use_ssld", None)  # PaddleClas flag choosing which weights to download; nothing is downloaded here
    model_fn = get_model_fn(name)
    if "scale" in kwargs:
        raise ValueError(f"Arch.scale is not used: the width comes from the model name (e.g. {name} -> pick "
                         f"another name from list_models() such as MobileNetV3_large_x0_5); remove Arch.scale")
    if pretrained is True:
        raise ValueError(f"Arch.pretrained=True would download {name} weights, which ppcls_lite never does; "
                         f"download the .pdparams yourself and set Arch.pretrained to its local path "
                         f"(e.g. -o Arch.pretrained=./pretrained/{name}_pretrained)")
    try:
        model = model_fn(**kwargs)
    except TypeError as err:
        if "unexpected keyword argument" not in str(err):
            raise
        raise ValueError(f"Arch section for {name}: {err}. Valid keys: name, class_num, pretrained, "
                         f"return_patterns, return_stages, stop_after, freeze_befor "
                         f"(+ dropout_prob for MobileNetV3/MobileNeXt)") from err
    if pretrained:
        from ppcls_lite.utils.save_load import load_pretrained
        load_pretrained(model, str(pretrained))
    return model
