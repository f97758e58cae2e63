"""Models: `build_model(arch_config)` builds a registered PaddleClas-named model; `list_models()` names them."""
from . import backbone  # noqa: F401  (registers the models)
from .pretrained import resolve_pretrained
from .registry import UnknownModelError, get_model_fn, registered_names
from .theseus_layer import TheseusLayer

__all__ = ["build_model", "list_models", "TheseusLayer", "UnknownModelError"]


def list_models():
    """The registered PaddleClas model names, e.g. 'MobileNetV3_large_x1_0'."""
    return registered_names()


def build_model(arch_config):
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
    model_fn = get_model_fn(name)
    if "scale" in kwargs:
        raise ValueError(f"Arch.scale is not used: the width comes from the model name (e.g. {name} -> pick "
                         f"another name from list_models() such as MobileNetV3_large_x0_5); remove Arch.scale")
    source = resolve_pretrained(name, pretrained, use_ssld)  # before building: a bad value fails fast
    try:
        model = model_fn(**kwargs)
    except TypeError as err:
        if "unexpected keyword argument" not in str(err):
            raise
        raise ValueError(f"Arch section for {name}: {err}. Valid keys: name, class_num, pretrained, "
                         f"return_patterns, return_stages, stop_after, freeze_befor "
                         f"(+ dropout_prob for MobileNetV3/MobileNeXt)") from err
    if source:
        from ppcls_lite.utils.save_load import load_pretrained
        load_pretrained(model, source)
    return model
