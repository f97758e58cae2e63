"""MobileNetV3 (Howard et al. 2019, "Searching for MobileNetV3"), PaddleClas layer names and widths."""
from __future__ import annotations

import paddle
from paddle import ParamAttr, nn
from paddle.regularizer import L2Decay

from ..registry import register_variants
from ..theseus_layer import TheseusLayer
from .common import HardSigmoid, make_activation, make_divisible

# Tables 1 (large) and 2 (small) of the paper; one row per block:
#   kernel, expanded channels, output channels, squeeze-excite, activation, stride
ARCH_TABLE = {
    "large": [
        [3, 16, 16, False, "relu", 1],
        [3, 64, 24, False, "relu", 2],
        [3, 72, 24, False, "relu", 1],
        [5, 72, 40, True, "relu", 2],
        [5, 120, 40, True, "relu", 1],
        [5, 120, 40, True, "relu", 1],
        [3, 240, 80, False, "hardswish", 2],
        [3, 200, 80, False, "hardswish", 1],
        [3, 184, 80, False, "hardswish", 1],
        [3, 184, 80, False, "hardswish", 1],
        [3, 480, 112, True, "hardswish", 1],
        [3, 672, 112, True, "hardswish", 1],
        [5, 672, 160, True, "hardswish", 2],
        [5, 960, 160, True, "hardswish", 1],
        [5, 960, 160, True, "hardswish", 1],
    ],
    "small": [
        [3, 16, 16, True, "relu", 2],
        [3, 72, 24, False, "relu", 2],
        [3, 88, 24, False, "relu", 1],
        [5, 96, 40, True, "hardswish", 2],
        [5, 240, 40, True, "hardswish", 1],
        [5, 240, 40, True, "hardswish", 1],
        [5, 120, 48, True, "hardswish", 1],
        [5, 144, 48, True, "hardswish", 1],
        [5, 288, 96, True, "hardswish", 2],
        [5, 576, 96, True, "hardswish", 1],
        [5, 576, 96, True, "hardswish", 1],
    ],
}
STEM_CHANNELS = 16
LAST_SECOND_CONV = {"large": 960, "small": 576}  # scaled with the width
LAST_CONV = 1280  # never scaled
# The last block of each output resolution (strides 2, 4, 8, 16, 32; small has no stride-2 block).
STAGES_PATTERN = {
    "large": ["blocks.0", "blocks.2", "blocks.5", "blocks.11", "blocks.14"],
    "small": ["blocks.0", "blocks.2", "blocks.7", "blocks.10"],
}


