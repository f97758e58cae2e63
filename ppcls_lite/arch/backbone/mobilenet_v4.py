"""MobileNetV4 (Qin et al. 2024, "MobileNetV4 - Universal Models for the Mobile Ecosystem"), PaddleClas layer names.

Every block is one row of a variant's table (section 5 / appendix tables of the paper, as PaddleClas sets them up):
  ("conv", out, kernel, stride)                           conv -> BN -> act, no shortcut
  ("er",   out, mid, kernel, stride)                      fused inverted bottleneck ("EdgeResidual"):
                                                          kxk conv to `mid` -> 1x1 linear projection
  ("uib",  out, mid, start_dw, mid_dw, stride)            Universal Inverted Bottleneck: optional kxk depthwise
                                                          (linear) -> 1x1 expand -> optional kxk depthwise ->
                                                          1x1 linear projection; a kernel of 0 leaves that depthwise
                                                          out, which gives UIB's four shapes:
                                                          (0, k) inverted bottleneck, (k, 0) ConvNext-like,
                                                          (k, k) ExtraDW, (0, 0) FFN
  ("mqa",  out, head_dim, kernel, heads, kv_stride, stride)  Mobile MQA: BN -> multi-query attention (one shared
                                                          key/value head, keys/values downsampled by a strided
                                                          kxk depthwise conv when kv_stride > 1) -> 1x1 projection
Blocks with stride 1 and equal in/out channels add their input back (through stochastic depth when training).
The stem is a 3x3 stride-2 conv; the head is global pool -> 1x1 conv (1280) + BN + act -> dropout -> classifier.
Hybrids scale each residual branch by a learned per-channel `layer_scale` (initialised to 1e-5).
"""
from __future__ import annotations

from typing import Optional

import paddle
import paddle.nn.functional as F
from paddle import ParamAttr, nn
from paddle.regularizer import L2Decay

from ..registry import register_variants
from ..theseus_layer import TheseusLayer
from .common import make_divisible

HEAD_CHANNELS = 1280
LAYER_SCALE_INIT = 1e-5

