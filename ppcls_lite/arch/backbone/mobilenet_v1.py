"""MobileNetV1 (Howard et al. 2017, "MobileNets"), PaddleClas layer names and widths."""
from __future__ import annotations

import paddle
from paddle import ParamAttr, nn
from paddle.nn.initializer import KaimingNormal

from ..registry import register_variants
from ..theseus_layer import TheseusLayer

STEM_CHANNELS = 32
# Table 1 of the paper, one depthwise-separable block per row: input channels, output channels, stride.
ARCH_TABLE = [
    [32, 64, 1],
    [64, 128, 2],
    [128, 128, 1],
    [128, 256, 2],
    [256, 256, 1],
    [256, 512, 2],
    [512, 512, 1],
    [512, 512, 1],
    [512, 512, 1],
    [512, 512, 1],
    [512, 512, 1],
    [512, 1024, 2],
    [1024, 1024, 1],
]
STAGES_PATTERN = ["blocks.0", "blocks.2", "blocks.4", "blocks.10", "blocks.12"]


class ConvBNLayer(nn.Layer):
    def __init__(self, in_c, out_c, kernel_size, stride=1, groups=1):
        super().__init__()
        self.conv = nn.Conv2D(in_c, out_c, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                              groups=groups, weight_attr=ParamAttr(initializer=KaimingNormal()), bias_attr=False)
        self.bn = nn.BatchNorm(out_c)  # PaddleClas's layer: its parameter names (see arch/param_names.py)
        self.relu = nn.ReLU()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """Conv -> BN -> ReLU."""
        return self.relu(self.bn(self.conv(x)))


class DepthwiseSeparable(nn.Layer):
    def __init__(self, in_c, out_c, stride):
        super().__init__()
        self.depthwise_conv = ConvBNLayer(in_c, in_c, 3, stride, groups=in_c)
        self.pointwise_conv = ConvBNLayer(in_c, out_c, 1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """Depthwise 3x3 then pointwise 1x1."""
        return self.pointwise_conv(self.depthwise_conv(x))


class MobileNetV1Model(TheseusLayer):
    """Widths are int(channels * scale), truncated (no rounding to multiples of 8)."""

    def __init__(self, scale=1.0, class_num=1000, return_patterns=None, return_stages=None, stop_after=None,
                 freeze_befor=None):
        super().__init__()
        self.conv = ConvBNLayer(3, int(STEM_CHANNELS * scale), 3, stride=2)
        self.blocks = nn.Sequential(*[DepthwiseSeparable(int(in_c * scale), int(out_c * scale), stride)
                                      for in_c, out_c, stride in ARCH_TABLE])
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.flatten = nn.Flatten(start_axis=1, stop_axis=-1)
        self.fc = nn.Linear(int(ARCH_TABLE[-1][1] * scale), class_num,
                            weight_attr=ParamAttr(initializer=KaimingNormal()))  # PaddleClas's init
        self.init_theseus(STAGES_PATTERN, return_patterns, return_stages, stop_after, freeze_befor)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """Class logits of an NCHW image batch."""
        x = self.avg_pool(self.blocks(self.conv(x)))
        return self.fc(self.flatten(x))


# PaddleClas names -> width; the x1.0 model is named after the family.
register_variants(MobileNetV1Model, {
    "MobileNetV1_x0_25": dict(scale=0.25),
    "MobileNetV1_x0_5": dict(scale=0.5),
    "MobileNetV1_x0_75": dict(scale=0.75),
    "MobileNetV1": dict(scale=1.0),
})
