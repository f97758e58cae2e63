"""ResNet_vd (He et al. 2016, "Deep Residual Learning"; the "vd" tweaks of He et al. 2019, "Bag of Tricks":
three 3x3 convs as the stem and average-pool-then-1x1 downsampling shortcuts), PaddleClas layer names.

Used here mainly as a distillation teacher (PaddleClas's ResNet50_vd weights load as they are). As in PaddleClas,
the first block of every stage, the first one included, has a 1x1 projection shortcut (`blocks.0.short`).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import paddle
from paddle import ParamAttr, nn
from paddle.nn.initializer import Uniform

from ..registry import register_variants
from ..theseus_layer import TheseusLayer

# depth -> (block kind, blocks per stage); the four stages have 64, 128, 256, 512 filters.
DEPTHS = {
    18: ("basic", [2, 2, 2, 2]),
    34: ("basic", [3, 4, 6, 3]),
    50: ("bottleneck", [3, 4, 6, 3]),
    101: ("bottleneck", [3, 4, 23, 3]),
    152: ("bottleneck", [3, 8, 36, 3]),
    200: ("bottleneck", [3, 12, 48, 3]),
}
STAGE_FILTERS = [64, 128, 256, 512]
EXPANSION = {"basic": 1, "bottleneck": 4}  # block output channels = filters * expansion
STEM = [(32, 3), (32, 1), (64, 1)]  # (out channels, stride factor: 3 = stride_list[0]) of the 3x3 stem convs


class ConvBNLayer(nn.Layer):
    """[2x2 average pool with the stride ->] conv (stride 1 after the pool) -> BN [-> ReLU]."""

    def __init__(self, in_c, out_c, kernel_size, stride=1, act=False, avg_down=False, lr_mult=1.0):
        super().__init__()
        self.avg_down = avg_down
        if avg_down:  # PaddleClas: kernel 2, 'SAME' padding, ceil mode (odd sizes round up, padding not counted)
            self.avg_pool = nn.AvgPool2D(kernel_size=2, stride=stride, padding="SAME", ceil_mode=True)
        self.conv = nn.Conv2D(in_c, out_c, kernel_size, stride=1 if avg_down else stride,
                              padding=(kernel_size - 1) // 2, weight_attr=ParamAttr(learning_rate=lr_mult),
                              bias_attr=False)
        # nn.BatchNorm, as PaddleClas: the same arithmetic as BatchNorm2D, PaddleClas's parameter names.
        self.bn = nn.BatchNorm(out_c, param_attr=ParamAttr(learning_rate=lr_mult),
                               bias_attr=ParamAttr(learning_rate=lr_mult))
        self.relu = nn.ReLU() if act else nn.Identity()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """The block's conv output, batch-normalised (and rectified when act)."""
        if self.avg_down:
            x = self.avg_pool(x)
        return self.relu(self.bn(self.conv(x)))


class BottleneckBlock(nn.Layer):
    """1x1 reduce -> 3x3 (strided) -> 1x1 expand (x4), plus the identity or projection shortcut, then ReLU."""

    def __init__(self, in_c, filters, stride, projection, avg_down, lr_mult):
        super().__init__()
        self.conv0 = ConvBNLayer(in_c, filters, 1, act=True, lr_mult=lr_mult)
        self.conv1 = ConvBNLayer(filters, filters, 3, stride, act=True, lr_mult=lr_mult)
        self.conv2 = ConvBNLayer(filters, filters * 4, 1, lr_mult=lr_mult)
        self.short = ConvBNLayer(in_c, filters * 4, 1, stride, avg_down=avg_down, lr_mult=lr_mult) \
            if projection else None
        self.relu = nn.ReLU()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """ReLU(branch(x) + shortcut(x))."""
        shortcut = x if self.short is None else self.short(x)
        return self.relu(self.conv2(self.conv1(self.conv0(x))) + shortcut)