class ConvBNLayer(nn.Layer):
    def __init__(self, in_c, out_c, kernel_size, stride=1, groups=1, act=None):
        super().__init__()
        self.conv = nn.Conv2D(in_c, out_c, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                              groups=groups, bias_attr=False)
        # As in PaddleClas, BN scale/shift are exempt from weight decay (a per-parameter regularizer wins).
        # nn.BatchNorm, as PaddleClas: the same arithmetic as BatchNorm2D, PaddleClas's parameter names.
        self.bn = nn.BatchNorm(out_c, param_attr=ParamAttr(regularizer=L2Decay(0.0)),
                               bias_attr=ParamAttr(regularizer=L2Decay(0.0)))
        self.act = make_activation(act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """Conv -> BN -> activation."""
        return self.act(self.bn(self.conv(x)))


class SEModule(nn.Layer):
    """Squeeze-excite with a hard-sigmoid gate; the squeeze width is channels // 4 (not rounded)."""

    def __init__(self, channels, reduction=4):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.conv1 = nn.Conv2D(channels, channels // reduction, 1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2D(channels // reduction, channels, 1)
        self.hardsigmoid = HardSigmoid(slope=0.2, offset=0.5)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """`x` scaled per channel by its squeeze-excite gate."""
        gate = self.hardsigmoid(self.conv2(self.relu(self.conv1(self.avg_pool(x)))))
        return x * gate


class ResidualUnit(nn.Layer):
    """Inverted residual: 1x1 expand -> kxk depthwise -> [SE] -> 1x1 linear; identity shortcut when shapes match."""

    def __init__(self, in_c, mid_c, out_c, kernel_size, stride, use_se, act):
        super().__init__()
        self.use_shortcut = stride == 1 and in_c == out_c
        self.expand_conv = ConvBNLayer(in_c, mid_c, 1, act=act)  # present even when mid_c == in_c
        self.bottleneck_conv = ConvBNLayer(mid_c, mid_c, kernel_size, stride, groups=mid_c, act=act)
        self.mid_se = SEModule(mid_c) if use_se else None
        self.linear_conv = ConvBNLayer(mid_c, out_c, 1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """The block's output, plus the shortcut when shapes match."""
        y = self.bottleneck_conv(self.expand_conv(x))
        if self.mid_se is not None:
            y = self.mid_se(y)
        y = self.linear_conv(y)
        return x + y if self.use_shortcut else y


class MobileNetV3(TheseusLayer):
    """Stem -> blocks -> 1x1 conv -> avg pool -> 1x1 "last_conv" (1280, no BN) -> hardswish -> dropout -> fc."""

    def __init__(self, mode="large", scale=1.0, class_num=1000, dropout_prob=0.2, return_patterns=None,
                 return_stages=None, stop_after=None, freeze_befor=None):
        super().__init__()
        if mode not in ARCH_TABLE:
            raise ValueError(f"MobileNetV3 mode must be one of {list(ARCH_TABLE)}, got {mode!r}")
        table = ARCH_TABLE[mode]
        in_c = make_divisible(STEM_CHANNELS * scale)
        self.conv = ConvBNLayer(3, in_c, 3, stride=2, act="hardswish")
        blocks = []
        for kernel, exp, out, use_se, act, stride in table:
            out_c = make_divisible(out * scale)
            blocks.append(ResidualUnit(in_c, make_divisible(exp * scale), out_c, kernel, stride, use_se, act))
            in_c = out_c
        self.blocks = nn.Sequential(*blocks)
        squeeze_c = make_divisible(LAST_SECOND_CONV[mode] * scale)
        self.last_second_conv = ConvBNLayer(in_c, squeeze_c, 1, act="hardswish")
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.last_conv = nn.Conv2D(squeeze_c, LAST_CONV, 1, bias_attr=False)
        self.hardswish = nn.Hardswish()
        # PaddleClas scales at inference ("downscale_in_infer"), so eval logits depend on p: keep it for parity.
        self.dropout = nn.Dropout(p=dropout_prob, mode="downscale_in_infer") if dropout_prob else nn.Identity()
        self.flatten = nn.Flatten(start_axis=1, stop_axis=-1)
        self.fc = nn.Linear(LAST_CONV, class_num)
        self.init_theseus(STAGES_PATTERN[mode], return_patterns, return_stages, stop_after, freeze_befor)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """Class logits of an NCHW image batch."""
        x = self.blocks(self.conv(x))
        x = self.avg_pool(self.last_second_conv(x))
        x = self.dropout(self.hardswish(self.last_conv(x)))
        return self.fc(self.flatten(x))


# PaddleClas names -> table and width.
register_variants(MobileNetV3, {
    "MobileNetV3_small_x0_35": dict(mode="small", scale=0.35),
    "MobileNetV3_small_x0_5": dict(mode="small", scale=0.5),
    "MobileNetV3_small_x0_75": dict(mode="small", scale=0.75),
    "MobileNetV3_small_x1_0": dict(mode="small", scale=1.0),
    "MobileNetV3_small_x1_25": dict(mode="small", scale=1.25),
    "MobileNetV3_large_x0_35": dict(mode="large", scale=0.35),
    "MobileNetV3_large_x0_5": dict(mode="large", scale=0.5),
    "MobileNetV3_large_x0_75": dict(mode="large", scale=0.75),
    "MobileNetV3_large_x1_0": dict(mode="large", scale=1.0),
    "MobileNetV3_large_x1_25": dict(mode="large", scale=1.25),
})
