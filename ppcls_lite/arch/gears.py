"""Necks and heads of a RecModel (PaddleClas's `ppcls/arch/gears`): `Neck` / `Head` sections name one of `GEARS`.

    Neck: {name: FC, embedding_size: 1024, class_num: 512}           # a linear layer: 1024-d -> 512-d embedding
    Head: {name: ArcMargin, embedding_size: 512, class_num: 101, margin: 0.15, scale: 30}

Parameter names and shapes are PaddleClas's (`fc.weight` [in, out] + `fc.bias` for FC; `weight`
[embedding_size, class_num] for the margin heads), so its RecModel checkpoints load as they are.

The margin heads (ArcFace, CosFace, Circle loss) score L2-normalised features against L2-normalised class
weights: the cosine similarity [N, class_num]. In training, given the labels, the target class's cosine gets
the margin and every score is multiplied by `scale`; in eval mode (or without labels) they return the plain
cosines, so a CELoss / TopkAcc over them still means something.
"""
from __future__ import annotations

import math
from typing import Optional

import paddle
import paddle.nn.functional as F
from paddle import nn

from ppcls_lite.utils.registry import Registry

# Necks and heads a `Neck` / `Head` section may name.
GEARS = Registry("neck/head", plural="necks/heads")
EPS = 1e-12  # keeps the normalisation finite for an all-zero feature


def _cosine(features: paddle.Tensor, weight: paddle.Tensor) -> paddle.Tensor:
    """cos(feature, class weight) [N, class_num]: both L2-normalised (features per row, weights per column)."""
    features = features / paddle.sqrt(paddle.sum(paddle.square(features), axis=1, keepdim=True) + EPS)
    weight = weight / paddle.sqrt(paddle.sum(paddle.square(weight), axis=0, keepdim=True) + EPS)
    return paddle.matmul(features, weight)


def _one_hot(label: paddle.Tensor, class_num: int) -> paddle.Tensor:
    """Class ids [N] or [N, 1] -> float32 one-hot [N, class_num]."""
    return F.one_hot(label.reshape([-1]).astype("int64"), class_num).astype("float32")


@GEARS.register()
class FC(nn.Layer):
    """A linear layer `embedding_size` -> `class_num` (as a neck it makes the embedding, as a head the logits)."""

    def __init__(self, embedding_size: int, class_num: int):
        super().__init__()
        self.embedding_size, self.class_num = int(embedding_size), int(class_num)
        self.fc = nn.Linear(self.embedding_size, self.class_num,
                            weight_attr=paddle.ParamAttr(initializer=nn.initializer.XavierNormal()))

    def forward(self, x: paddle.Tensor, label: Optional[paddle.Tensor] = None) -> paddle.Tensor:
        """[N, embedding_size] -> [N, class_num] (the label is not used)."""
        return self.fc(x)


class MarginHead(nn.Layer):
    """The margin heads' common part: cosines to L2-normalised class weights `weight` [embedding_size,
    class_num]; in training with labels, `margin_logits(cos, one_hot)` times `scale`."""

    def __init__(self, embedding_size: int, class_num: int, margin: float, scale: float):
        super().__init__()
        self.embedding_size, self.class_num = int(embedding_size), int(class_num)
        self.margin, self.scale = float(margin), float(scale)
        self.weight = self.create_parameter(shape=[self.embedding_size, self.class_num], is_bias=False,
                                            default_initializer=nn.initializer.XavierNormal())

    def forward(self, x: paddle.Tensor, label: Optional[paddle.Tensor] = None) -> paddle.Tensor:
        """Cosines [N, class_num]; in training with labels, the margin-adjusted and scaled logits."""
        cos = _cosine(x, self.weight)
        if not self.training or label is None:
            return cos
        return self.margin_logits(cos, _one_hot(label, self.class_num)) * self.scale

    def margin_logits(self, cos: paddle.Tensor, one_hot: paddle.Tensor) -> paddle.Tensor:
        """The unscaled training logits from the cosines and the one-hot labels."""
        raise NotImplementedError


