"""Metric-learning losses on the embedding of a RecModel (`outputs["features"]`): triplet losses with batch-hard
mining and the supervised contrastive loss. PaddleClas's names, parameters and formulas.

They need batches holding several images of each identity: `DistributedRandomIdentitySampler` (`num_instances`
images of each of batch_size / num_instances identities) makes them.
"""
from __future__ import annotations

from typing import Any, Dict

import paddle
import paddle.nn.functional as F

from .celoss import LOSSES

EPS = 1e-12


def features_of(outputs: Any, key: str = "features", loss: str = "the loss") -> paddle.Tensor:
    """The embedding [N, D] a metric-learning loss reads: `outputs[key]` of a RecModel's dict output."""
    if not isinstance(outputs, dict) or key not in outputs:
        have = sorted(outputs) if isinstance(outputs, dict) else type(outputs).__name__
        raise ValueError(f"{loss} reads the model output '{key}', but the model gives {have}: use it with "
                         f"Arch.name: RecModel (whose output has backbone, features and logits)")
    return outputs[key]


def l2_normalize(x: paddle.Tensor) -> paddle.Tensor:
    """Rows scaled to unit length (an all-zero row stays zero)."""
    return x / (paddle.norm(x, p=2, axis=-1, keepdim=True) + EPS)


def pairwise_distances(x: paddle.Tensor) -> paddle.Tensor:
    """Euclidean distances [N, N] between the rows of `x` (squared distances clipped at 1e-12 before the root,
    so identical rows give 1e-6 and the gradient stays finite)."""
    squared = paddle.sum(paddle.square(x), axis=1, keepdim=True)
    dist = squared + squared.t() - 2.0 * paddle.matmul(x, x, transpose_y=True)
    return paddle.sqrt(paddle.clip(dist, min=1e-12))


def batch_hard_triplet(features: paddle.Tensor, labels: paddle.Tensor, margin: float) -> paddle.Tensor:
    """mean(relu(d(a, hardest positive) - d(a, hardest negative) + margin)) over the anchors of the batch.

    The hardest positive is the farthest sample of the anchor's identity (the anchor itself counts, so an
    identity seen once gives distance ~0); the hardest negative the nearest of another identity. An anchor
    without any negative in the batch (one identity only) contributes 0."""
    labels = labels.reshape([-1])
    dist = pairwise_distances(features)
    same = (labels.unsqueeze(1) == labels.unsqueeze(0)).astype(dist.dtype)
    big = paddle.max(dist).detach() + 1.0  # pushes the other kind out of the max / min
    hardest_positive = paddle.max(dist - (1.0 - same) * big, axis=1)
    hardest_negative = paddle.min(dist + same * big, axis=1)
    return F.relu(hardest_positive - hardest_negative + margin).mean()


@LOSSES.register()
class TripletLossV2(paddle.nn.Layer):
    """Batch-hard triplet loss (FaceNet; Hermans et al. 2017) on the L2-normalised features (`normalize_feature`)
    read from `outputs[feature_from]`."""

    def __init__(self, margin: float = 0.5, normalize_feature: bool = True, feature_from: str = "features"):
        super().__init__()
        self.margin, self.normalize_feature, self.feature_from = float(margin), bool(normalize_feature), feature_from

    def forward(self, outputs: Dict[str, paddle.Tensor], labels: paddle.Tensor) -> paddle.Tensor:
        """The scalar loss of one batch."""
        features = features_of(outputs, self.feature_from, "TripletLossV2")
        if self.normalize_feature:
            features = l2_normalize(features)
        return batch_hard_triplet(features, labels, self.margin)


@LOSSES.register()
class TripletLoss(paddle.nn.Layer):
    """Batch-hard triplet loss (Hermans et al. 2017) on the raw `features` (PaddleClas's first version)."""

    def __init__(self, margin: float = 1.0):
        super().__init__()
        self.margin = float(margin)

    def forward(self, outputs: Dict[str, paddle.Tensor], labels: paddle.Tensor) -> paddle.Tensor:
        """The scalar loss of one batch."""
        return batch_hard_triplet(features_of(outputs, loss="TripletLoss"), labels, self.margin)


@LOSSES.register()
class SupConLoss(paddle.nn.Layer):
    """Supervised contrastive loss (Khosla et al. 2020) over the batch: every sample is an anchor, the other
    samples of its identity its positives, all other samples the contrast.

    PaddleClas reshapes the batch into `views` consecutive images per identity (the identity sampler's layout,
    `views` = num_instances); the loss is the same mean over anchors, computed here without that reshape, so
    any batch layout works and `views` is only accepted for its configs. An anchor alone in its identity has
    no positive and is left out of the mean."""

    def __init__(self, views: int = 16, temperature: float = 0.07, contrast_mode: str = "all",
                 base_temperature: float = 0.07, normalize_feature: bool = True):
        super().__init__()
        if contrast_mode != "all":
            raise ValueError(f"SupConLoss.contrast_mode={contrast_mode!r} is not supported: with labels every view "
                             "is an anchor (contrast_mode: all)")
        self.views = int(views)
        self.temperature, self.base_temperature = float(temperature), float(base_temperature)
        self.normalize_feature = bool(normalize_feature)

    def forward(self, outputs: Dict[str, paddle.Tensor], labels: paddle.Tensor) -> paddle.Tensor:
        """The scalar loss of one batch."""
        features = features_of(outputs, loss="SupConLoss")
        if self.normalize_feature:
            features = l2_normalize(features)
        labels = labels.reshape([-1])
        n = features.shape[0]
        logits = paddle.matmul(features, features, transpose_y=True) / self.temperature
        logits = logits - paddle.max(logits, axis=1, keepdim=True).detach()  # numerical stability
        not_self = 1.0 - paddle.eye(n, dtype=logits.dtype)
        positive = (labels.unsqueeze(1) == labels.unsqueeze(0)).astype(logits.dtype) * not_self
        log_prob = logits - paddle.log(paddle.sum(paddle.exp(logits) * not_self, axis=1, keepdim=True))
        count = paddle.sum(positive, axis=1)
        has_positive = (count > 0).astype(logits.dtype)
        mean_log_prob = paddle.sum(positive * log_prob, axis=1) / paddle.clip(count, min=1.0)
        loss = -(self.temperature / self.base_temperature) * mean_log_prob
        return paddle.sum(loss * has_positive) / paddle.clip(paddle.sum(has_positive), min=1.0)
