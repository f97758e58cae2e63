"""Structured filter pruning (`Slim.prune`): whole output channels removed from the model, not zeroed.

    Slim:
      prune: {name: fpgm, pruned_ratio: 0.3}     # or name: l1_norm

Channels are pruned in *groups*: every tensor dimension that must keep the same channels as a convolution's
output (PaddleSlim's coupled variables). For MobileNetV3 the groups are
  * each block's expanded channels: the 1x1 expand conv + BN, the depthwise conv + BN (its groups shrink with it),
    the squeeze-excite block's input and gate (conv1 in, conv2 out) and the 1x1 projection's input;
  * each squeeze-excite block's squeeze channels (conv1 out, conv2 in);
  * each residual chain: the stem or block output that starts it and the projections of the blocks whose
    shortcut adds onto it, with every expand conv reading it (the additions keep matching channels);
  * the last 1x1 conv (+ BN) before pooling, and the 1280-channel conv before the classifier (the fc's input).
Every group keeps channels * (1 - pruned_ratio), rounded to a multiple of 8 (CHANNEL_MULTIPLE; a group of 8 or
fewer is kept whole), as PaddleSlim prunes every Conv2D at the same ratio. Which ones: `l1_norm` drops the filters of smallest L1 norm, `fpgm` (He et al. 2019,
"Filter Pruning via Geometric Median") those closest to the geometric median of their layer's filters (the smallest
sum of distances to the others), which the rest can stand in for. A group with several producing convolutions
adds their scores, each divided by its largest. Parameter names stay as they were, so checkpoints of the pruned
model keep PaddleClas's keys (with smaller shapes); then fine-tune.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Tuple

import numpy as np
import paddle
from paddle import nn

PRUNE_NAMES = ("fpgm", "l1_norm")
# Kept channel counts are multiples of this: CPU kernels work on 8 (AVX2) or 16 channels at a time, and with
# PaddleSlim's exact counts (e.g. 67 of 96) MobileNetV3_large_x1_0 at ratio 0.3 ran *slower* in onnxruntime than
# unpruned despite half the MACs (docs/SLIM.md).
CHANNEL_MULTIPLE = 8


@dataclass
class ChannelGroup:
    """Tensor dimensions that share one set of channels: `producers` (Conv2D, BatchNorm or None) make them,
    `followers` (depthwise Conv2D / BN / SE gate conv) keep them per channel, `consumers` (Conv2D / Linear) read them."""

    name: str
    producers: List[Tuple[nn.Conv2D, object]] = field(default_factory=list)
    followers: List[nn.Layer] = field(default_factory=list)
    consumers: List[nn.Layer] = field(default_factory=list)

    @property
    def channels(self) -> int:
        return int(self.producers[0][0].weight.shape[0])


def _mobilenet_v3_groups(model: nn.Layer) -> List[ChannelGroup]:
    groups = []
    chain = ChannelGroup("conv", producers=[(model.conv.conv, model.conv.bn)])
    for i, block in enumerate(model.blocks):
        chain.consumers.append(block.expand_conv.conv)
        mid = ChannelGroup(f"blocks.{i}.expand_conv", producers=[(block.expand_conv.conv, block.expand_conv.bn)],
                           followers=[block.bottleneck_conv.conv, block.bottleneck_conv.bn],
                           consumers=[block.linear_conv.conv])
        if block.mid_se is not None:
            se = block.mid_se
            mid.consumers.append(se.conv1)
            mid.followers.append(se.conv2)
            groups.append(ChannelGroup(f"blocks.{i}.mid_se.conv1", producers=[(se.conv1, None)],
                                       consumers=[se.conv2]))
        groups.append(mid)
        if block.use_shortcut:  # its output is added onto the chain's channels
            chain.producers.append((block.linear_conv.conv, block.linear_conv.bn))
        else:
            groups.append(chain)
            chain = ChannelGroup(f"blocks.{i}.linear_conv", producers=[(block.linear_conv.conv, block.linear_conv.bn)])
    chain.consumers.append(model.last_second_conv.conv)
    groups.append(chain)
    groups.append(ChannelGroup("last_second_conv", producers=[(model.last_second_conv.conv, model.last_second_conv.bn)],
                               consumers=[model.last_conv]))
    groups.append(ChannelGroup("last_conv", producers=[(model.last_conv, None)], consumers=[model.fc]))
    return groups


# Model classes -> the function that lists their channel groups. A family not here cannot be pruned.
GROUP_BUILDERS: Dict[str, Callable[[nn.Layer], List[ChannelGroup]]] = {"MobileNetV3": _mobilenet_v3_groups}


def prunable_family(model_class: type) -> bool:
    """Whether models of `model_class` can be pruned."""
    return model_class.__name__ in GROUP_BUILDERS


def filter_scores(weight: np.ndarray, criterion: str) -> np.ndarray:
    """One importance score per output filter of a conv weight [out, ...]: higher = keep."""
    filters = weight.reshape(weight.shape[0], -1).astype(np.float64)
    if criterion == "l1_norm":
        return np.abs(filters).sum(axis=1)
    # fpgm: the sum of distances to every other filter; the smallest sit at the geometric median.
    squared = (filters ** 2).sum(axis=1)
    distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * filters @ filters.T, 0.0))
    return distances.sum(axis=1)


def _kept_channels(group: ChannelGroup, criterion: str, ratio: float) -> np.ndarray:
    score = np.zeros(group.channels)
    for conv, _ in group.producers:
        s = filter_scores(conv.weight.numpy(), criterion)
        score += s / max(float(s.max()), 1e-12)
    keep = int(round(group.channels * (1 - ratio) / CHANNEL_MULTIPLE)) * CHANNEL_MULTIPLE
    keep = min(max(keep, CHANNEL_MULTIPLE), group.channels)
    return np.sort(np.argsort(-score, kind="stable")[:keep])


def _replace_parameter(layer: nn.Layer, name: str, value: np.ndarray) -> None:
    """Give `layer.<name>` the smaller `value`, keeping its name (PaddleClas's, which .pdopt keys state by),
    regularizer, learning rate and gradient setting."""
    old = getattr(layer, name)
    attr = paddle.ParamAttr(regularizer=getattr(old, "regularizer", None), trainable=old.trainable,
                            learning_rate=(getattr(old, "optimize_attr", None) or {}).get("learning_rate", 1.0),
                            need_clip=getattr(old, "need_clip", True))
    new = paddle.create_parameter(list(value.shape), str(old.dtype).replace("paddle.", ""), attr=attr)
    new.set_value(value)
    new.name = old.name  # (a new parameter may not be created under a name in use)
    new.stop_gradient = old.stop_gradient
    setattr(layer, name, new)


def _slice_output(layer: nn.Layer, index: np.ndarray) -> None:
    """Keep output channels `index` of a Conv2D (a depthwise one's groups too) or a BatchNorm."""
    for name in ("weight", "bias", "_mean", "_variance"):
        if isinstance(getattr(layer, name, None), paddle.Tensor):
            _replace_parameter(layer, name, np.take(getattr(layer, name).numpy(), index, axis=0))
    if isinstance(layer, nn.Conv2D):
        layer._out_channels = len(index)
        if layer._groups > 1:  # depthwise: one input channel per output channel
            layer._groups = layer._in_channels = len(index)
    elif hasattr(layer, "_num_features"):
        layer._num_features = len(index)


def _slice_input(layer: nn.Layer, index: np.ndarray) -> None:
    """Keep input channels `index` of a Conv2D (weight axis 1) or Linear (weight [in, out], axis 0)."""
    linear = isinstance(layer, nn.Linear)
    _replace_parameter(layer, "weight", np.take(layer.weight.numpy(), index, axis=0 if linear else 1))
    if linear:
        layer._in_features = len(index)
    else:
        layer._in_channels = len(index)


def plan_pruning(model: nn.Layer, name: str = "fpgm", pruned_ratio: float = 0.3) -> List[Tuple[ChannelGroup, np.ndarray]]:
    """[(group, channels to keep)] for every channel group of `model`, chosen by `name` (fpgm | l1_norm) on the
    current weights; nothing is changed yet (see apply_pruning)."""
    if name not in PRUNE_NAMES:
        raise ValueError(f"Slim.prune.name must be one of {list(PRUNE_NAMES)}, got {name!r}")
    if not 0 < float(pruned_ratio) < 1:
        raise ValueError(f"Slim.prune.pruned_ratio must be in (0, 1), got {pruned_ratio!r}")
    builder = GROUP_BUILDERS.get(type(model).__name__)
    if builder is None:
        raise ValueError(f"Slim.prune cannot prune a {type(model).__name__}: its channel groups are known for "
                         f"{', '.join(GROUP_BUILDERS)} only")
    return [(group, _kept_channels(group, name, float(pruned_ratio))) for group in builder(model)]


def apply_pruning(plan: List[Tuple[ChannelGroup, np.ndarray]]) -> List[dict]:
    """Cut every group of `plan` down to its kept channels (in place); returns {"group", "channels", "kept"} each."""
    summary = []
    for group, index in plan:
        channels = group.channels
        for layer in [layer for pair in group.producers for layer in pair if layer is not None] + group.followers:
            _slice_output(layer, index)
        for layer in group.consumers:
            _slice_input(layer, index)
        summary.append({"group": group.name, "channels": channels, "kept": len(index)})
    return summary


def prune_model(model: nn.Layer, name: str = "fpgm", pruned_ratio: float = 0.3) -> List[dict]:
    """Remove `pruned_ratio` of the channels of every group of `model` (in place), chosen by `name`
    (fpgm | l1_norm); returns one {"group", "channels", "kept"} per group."""
    return apply_pruning(plan_pruning(model, name, pruned_ratio))