@GEARS.register()
class ArcMargin(MarginHead):
    """ArcFace (Deng et al. 2019): the target logit is scale * cos(theta + margin).

    Past theta = pi - margin the angle cannot grow further; there (unless `easy_margin`) the target logit is
    cos(theta) - margin * sin(margin), PaddleClas's (and InsightFace's) continuation. `easy_margin` keeps the
    plain cosine for targets with cos(theta) <= 0 instead."""

    def __init__(self, embedding_size: int, class_num: int, margin: float = 0.5, scale: float = 80.0,
                 easy_margin: bool = False):
        super().__init__(embedding_size, class_num, margin, scale)
        self.easy_margin = bool(easy_margin)

    def margin_logits(self, cos: paddle.Tensor, one_hot: paddle.Tensor) -> paddle.Tensor:
        """cos(theta + margin) for the target class, cos(theta) for the others."""
        sin = paddle.sqrt(paddle.clip(1.0 - paddle.square(cos), min=0.0) + 1e-6)
        phi = cos * math.cos(self.margin) - sin * math.sin(self.margin)  # cos(theta + m)
        if self.easy_margin:
            phi = paddle.where(cos > 0, phi, cos)
        else:
            phi = paddle.where(cos > -math.cos(self.margin), phi, cos - math.sin(self.margin) * self.margin)
        return one_hot * phi + (1.0 - one_hot) * cos


@GEARS.register()
class CosMargin(MarginHead):
    """CosFace (Wang et al. 2018): the target logit is scale * (cos(theta) - margin)."""

    def __init__(self, embedding_size: int, class_num: int, margin: float = 0.35, scale: float = 64.0):
        super().__init__(embedding_size, class_num, margin, scale)

    def margin_logits(self, cos: paddle.Tensor, one_hot: paddle.Tensor) -> paddle.Tensor:
        """cos(theta) - margin for the target class."""
        return cos - one_hot * self.margin


@GEARS.register()
class CircleMargin(MarginHead):
    """Circle loss's classification form (Sun et al. 2020): each cosine is re-weighted by how far it is from
    its optimum (1 + margin for the target, -margin for the others) around the decision margins 1 - margin
    (target) and margin (others), then scaled. `margin` and `scale` are required, as in PaddleClas."""

    def margin_logits(self, cos: paddle.Tensor, one_hot: paddle.Tensor) -> paddle.Tensor:
        """The re-weighted cosines."""
        alpha_p = paddle.clip(1.0 + self.margin - cos.detach(), min=0.0)
        alpha_n = paddle.clip(cos.detach() + self.margin, min=0.0)
        positive = alpha_p * (cos - (1.0 - self.margin))
        negative = alpha_n * (cos - self.margin)
        return one_hot * positive + (1.0 - one_hot) * negative


@GEARS.register()
class BNNeck(nn.Layer):
    """Flatten + BatchNorm1D (the ReID "BNNeck", Luo et al. 2019): the features normalised per channel before
    the classifier. Keys `feat_bn.*` (momentum 0.9, epsilon 1e-5 as PaddleClas)."""

    def __init__(self, num_features: int):
        super().__init__()
        self.feat_bn = nn.BatchNorm1D(int(num_features), momentum=0.9, epsilon=1e-5)
        self.flatten = nn.Flatten()

    def forward(self, x: paddle.Tensor, label: Optional[paddle.Tensor] = None) -> paddle.Tensor:
        """[N, C, ...] -> batch-normalised [N, C * ...]."""
        return self.feat_bn(self.flatten(x))


def build_gear(section: dict, where: str) -> nn.Layer:
    """A `Neck` / `Head` mapping ({name, its parameters}) -> the layer it names."""
    if not isinstance(section, dict) or not section.get("name"):
        raise ValueError(f"{where} must be a mapping with a 'name' (one of {', '.join(GEARS.names())}), "
                         f"got {section!r}")
    params = dict(section)
    name = GEARS.canonical(params.pop("name"), f"{where}.name")
    return GEARS.build(name, params, where)