class BasicBlock(nn.Layer):
    """3x3 (strided) -> 3x3, plus the identity or projection shortcut, then ReLU."""

    def __init__(self, in_c, filters, stride, projection, avg_down, lr_mult):
        super().__init__()
        self.conv0 = ConvBNLayer(in_c, filters, 3, stride, act=True, lr_mult=lr_mult)
        self.conv1 = ConvBNLayer(filters, filters, 3, lr_mult=lr_mult)
        self.short = ConvBNLayer(in_c, filters, 1, stride, avg_down=avg_down, lr_mult=lr_mult) \
            if projection else None
        self.relu = nn.ReLU()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """ReLU(branch(x) + shortcut(x))."""
        shortcut = x if self.short is None else self.short(x)
        return self.relu(self.conv1(self.conv0(x)) + shortcut)


BLOCKS = {"basic": BasicBlock, "bottleneck": BottleneckBlock}


def _five(values, key):
    values = list(values)
    if len(values) != 5:
        raise ValueError(f"ResNet_vd {key} needs 5 values (stem, then the 4 stages), got {values!r}")
    return values


class ResNetVd(TheseusLayer):
    """Stem (3 convs) -> 3x3 max pool -> 4 stages of blocks -> global average pool -> fc.

    lr_mult_list: learning-rate multipliers of the stem and the 4 stages (PaddleClas's fine-tuning key).
    stride_list: strides of the stem, the max pool and stages 2-4 (stage 1 always has stride 1).
    stem_act: "relu" or None (PaddleClas applies ReLU for any value but None).
    """

    def __init__(self, depth: int = 50, class_num: int = 1000, lr_mult_list: Sequence[float] = (1.0,) * 5,
                 stride_list: Sequence[int] = (2,) * 5, stem_act: Optional[str] = "relu", input_image_channel: int = 3,
                 return_patterns=None, return_stages=None, stop_after=None, freeze_befor=None):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"ResNet_vd depth must be one of {list(DEPTHS)}, got {depth!r}")
        if stem_act not in ("relu", None):
            raise ValueError(f"ResNet_vd stem_act must be 'relu' or null, got {stem_act!r}")
        lr_mult_list = [float(m) for m in _five(lr_mult_list, "lr_mult_list")]
        stride_list = [int(s) for s in _five(stride_list, "stride_list")]
        kind, depths = DEPTHS[depth]
        stem, in_c = [], int(input_image_channel)
        for out_c, stride in STEM:
            stem.append(ConvBNLayer(in_c, out_c, 3, stride_list[0] if stride == 3 else stride,
                                    act=stem_act is not None, lr_mult=lr_mult_list[0]))
            in_c = out_c
        self.stem = nn.Sequential(*stem)
        self.max_pool = nn.MaxPool2D(kernel_size=3, stride=stride_list[1], padding=1)
        blocks = []
        for stage, (count, filters) in enumerate(zip(depths, STAGE_FILTERS)):
            for i in range(count):
                first = i == 0
                blocks.append(BLOCKS[kind](
                    in_c, filters, stride_list[stage + 1] if first and stage > 0 else 1, projection=first,
                    avg_down=first and stage > 0, lr_mult=lr_mult_list[stage + 1]))
                in_c = filters * EXPANSION[kind]
        self.blocks = nn.Sequential(*blocks)
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.flatten = nn.Flatten()
        bound = 1.0 / math.sqrt(in_c)
        self.fc = nn.Linear(in_c, class_num, weight_attr=ParamAttr(initializer=Uniform(-bound, bound)))
        last_of_stage = [sum(depths[:s + 1]) - 1 for s in range(len(depths))]
        self.init_theseus([f"blocks.{i}" for i in last_of_stage], return_patterns, return_stages, stop_after,
                          freeze_befor)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """Class logits of an NCHW image batch."""
        x = self.blocks(self.max_pool(self.stem(x)))
        return self.fc(self.flatten(self.avg_pool(x)))


register_variants(ResNetVd, {f"ResNet{depth}_vd": dict(depth=depth) for depth in DEPTHS})
