"""MobileNeXt (Zhou et al. 2020, "Rethinking Bottleneck Structure for Efficient Mobile Network Design").

Sandglass block: dw3x3 (ReLU6) -> 1x1 reduce (linear) -> 1x1 expand (ReLU6) -> dw3x3 (linear), with an identity
shortcut when input and output shapes match. Layer names follow PaddleClas's port of the authors' code
(`features.<i>.conv.<j>`, `classifier.1`), so each block is one nn.Sequential whose indices include the ReLU6s.
"""
from __future__ import annotations

import math

import paddle
from paddle import nn

from ..registry import register_alias, register_variants
from ..theseus_layer import TheseusLayer
from .common import make_divisible

STEM_CHANNELS = 32
# Table 3 of the paper: reduction ratio t, output channels c, repeats n, first stride s.
ARCH_TABLE = [
    [2, 96, 1, 2],
    [6, 144, 1, 1],
    [6, 192, 3, 2],
    [6, 288, 3, 2],
    [6, 384, 4, 1],
    [6, 576, 4, 2],
    [6, 960, 3, 1],
    [6, 1280, 1, 1],
]
# The last block of each output resolution (strides 2, 4, 8, 16, 32).
STAGES_PATTERN = ["features.0", "features.2", "features.5", "features.12", "features.20"]


def conv_bn(in_c: int, out_c: int, kernel_size: int, stride: int = 1, groups: int = 1) -> list[nn.Layer]:
    """A conv (no bias) and its BatchNorm, as a list to splice into an nn.Sequential."""
    return [nn.Conv2D(in_c, out_c, kernel_size, stride=stride, padding=(kernel_size - 1) // 2, groups=groups,
                      bias_attr=False), nn.BatchNorm2D(out_c)]


class SandglassBlock(nn.Layer):
    """`keep_3x3` marks a single-block stage (n == 1, s == 1): it keeps both depthwise convs but no shortcut.

    Blocks that change the width drop the depthwise convs the authors found unnecessary: the first dw always,
    the last dw unless the block downsamples (the very first block, t == 2, keeps both).
    """

    def __init__(self, in_c, out_c, stride, reduction, keep_3x3=False):
        super().__init__()
        hidden_c = in_c // reduction
        if hidden_c < out_c / 6.0:  # keep the bottleneck from getting too thin
            hidden_c = make_divisible(math.ceil(out_c / 6.0), 16)
        full_block = reduction == 2 or keep_3x3 or in_c == out_c
        layers = conv_bn(in_c, in_c, 3, groups=in_c) + [nn.ReLU6()] if full_block else []
        layers += conv_bn(in_c, hidden_c, 1) + conv_bn(hidden_c, out_c, 1) + [nn.ReLU6()]
        if full_block or stride == 2:
            layers += conv_bn(out_c, out_c, 3, stride, groups=out_c)
        self.use_shortcut = in_c == out_c and stride == 1 and not keep_3x3 and reduction != 2
        self.conv = nn.Sequential(*layers)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """The sandglass block's output, plus the shortcut when it has one."""
        y = self.conv(x)
        return x + y if self.use_shortcut else y


class MobileNeXtModel(TheseusLayer):
    def __init__(self, scale=1.0, class_num=1000, dropout_prob=0.2, return_patterns=None, return_stages=None,
                 stop_after=None, freeze_befor=None):
        super().__init__()
        in_c = make_divisible(STEM_CHANNELS * scale)
        layers = [nn.Sequential(*conv_bn(3, in_c, 3, stride=2), nn.ReLU6())]
        for reduction, out, repeats, stride in ARCH_TABLE:
            out_c = make_divisible(out * scale)
            if out == 1280 and scale < 1.0:  # the last width is never shrunk
                out_c = 1280
            layers.append(SandglassBlock(in_c, out_c, stride, reduction, keep_3x3=repeats == 1 and stride == 1))
            layers += [SandglassBlock(out_c, out_c, 1, reduction) for _ in range(repeats - 1)]
            in_c = out_c
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2D(1)
        self.flatten = nn.Flatten(start_axis=1, stop_axis=-1)
        self.classifier = nn.Sequential(nn.Dropout(dropout_prob or 0.0), nn.Linear(in_c, class_num))
        self.init_theseus(STAGES_PATTERN, return_patterns, return_stages, stop_after, freeze_befor)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """Class logits of an NCHW image batch."""
        x = self.avgpool(self.features(x))
        return self.classifier(self.flatten(x))


# PaddleClas names -> width.
register_variants(MobileNeXtModel, {
    "MobileNeXt_x0_35": dict(scale=0.35),
    "MobileNeXt_x0_5": dict(scale=0.5),
    "MobileNeXt_x0_75": dict(scale=0.75),
    "MobileNeXt_x1_0": dict(scale=1.0),
    "MobileNeXt_x1_4": dict(scale=1.4),
})
# Older PaddleClas releases name the same models by percent (MobileNeXt_100.yaml): their mobilenext.py builds the
# identical network with the same layer names, so those names load the same weights and configs.
for _old, _name in {"MobileNeXt_35": "MobileNeXt_x0_35", "MobileNeXt_50": "MobileNeXt_x0_5",
                    "MobileNeXt_75": "MobileNeXt_x0_75", "MobileNeXt_100": "MobileNeXt_x1_0",
                    "MobileNeXt_140": "MobileNeXt_x1_4"}.items():
    register_alias(_old, _name)
