"""Quantization-aware training (`Slim.quant`) on Paddle's own quantization API (`paddle.quantization.QAT`).

Every Conv2D and Linear gets fake-quantized int8 weights and inputs during training (PaddleSlim's defaults, which
PaddleClas uses: weights `channel_wise_abs_max`, activations `moving_average_abs_max` with moving rate 0.9):

    weights      symmetric, the abs-max of each output channel (`abs_max`: one scale per tensor)
    activations  symmetric, a moving average of the batch abs-max (updated in training, frozen in eval);
                 with `name: pact` (PaddleClas's choice) each input is first clipped to [-alpha, alpha], alpha a
                 learned parameter (Choi et al. 2018, "PACT"), so outliers stop stretching the range; the
                 int8 range is then the smaller of the moving average and alpha
    rounding     straight-through: the forward pass sees the int8 grid, gradients pass through round()

The quanters keep their state (scales, moving-average accumulators, PACT alpha) in the model's state dict, so a
QAT checkpoint resumes exactly. `convert_for_export` turns them into quantize_linear / dequantize_linear pairs
(integer weights), which Paddle Inference runs and paddle2onnx writes as ONNX QuantizeLinear / DequantizeLinear.
PaddleSlim is not used: its 2.6.0 release pulls opencv-python 4.6 (built for numpy 1) into the environment and its
pruners fail on this Paddle (docs/SLIM.md).
"""
from __future__ import annotations

import copy
from typing import Optional

import paddle
from paddle import nn
from paddle.quantization import QAT, BaseQuanter, QuantConfig
from paddle.quantization.factory import QuanterFactory

QUANT_NAMES = ("pact", "qat")
WEIGHT_QUANTIZE_TYPES = ("channel_wise_abs_max", "abs_max")
PACT_INIT_ALPHA = 20.0  # PaddleSlim's initial PACT clip value
BITS = 8


def fake_quant(x: paddle.Tensor, scale: paddle.Tensor, bits: int = BITS) -> paddle.Tensor:
    """`x` rounded to the symmetric int grid of `scale` (abs max; broadcast over `x`), straight-through gradient.
    The grid is [-128, 127] * scale / 127 as Paddle's quantize_linear and ONNX QuantizeLinear saturate."""
    qmax = float(2 ** (bits - 1) - 1)
    step = paddle.clip(scale, min=1e-8) / qmax
    quantized = paddle.clip(paddle.round(x / step), -qmax - 1, qmax) * step
    return x + (quantized - x).detach()


class _Factory(QuanterFactory):
    """A QuantConfig entry that makes one quanter of `layer_class` per quantized layer."""

    def __init__(self, layer_class: type, **kwargs) -> None:
        super().__init__(**kwargs)
        self._layer_class = layer_class

    def _get_class(self) -> type:
        return self._layer_class


class WeightQuanter(BaseQuanter):
    """Abs-max fake quantization of a weight: per output channel (Conv2D axis 0, Linear axis 1) or per tensor."""

    def __init__(self, layer: nn.Layer, per_channel: bool = True, bits: int = BITS) -> None:
        super().__init__()
        self._bits = bits
        weight = layer.weight
        self._axis = (1 if isinstance(layer, nn.Linear) else 0) if per_channel else None
        channels = weight.shape[self._axis] if per_channel else 1
        self.register_buffer("_scale", paddle.ones([channels], "float32"), persistable=True)

    def forward(self, weight: paddle.Tensor) -> paddle.Tensor:
        """The weight on its int8 grid (the scales follow the weight at every call)."""
        with paddle.no_grad():
            if self._axis is None:
                scale = weight.abs().max().reshape([1])
            else:
                dims = [d for d in range(weight.ndim) if d != self._axis]
                scale = weight.abs().max(axis=dims)
            paddle.assign(scale, self._scale)
        shape = [1] * weight.ndim
        if self._axis is not None:
            shape[self._axis] = -1
        return fake_quant(weight, self._scale.reshape(shape), self._bits)

    def scales(self) -> paddle.Tensor:
        return self._scale

    def zero_points(self) -> paddle.Tensor:
        return paddle.zeros_like(self._scale)

    def quant_axis(self) -> Optional[int]:
        return self._axis

    def bit_length(self) -> int:
        return self._bits