# Appendix tables of the paper (PaddleClas's NET_CONFIG): stage comments give the input resolution at 224 px.
ARCH_TABLE = {
    "conv_small": [
        ("conv", 32, 3, 2), ("conv", 32, 1, 1),                             # 112x112
        ("conv", 96, 3, 2), ("conv", 64, 1, 1),                             # 56x56
        ("uib", 96, 192, 5, 5, 2), ("uib", 96, 192, 0, 3, 1), ("uib", 96, 192, 0, 3, 1),  # 28x28
        ("uib", 96, 192, 0, 3, 1), ("uib", 96, 192, 0, 3, 1), ("uib", 96, 384, 3, 0, 1),
        ("uib", 128, 576, 3, 3, 2), ("uib", 128, 512, 5, 5, 1), ("uib", 128, 512, 0, 5, 1),  # 14x14
        ("uib", 128, 384, 0, 5, 1), ("uib", 128, 512, 0, 3, 1), ("uib", 128, 512, 0, 3, 1),
        ("conv", 960, 1, 1),                                                # 7x7
    ],
    "conv_medium": [
        ("er", 48, 128, 3, 2),                                              # 112x112
        ("uib", 80, 192, 3, 5, 2), ("uib", 80, 160, 3, 3, 1),               # 56x56
        ("uib", 160, 480, 3, 5, 2), ("uib", 160, 640, 3, 3, 1), ("uib", 160, 640, 3, 3, 1),  # 28x28
        ("uib", 160, 640, 3, 5, 1), ("uib", 160, 640, 3, 3, 1), ("uib", 160, 640, 3, 0, 1),
        ("uib", 160, 320, 0, 0, 1), ("uib", 160, 640, 3, 0, 1),
        ("uib", 256, 960, 5, 5, 2), ("uib", 256, 1024, 5, 5, 1), ("uib", 256, 1024, 3, 5, 1),  # 14x14
        ("uib", 256, 1024, 3, 5, 1), ("uib", 256, 1024, 0, 0, 1), ("uib", 256, 1024, 3, 0, 1),
        ("uib", 256, 512, 3, 5, 1), ("uib", 256, 1024, 5, 5, 1), ("uib", 256, 1024, 0, 0, 1),
        ("uib", 256, 1024, 0, 0, 1), ("uib", 256, 512, 5, 0, 1),
        ("conv", 960, 1, 1),                                                # 7x7
    ],
    "conv_large": [
        ("er", 48, 96, 3, 2),                                               # 112x112
        ("uib", 96, 192, 3, 5, 2), ("uib", 96, 384, 3, 3, 1),               # 56x56
        ("uib", 192, 384, 3, 5, 2), ("uib", 192, 768, 3, 3, 1), ("uib", 192, 768, 3, 3, 1),  # 28x28
        ("uib", 192, 768, 3, 3, 1), ("uib", 192, 768, 3, 5, 1), ("uib", 192, 768, 5, 3, 1),
        ("uib", 192, 768, 5, 3, 1), ("uib", 192, 768, 5, 3, 1), ("uib", 192, 768, 5, 3, 1),
        ("uib", 192, 768, 5, 3, 1), ("uib", 192, 768, 3, 0, 1),
        ("uib", 512, 768, 5, 5, 2), ("uib", 512, 2048, 5, 5, 1), ("uib", 512, 2048, 5, 5, 1),  # 14x14
        ("uib", 512, 2048, 5, 5, 1), ("uib", 512, 2048, 5, 0, 1), ("uib", 512, 2048, 5, 3, 1),
        ("uib", 512, 2048, 5, 0, 1), ("uib", 512, 2048, 5, 0, 1), ("uib", 512, 2048, 5, 3, 1),
        ("uib", 512, 2048, 5, 5, 1), ("uib", 512, 2048, 5, 0, 1), ("uib", 512, 2048, 5, 0, 1),
        ("uib", 512, 2048, 5, 0, 1),
        ("conv", 960, 1, 1),                                                # 7x7
    ],
    "hybrid_medium": [
        ("er", 48, 128, 3, 2),                                              # 112x112
        ("uib", 80, 192, 3, 5, 2), ("uib", 80, 160, 3, 3, 1),               # 56x56
        ("uib", 160, 480, 3, 5, 2), ("uib", 160, 320, 0, 0, 1), ("uib", 160, 640, 3, 3, 1),  # 28x28
        ("uib", 160, 640, 3, 5, 1),
        ("mqa", 160, 64, 3, 4, 2, 1), ("uib", 160, 640, 3, 3, 1),
        ("mqa", 160, 64, 3, 4, 2, 1), ("uib", 160, 640, 3, 0, 1),
        ("mqa", 160, 64, 3, 4, 2, 1), ("uib", 160, 640, 3, 3, 1),
        ("mqa", 160, 64, 3, 4, 2, 1), ("uib", 160, 640, 3, 0, 1),
        ("uib", 256, 960, 5, 5, 2), ("uib", 256, 1024, 5, 5, 1), ("uib", 256, 1024, 3, 5, 1),  # 14x14
        ("uib", 256, 1024, 3, 5, 1), ("uib", 256, 512, 0, 0, 1), ("uib", 256, 512, 3, 5, 1),
        ("uib", 256, 512, 0, 0, 1), ("uib", 256, 1024, 0, 0, 1),
        ("mqa", 256, 64, 3, 4, 1, 1), ("uib", 256, 1024, 3, 0, 1),
        ("mqa", 256, 64, 3, 4, 1, 1), ("uib", 256, 1024, 5, 5, 1),
        ("mqa", 256, 64, 3, 4, 1, 1), ("uib", 256, 1024, 5, 0, 1),
        ("mqa", 256, 64, 3, 4, 1, 1), ("uib", 256, 1024, 5, 0, 1),
        ("conv", 960, 1, 1),                                                # 7x7
    ],
    "hybrid_large": [
        ("er", 48, 96, 3, 2),                                               # 112x112
        ("uib", 96, 192, 3, 5, 2), ("uib", 96, 384, 3, 3, 1),               # 56x56
        ("uib", 192, 384, 3, 5, 2), ("uib", 192, 768, 3, 3, 1), ("uib", 192, 768, 3, 3, 1),  # 28x28
        ("uib", 192, 768, 3, 3, 1), ("uib", 192, 768, 3, 5, 1), ("uib", 192, 768, 5, 3, 1),
        ("uib", 192, 768, 5, 3, 1),
        ("mqa", 192, 48, 3, 8, 2, 1), ("uib", 192, 768, 5, 3, 1),
        ("mqa", 192, 48, 3, 8, 2, 1), ("uib", 192, 768, 5, 3, 1),
        ("mqa", 192, 48, 3, 8, 2, 1), ("uib", 192, 768, 5, 3, 1),
        ("mqa", 192, 48, 3, 8, 2, 1), ("uib", 192, 768, 3, 0, 1),
        ("uib", 512, 768, 5, 5, 2), ("uib", 512, 2048, 5, 5, 1), ("uib", 512, 2048, 5, 5, 1),  # 14x14
        ("uib", 512, 2048, 5, 5, 1), ("uib", 512, 2048, 5, 0, 1), ("uib", 512, 2048, 5, 3, 1),
        ("uib", 512, 2048, 5, 0, 1), ("uib", 512, 2048, 5, 0, 1), ("uib", 512, 2048, 5, 3, 1),
        ("uib", 512, 2048, 5, 5, 1),
        ("mqa", 512, 64, 3, 8, 1, 1), ("uib", 512, 2048, 5, 0, 1),
        ("mqa", 512, 64, 3, 8, 1, 1), ("uib", 512, 2048, 5, 0, 1),
        ("mqa", 512, 64, 3, 8, 1, 1), ("uib", 512, 2048, 5, 0, 1),
        ("mqa", 512, 64, 3, 8, 1, 1), ("uib", 512, 2048, 5, 0, 1),
        ("conv", 960, 1, 1),                                                # 7x7
    ],
}
# Per variant: stem channels, activation, layer scale on residual branches.
VARIANT_SETTINGS = {
    "conv_small": dict(stem=32, act="relu", layer_scale=False),
    "conv_medium": dict(stem=32, act="relu", layer_scale=False),
    "conv_large": dict(stem=24, act="relu", layer_scale=False),
    "hybrid_medium": dict(stem=32, act="relu", layer_scale=True),
    "hybrid_large": dict(stem=24, act="gelu", layer_scale=True),
}


