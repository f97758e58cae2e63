"""MobileNetV2 (Sandler et al. 2018, "Inverted Residuals and Linear Bottlenecks"), PaddleClas layer names.

PaddleClas names the stages `conv2`..`conv8`, their blocks `_first_block`, `conv<i>_2`, `conv<i>_3`, ...,
and the layers inside `_conv` / `_batch_norm`; the head is `conv9` + `out`. Its MobileNetV2 also gives every
parameter an explicit name (`conv2_1_expand_weights`, `fc10_offset`, ...), which Paddle keys optimizer state by;
`paddleclas_param_names()` reports them (arch/param_names.py) instead of making them this process's names, so two
models in one process never share a name.
"""
from __future__ import annotations

import paddle
from paddle import nn

from ..registry import register_variants
from ..theseus_layer import TheseusLayer

STEM_CHANNELS = 32
LAST_CHANNELS = 1280  # scaled only for widths > 1.0
# Table 2 of the paper: expansion t, output channels c, repeats n, first stride s.
ARCH_TABLE = [
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
]
# The last stage of each output resolution (strides 2, 4, 8, 16, 32).
STAGES_PATTERN = ["conv2", "conv3", "conv4", "conv6", "conv8"]


# PaddleClas's parameter name suffixes of a ConvBNLayer (after its name, e.g. conv2_1_expand).
PADDLECLAS_SUFFIXES = {"_conv.weight": "_weights", "_batch_norm.weight": "_bn_scale", "_batch_norm.bias": "_bn_offset",
                       "_batch_norm._mean": "_bn_mean", "_batch_norm._variance": "_bn_variance"}
PADDLECLAS_UNITS = {"_expand_conv": "expand", "_bottleneck_conv": "dwise", "_linear_conv": "linear"}


class ConvBNLayer(nn.Layer):
    def __init__(self, in_c, out_c, kernel_size, stride=1, groups=1, act="relu6"):
        super().__init__()
        self._conv = nn.Conv2D(in_c, out_c, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                               groups=groups, bias_attr=False)
        self._batch_norm = nn.BatchNorm(out_c)  # PaddleClas's layer (the same arithmetic as BatchNorm2D)
        self.act = nn.ReLU6() if act == "relu6" else nn.Identity()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """Conv -> BN -> activation."""
        return self.act(self._batch_norm(self._conv(x)))


class InvertedResidualUnit(nn.Layer):
    def __init__(self, in_c, out_c, stride, expansion, use_shortcut):
        super().__init__()
        mid_c = int(round(in_c * expansion))
        self.use_shortcut = use_shortcut
        self._expand_conv = ConvBNLayer(in_c, mid_c, 1)  # present even for expansion 1
        self._bottleneck_conv = ConvBNLayer(mid_c, mid_c, 3, stride, groups=mid_c)
        self._linear_conv = ConvBNLayer(mid_c, out_c, 1, act=None)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """Expand -> depthwise -> linear projection, plus the shortcut when the block has one."""
        y = self._linear_conv(self._bottleneck_conv(self._expand_conv(x)))
        return x + y if self.use_shortcut else y


def make_stage(index: int, in_c: int, expansion: float, out_c: int, repeats: int, stride: int) -> nn.Sequential:
    """One table row: PaddleClas never adds a shortcut to a stage's first block, always to the others."""
    blocks = [("_first_block", InvertedResidualUnit(in_c, out_c, stride, expansion, use_shortcut=False))]
    blocks += [(f"conv{index}_{i}", InvertedResidualUnit(out_c, out_c, 1, expansion, use_shortcut=True))
               for i in range(2, repeats + 1)]
    return nn.Sequential(*blocks)


class MobileNetV2Model(TheseusLayer):
    """Widths are int(channels * scale); the 1280-channel head is scaled only when scale > 1."""

    def __init__(self, scale=1.0, class_num=1000, return_patterns=None, return_stages=None, stop_after=None,
                 freeze_befor=None):
        super().__init__()
        in_c = int(STEM_CHANNELS * scale)
        self.conv1 = ConvBNLayer(3, in_c, 3, stride=2)
        for index, (expansion, out, repeats, stride) in enumerate(ARCH_TABLE, start=2):
            out_c = int(out * scale)
            setattr(self, f"conv{index}", make_stage(index, in_c, expansion, out_c, repeats, stride))
            in_c = out_c
        last_c = int(LAST_CHANNELS * scale) if scale > 1.0 else LAST_CHANNELS
        self.conv9 = ConvBNLayer(in_c, last_c, 1)
        self.pool2d_avg = nn.AdaptiveAvgPool2D(1)
        self.flatten = nn.Flatten(start_axis=1, stop_axis=-1)
        self.out = nn.Linear(last_c, class_num)
        self.init_theseus(STAGES_PATTERN, return_patterns, return_stages, stop_after, freeze_befor)

    def paddleclas_param_names(self) -> dict:
        """{structured key: the explicit name PaddleClas's MobileNetV2 gives that parameter}."""
        layers = {"conv1": "conv1_1", "conv9": "conv9"}
        for index in range(2, len(ARCH_TABLE) + 2):
            for block_key, _ in getattr(self, f"conv{index}").named_children():
                block = f"conv{index}_1" if block_key == "_first_block" else block_key
                for unit_key, unit in PADDLECLAS_UNITS.items():
                    layers[f"conv{index}.{block_key}.{unit_key}"] = f"{block}_{unit}"
        names = {f"{layer}.{key}": name + suffix for layer, name in layers.items()
                 for key, suffix in PADDLECLAS_SUFFIXES.items()}
        return {**names, "out.weight": "fc10_weights", "out.bias": "fc10_offset"}

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """Class logits of an NCHW image batch."""
        x = self.conv1(x)
        for index in range(2, len(ARCH_TABLE) + 2):
            x = getattr(self, f"conv{index}")(x)
        x = self.pool2d_avg(self.conv9(x))
        return self.out(self.flatten(x))


# PaddleClas names -> width; the x1.0 model is named after the family.
register_variants(MobileNetV2Model, {
    "MobileNetV2_x0_25": dict(scale=0.25),
    "MobileNetV2_x0_5": dict(scale=0.5),
    "MobileNetV2_x0_75": dict(scale=0.75),
    "MobileNetV2": dict(scale=1.0),
    "MobileNetV2_x1_5": dict(scale=1.5),
    "MobileNetV2_x2_0": dict(scale=2.0),
})
