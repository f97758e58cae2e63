"""`build_model(arch_config)`: a registered model from an `Arch`-style mapping, with its pretrained weights."""
import paddle
from paddle import nn

from ppcls_lite.utils import logger
from ppcls_lite.utils.save_load import load_pretrained

from .pretrained import resolve_pretrained
from .registry import MODELS

# Arch keys that build_model takes itself; every other key is a constructor kwarg of the model family.
# `infer_add_softmax` (PaddleClas: False exports the logits) is read by the exporter.
BUILD_KEYS = ("name", "pretrained", "use_ssld", "use_sync_bn", "infer_add_softmax")


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
    kwargs.pop("use_sync_bn", None), kwargs.pop("infer_add_softmax", None)  # build_model / the exporter use them
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
    if arch_config.get("use_sync_bn"):
        model = sync_batch_norm(model, where)
    return model


def sync_batch_norm(model: nn.Layer, where: str = "Arch") -> nn.Layer:
    """`use_sync_bn: True`: BatchNorm statistics over all GPUs of a data-parallel run (SyncBatchNorm); with one
    process or on CPU a plain BatchNorm (the same thing there) and one note line."""
    world = paddle.distributed.get_world_size()
    if world > 1 and paddle.device.get_device().startswith("gpu"):
        return nn.SyncBatchNorm.convert_sync_batchnorm(as_batch_norm_2d(model))
    logger.info(f"note: {where}.use_sync_bn: {world} process(es) on {paddle.device.get_device()}, so plain BatchNorm "
                f"is used (SyncBatchNorm only matters when several GPUs train together)")
    return model


def as_batch_norm_2d(layer: nn.Layer) -> nn.Layer:
    """Swap every `nn.BatchNorm` (PaddleClas's layer, which paddle's convert_sync_batchnorm passes over) in `layer`
    for an `nn.BatchNorm2D` holding the same parameters and statistics: the same arithmetic and state_dict keys."""
    if isinstance(layer, nn.BatchNorm) and getattr(layer, "_act", None) is None:
        bn = nn.BatchNorm2D(layer.weight.shape[0], momentum=layer._momentum, epsilon=layer._epsilon,
                            data_format=layer._data_layout)
        bn.weight, bn.bias, bn._mean, bn._variance = layer.weight, layer.bias, layer._mean, layer._variance
        bn.training = layer.training
        return bn
    for name, child in layer.named_children():
        setattr(layer, name, as_batch_norm_2d(child))
    return layer
