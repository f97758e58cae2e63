"""Small pieces shared by the model families."""
from __future__ import annotations

from typing import Optional

import paddle
from paddle import nn
import paddle.nn.functional as F


def make_divisible(value: float, divisor: int = 8, min_value: Optional[int] = None) -> int:
    """Round a channel count to a multiple of `divisor`, never dropping more than 10% (PaddleClas/TF rule)."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class HardSigmoid(nn.Layer):
    """clip(slope * x + offset, 0, 1); PaddleClas's SE gate uses slope 0.2 (not 1/6)."""

    def __init__(self, slope: float = 0.2, offset: float = 0.5):
        super().__init__()
        self.slope, self.offset = slope, offset

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """The gated values of `x`, in [0, 1]."""
        return F.hardsigmoid(x, slope=self.slope, offset=self.offset)


ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish, None: nn.Identity}


def make_activation(name: Optional[str]) -> nn.Layer:
    """A new activation layer for its config name (`None` gives nn.Identity)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {list(ACTIVATIONS)}")
    return ACTIVATIONS[name]()