def _stages(table: list) -> list:
    """The last block of each output resolution (strides 4, 8, 16, 32) and the final 1x1 conv block."""
    last = [i - 1 for i in range(1, len(table)) if table[i][-1] == 2]
    return [f"blocks.{i}" for i in last + [len(table) - 2, len(table) - 1]]


STAGES_PATTERN = {variant: _stages(table) for variant, table in ARCH_TABLE.items()}


class GELU(nn.GELU):
    """Exact (erf) GELU. Traced for export it is written x/2 + x/2 * erf(x/sqrt(2)): MNN's converter turns the
    usual x/2 * (1 + erf(x/sqrt(2))) into its approximate GELU (up to 5e-4 off per activation, which the GELU
    layers of hybrid_large add up to differences in the probabilities of several %)."""

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """gelu(x); the same values in both forms."""
        if paddle.in_dynamic_mode():
            return F.gelu(x)
        half = x * 0.5
        return half + half * paddle.erf(x * 0.7071067811865476)


def make_act(name: Optional[str]) -> nn.Layer:
    """relu, gelu (exact, erf-based) or None (identity)."""
    return {"relu": nn.ReLU, "gelu": GELU, None: nn.Identity}[name]()


class DropPath(nn.Layer):
    """Stochastic depth: in training, zero a sample's residual branch with probability `rate` (else scale it by
    1 / (1 - rate)); the identity in eval mode, so export and inference never see it."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = float(rate)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """`x`, or in training `x` with whole samples dropped."""
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = paddle.bernoulli(paddle.full_like(x[:, :1, :1, :1], keep))  # one draw per sample
        return x / keep * mask


class LayerScale(nn.Layer):
    """Multiply each channel by a learned factor (parameter `gamma`, one per channel)."""

    def __init__(self, channels: int, init_value: float = LAYER_SCALE_INIT):
        super().__init__()
        # paddle.create_parameter, as PaddleClas: its parameter name (`create_parameter_N.w_0`) keys a .pdopt.
        self.gamma = paddle.create_parameter([channels], dtype="float32",
                                             default_initializer=nn.initializer.Constant(init_value))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """`x` scaled per channel."""
        return x * self.gamma.reshape([1, -1, 1, 1])


def batch_norm(channels: int) -> nn.BatchNorm:
    """BatchNorm whose scale/shift are exempt from weight decay, as in PaddleClas. nn.BatchNorm, as PaddleClas: the
    same arithmetic as BatchNorm2D, PaddleClas's parameter names (what a .pdopt is keyed by)."""
    return nn.BatchNorm(channels, param_attr=ParamAttr(regularizer=L2Decay(0.0)),
                        bias_attr=ParamAttr(regularizer=L2Decay(0.0)))