class ActivationQuanter(BaseQuanter):
    """Moving-average abs-max fake quantization of a layer's input, optionally PACT-clipped first."""

    def __init__(self, layer: nn.Layer, pact: bool = False, moving_rate: float = 0.9, bits: int = BITS) -> None:
        super().__init__()
        self._bits, self._rate = bits, float(moving_rate)
        self.register_buffer("_scale", paddle.zeros([1], "float32"), persistable=True)
        self.register_buffer("_state", paddle.zeros([1], "float32"), persistable=True)
        self.register_buffer("_accum", paddle.zeros([1], "float32"), persistable=True)
        self.alpha = self.create_parameter([1], default_initializer=nn.initializer.Constant(PACT_INIT_ALPHA)) \
            if pact else None

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """`x` (PACT-clipped) on the int8 grid of the running scale; training updates the scale first."""
        if self.alpha is not None:
            # clip(x, -alpha, alpha) written so that alpha gets a gradient; the lower end is one int8 step further
            # out (-128 steps, like the quantizer), so the clip never cuts what the int8 grid keeps
            low = self.alpha * (2 ** (self._bits - 1)) / (2 ** (self._bits - 1) - 1)
            x = x - nn.functional.relu(x - self.alpha) + nn.functional.relu(-low - x)
        if self.training:
            with paddle.no_grad():
                paddle.assign(self._rate * self._state + 1.0, self._state)
                paddle.assign(self._rate * self._accum + x.abs().max().reshape([1]), self._accum)
                paddle.assign(self._accum / self._state, self._scale)
        return fake_quant(x, self.scales(), self._bits)

    def scales(self) -> paddle.Tensor:
        """The int8 range in use: the moving-average abs max, or PACT's alpha when that is smaller (then the grid
        alone does the clipping, so the exported QuantizeLinear computes exactly what training did)."""
        if self.alpha is None:
            return self._scale
        return paddle.minimum(self._scale, self.alpha.detach())

    def zero_points(self) -> paddle.Tensor:
        return paddle.zeros_like(self._scale)

    def quant_axis(self) -> None:
        return None

    def bit_length(self) -> int:
        return self._bits


def _quant_config(name: str, weight_quantize_type: str, moving_rate: float) -> QuantConfig:
    config = QuantConfig(activation=None, weight=None)
    config.add_type_config([nn.Conv2D, nn.Linear],
                           activation=_Factory(ActivationQuanter, pact=name == "pact", moving_rate=moving_rate),
                           weight=_Factory(WeightQuanter, per_channel=weight_quantize_type == "channel_wise_abs_max"))
    return config


def quantize_model(model: nn.Layer, name: str = "pact", weight_quantize_type: str = "channel_wise_abs_max",
                   moving_rate: float = 0.9) -> nn.Layer:
    """Replace every Conv2D / Linear of `model` (in place) by its fake-quantized QAT version; returns `model`."""
    if name not in QUANT_NAMES:
        raise ValueError(f"Slim.quant.name must be one of {list(QUANT_NAMES)}, got {name!r}")
    if weight_quantize_type not in WEIGHT_QUANTIZE_TYPES:
        raise ValueError(f"Slim.quant.weight_quantize_type must be one of {list(WEIGHT_QUANTIZE_TYPES)}, "
                         f"got {weight_quantize_type!r}")
    training = model.training
    model.train()  # QAT.quantize asserts training mode
    QAT(_quant_config(name, weight_quantize_type, moving_rate)).quantize(model, inplace=True)
    model.train(training)
    return model


def is_quantized(model: nn.Layer) -> bool:
    """Whether `model` holds fake-quant layers (made by quantize_model)."""
    return any(isinstance(layer, BaseQuanter) for layer in model.sublayers())


@paddle.no_grad()
def refresh_weight_scales(model: nn.Layer) -> None:
    """Recompute every weight scale from the current weights (a loaded checkpoint holds the scales of the step
    before its last update)."""
    for layer in model.sublayers():
        if isinstance(getattr(layer, "weight_quanter", None), WeightQuanter):
            layer.weight_quanter(layer.weight)


def convert_for_export(model: nn.Layer) -> nn.Layer:
    """A copy of the QAT `model` with quantize/dequantize layers and integer weights, for paddle.jit.save."""
    model = copy.deepcopy(model)
    model.eval()
    refresh_weight_scales(model)
    return QAT(QuantConfig(activation=None, weight=None)).convert(model, inplace=True)
