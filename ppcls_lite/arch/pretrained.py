"""Where `Arch.pretrained` weights come from: PaddleClas's published ImageNet weights, a URL or a local file.

`MODEL_URLS` is PaddleClas's table (the `MODEL_URLS` dicts of its `legendary_models/mobilenet_v1.py`,
`legendary_models/mobilenet_v3.py`, `legendary_models/mobilenet_v4.py`, `legendary_models/resnet.py`,
`model_zoo/mobilenet_v2.py` and `model_zoo/mobilenext.py`); `None` marks a model PaddleClas lists without published
weights. `use_ssld: True` follows PaddleClas's rule: the URL's "_pretrained" becomes "_ssld_pretrained"; PaddleClas
publishes SSLD weights only for `SSLD_MODELS`.
"""
from __future__ import annotations

import os

_BASE = "https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/"
_LEGENDARY = _BASE + "legendary_models/"

MODEL_URLS: dict[str, str | None] = {
    **{name: f"{_LEGENDARY}{name}_pretrained.pdparams"
       for name in ("MobileNetV1_x0_25", "MobileNetV1_x0_5", "MobileNetV1_x0_75", "MobileNetV1")},
    **{name: f"{_BASE}{name}_pretrained.pdparams"
       for name in ("MobileNetV2_x0_25", "MobileNetV2_x0_5", "MobileNetV2_x0_75", "MobileNetV2",
                    "MobileNetV2_x1_5", "MobileNetV2_x2_0")},
    **{f"MobileNetV3_{size}_{scale}": f"{_LEGENDARY}MobileNetV3_{size}_{scale}_pretrained.pdparams"
       for size in ("small", "large") for scale in ("x0_35", "x0_5", "x0_75", "x1_0", "x1_25")},
    "MobileNeXt_x0_35": None,
    "MobileNeXt_x0_5": None,
    "MobileNeXt_x0_75": None,
    "MobileNeXt_x1_0": f"{_BASE}MobileNeXt_x1_0_pretrained.pdparams",
    "MobileNeXt_x1_4": None,
    **{f"MobileNetV4_{variant}": f"{_LEGENDARY}MobileNetV4_{variant}_pretrained.pdparams"
       for variant in ("conv_small", "conv_medium", "conv_large", "hybrid_medium", "hybrid_large")},
    **{f"ResNet{depth}_vd": f"{_LEGENDARY}ResNet{depth}_vd_pretrained.pdparams"
       for depth in (18, 34, 50, 101, 152, 200)},
}

# The SSLD-distilled weights in PaddleClas's model zoo for these families (its docs' download links).
SSLD_MODELS = ("MobileNetV1", "MobileNetV2", "MobileNetV3_small_x0_35", "MobileNetV3_small_x1_0",
               "MobileNetV3_large_x1_0", "ResNet34_vd", "ResNet50_vd", "ResNet101_vd")


def pretrained_url(name: str, use_ssld: bool = False) -> str:
    """PaddleClas's download URL of `name`'s ImageNet weights (the SSLD ones with `use_ssld`)."""
    if name not in MODEL_URLS:
        raise ValueError(f"no pretrained weights are known for {name!r}; known: {', '.join(MODEL_URLS)}")
    url = MODEL_URLS[name]
    if url is None:
        raise ValueError(f"PaddleClas publishes no ImageNet weights for {name} (its MODEL_URLS entry is empty); "
                         f"train from scratch (Arch.pretrained: False) or set Arch.pretrained to a local "
                         f".pdparams/.safetensors path or URL")
    if use_ssld:
        if name not in SSLD_MODELS:
            raise ValueError(f"PaddleClas publishes SSLD weights only for {', '.join(SSLD_MODELS)}, not {name}; "
                             f"remove Arch.use_ssld or pick one of those models")
        url = url.replace("_pretrained", "_ssld_pretrained")
    return url


def resolve_pretrained(name: str, pretrained: bool | str | os.PathLike | None, use_ssld: bool = False) -> str | None:
    """What to load for `Arch.pretrained`: None for False/None, PaddleClas's URL of `name`'s weights for True
    (`load_pretrained` downloads a URL into the cache and checks it fits the model), else the URL or local
    path as given."""
    if isinstance(pretrained, str) and pretrained.strip().lower() in ("true", "false", ""):
        pretrained = pretrained.strip().lower() == "true"  # a quoted `-o Arch.pretrained="True"`
    if pretrained is None or pretrained is False:
        return None
    if pretrained is True:
        return pretrained_url(name, use_ssld)
    if not isinstance(pretrained, (str, os.PathLike)):
        raise ValueError(f"Arch.pretrained must be True/False, a local path or an http(s) URL, got {pretrained!r}")
    return os.fspath(pretrained)