class ConvBnAct(nn.Layer):
    """conv (no bias) -> BN -> activation (None: linear)."""

    def __init__(self, in_c: int, out_c: int, kernel_size: int, stride: int = 1, groups: int = 1,
                 act: Optional[str] = None):
        super().__init__()
        self.conv = nn.Conv2D(in_c, out_c, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                              groups=groups, bias_attr=False)
        self.bn = batch_norm(out_c)
        self.act = make_act(act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """Conv -> BN -> activation."""
        return self.act(self.bn(self.conv(x)))


class Residual(nn.Layer):
    """Base of the blocks with an optional shortcut: `forward` adds the input to `branch(x)` when shapes match."""

    def init_residual(self, in_c: int, out_c: int, stride: int, drop_path: float, layer_scale: bool) -> None:
        """Set up the shortcut, stochastic depth and (hybrids) layer scale; call after the branch layers."""
        self.use_shortcut = stride == 1 and in_c == out_c
        if layer_scale:
            self.layer_scale = LayerScale(out_c)
        self.drop_path = DropPath(drop_path) if drop_path > 0 and self.use_shortcut else nn.Identity()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """The branch output, plus the input when shapes match."""
        y = self.branch(x)
        if "layer_scale" in self._sub_layers:
            y = self.layer_scale(y)
        return x + self.drop_path(y) if self.use_shortcut else y


class EdgeResidual(Residual):
    """Fused inverted bottleneck: kxk conv (act) to `mid_c` -> 1x1 linear projection."""

    def __init__(self, in_c, out_c, mid_c, kernel, stride, act, drop_path=0.0, layer_scale=False):
        super().__init__()
        self.conv_exp = ConvBnAct(in_c, mid_c, kernel, stride, act=act)
        self.conv_pwl = ConvBnAct(mid_c, out_c, 1)
        self.init_residual(in_c, out_c, stride, drop_path, False)  # PaddleClas has no layer scale here

    def branch(self, x: paddle.Tensor) -> paddle.Tensor:
        """Expand with a full conv, project back."""
        return self.conv_pwl(self.conv_exp(x))


class UniversalInvertedBottleneck(Residual):
    """UIB: [kxk depthwise, linear] -> 1x1 expand (act) -> [kxk depthwise (act), strided] -> 1x1 linear projection.

    A depthwise kernel of 0 leaves that depthwise conv out; the middle one carries the stride."""

    def __init__(self, in_c, out_c, mid_c, start_kernel, mid_kernel, stride, act, drop_path=0.0,
                 layer_scale=False):
        super().__init__()
        if stride > 1 and not mid_kernel:
            raise ValueError(f"a strided UIB needs its middle depthwise conv (kernel > 0), got kernel {mid_kernel}")
        self.dw_start = ConvBnAct(in_c, in_c, start_kernel, groups=in_c) if start_kernel else nn.Identity()
        self.pw_exp = ConvBnAct(in_c, mid_c, 1, act=act)
        self.dw_mid = (ConvBnAct(mid_c, mid_c, mid_kernel, stride, groups=mid_c, act=act) if mid_kernel
                       else nn.Identity())
        self.pw_proj = ConvBnAct(mid_c, out_c, 1)
        self.init_residual(in_c, out_c, stride, drop_path, layer_scale)

    def branch(self, x: paddle.Tensor) -> paddle.Tensor:
        """The UIB branch."""
        return self.pw_proj(self.dw_mid(self.pw_exp(self.dw_start(x))))


class MobileMQA(Residual):
    """Mobile multi-query attention: BN, then `heads` query heads of size `head_dim` attend over one shared key
    and value head (spatially downsampled by a strided depthwise conv when kv_stride > 1), then a 1x1 projection.

    Logits are scaled by 1/sqrt(heads * head_dim) as in PaddleClas (its fused path, `use_fused_attn`, uses
    paddle's scaled_dot_product_attention and so 1/sqrt(head_dim))."""

    def __init__(self, in_c, out_c, head_dim, kernel, heads, kv_stride, stride, drop_path=0.0, layer_scale=False,
                 use_fused_attn=False):
        super().__init__()
        self.heads, self.head_dim, self.query_dim = heads, head_dim, heads * head_dim
        self.use_fused_attn = bool(use_fused_attn)
        self.scale = self.query_dim ** -0.5
        self.norm = batch_norm(in_c)
        self.query_proj = nn.Conv2D(in_c, self.query_dim, 1, bias_attr=False)
        if kv_stride > 1:
            self.key_down_proj = ConvBnAct(in_c, in_c, kernel, kv_stride, groups=in_c)
            self.value_down_proj = ConvBnAct(in_c, in_c, kernel, kv_stride, groups=in_c)
        else:
            self.key_down_proj = self.value_down_proj = None
        self.key_proj = nn.Conv2D(in_c, head_dim, 1, bias_attr=False)
        self.value_proj = nn.Conv2D(in_c, head_dim, 1, bias_attr=False)
        self.proj = nn.Conv2D(self.query_dim, out_c, 1, bias_attr=False)
        self.init_residual(in_c, out_c, stride, drop_path, layer_scale)

    def branch(self, x: paddle.Tensor) -> paddle.Tensor:
        """Attention output projected to `out_c` channels, same spatial size as `x`."""
        x = self.norm(x)
        height, width = x.shape[2], x.shape[3]
        # Query channel c is head c // head_dim; batch dims use 0 (= keep) so export keeps a dynamic batch.
        q = self.query_proj(x).flatten(2).reshape([0, self.heads, self.head_dim, -1])  # [B, heads, d, N]
        kx = x if self.key_down_proj is None else self.key_down_proj(x)
        vx = x if self.value_down_proj is None else self.value_down_proj(x)
        k = self.key_proj(kx).flatten(2)  # [B, d, M]
        v = self.value_proj(vx).flatten(2)  # [B, d, M]
        if self.use_fused_attn:  # [B, N, heads, d] x [B, M, 1, d] -> [B, N, heads, d]
            out = F.scaled_dot_product_attention(q.transpose([0, 3, 1, 2]), k.transpose([0, 2, 1]).unsqueeze(2),
                                                 v.transpose([0, 2, 1]).unsqueeze(2), training=self.training)
            out = out.transpose([0, 2, 3, 1])  # [B, heads, d, N]
        else:
            attn = F.softmax(paddle.matmul(q * self.scale, k.unsqueeze(1), transpose_x=True), axis=-1)  # [B,h,N,M]
            out = paddle.matmul(v.unsqueeze(1), attn, transpose_y=True)  # [B, heads, d, N]
        return self.proj(out.reshape([0, self.query_dim, height, width]))


class MobileNetV4(TheseusLayer):
    """Stem -> table blocks -> global pool -> 1x1 conv head (BN, act) -> dropout -> classifier."""

    def __init__(self, variant: str = "conv_small", class_num: int = 1000, drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0, use_fused_attn: bool = False, return_patterns=None,
                 return_stages=None, stop_after=None, freeze_befor=None):
        super().__init__()
        if variant not in ARCH_TABLE:
            raise ValueError(f"MobileNetV4 variant must be one of {list(ARCH_TABLE)}, got {variant!r}")
        for key, value in (("drop_rate", drop_rate), ("drop_path_rate", drop_path_rate)):
            if not 0.0 <= float(value) < 1.0:
                raise ValueError(f"Arch.{key} must be in [0, 1), got {value!r}")
        settings, table = VARIANT_SETTINGS[variant], ARCH_TABLE[variant]
        act = settings["act"]
        in_c = make_divisible(settings["stem"])
        self.conv_stem = ConvBnAct(3, in_c, 3, 2, act=act)
        blocks = []
        for i, (kind, out, *params) in enumerate(table):
            out_c = make_divisible(out)
            # Stochastic depth grows linearly with depth; plain conv blocks have no shortcut, so none there.
            extra = dict(drop_path=float(drop_path_rate) * i / len(table), layer_scale=settings["layer_scale"])
            if kind == "conv":
                kernel, stride = params
                blocks.append(ConvBnAct(in_c, out_c, kernel, stride, act=act))
            elif kind == "er":
                mid, kernel, stride = params
                blocks.append(EdgeResidual(in_c, out_c, make_divisible(mid), kernel, stride, act, **extra))
            elif kind == "uib":
                mid, start_kernel, mid_kernel, stride = params
                blocks.append(UniversalInvertedBottleneck(in_c, out_c, make_divisible(mid), start_kernel,
                                                          mid_kernel, stride, act, **extra))
            else:
                head_dim, kernel, heads, kv_stride, stride = params
                blocks.append(MobileMQA(in_c, out_c, make_divisible(head_dim), kernel, heads, kv_stride, stride,
                                        use_fused_attn=use_fused_attn, **extra))
            in_c = out_c
        self.blocks = nn.Sequential(*blocks)
        self.global_pool = nn.AdaptiveAvgPool2D(1)
        self.conv_head = ConvBnAct(in_c, HEAD_CHANNELS, 1, act=act)
        self.flatten = nn.Flatten(start_axis=1, stop_axis=-1)
        self.dropout = nn.Dropout(p=float(drop_rate)) if drop_rate else nn.Identity()  # scaled in training only
        self.classifier = nn.Linear(HEAD_CHANNELS, class_num)
        self.init_theseus(STAGES_PATTERN[variant], return_patterns, return_stages, stop_after, freeze_befor)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """Class logits of an NCHW image batch."""
        x = self.blocks(self.conv_stem(x))
        x = self.flatten(self.conv_head(self.global_pool(x)))
        return self.classifier(self.dropout(x))


# PaddleClas names -> table.
register_variants(MobileNetV4, {f"MobileNetV4_{variant}": dict(variant=variant) for variant in ARCH_TABLE})
