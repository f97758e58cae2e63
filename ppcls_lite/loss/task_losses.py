"""Losses of the practical tasks: FocalLoss (imbalanced single-label data) and PaddleClas's MultiLabelLoss."""
from typing import Any, Optional, Sequence

import paddle
import paddle.nn.functional as F

from ppcls_lite.arch.outputs import logits_of

from .celoss import LOSSES, ClassWeights, class_targets, weighted_mean


@LOSSES.register()
class FocalLoss(paddle.nn.Layer):
    """Focal loss (Lin et al. 2017): cross-entropy scaled by (1 - p_true)^gamma, so images the model already gets
    right count little and the hard (often rare-class) ones dominate. gamma 0 is plain cross-entropy.
    `class_weights` (a list or `auto`) as for CELoss (the paper's alpha)."""

    def __init__(self, gamma: float = 2.0, class_weights: Any = None):
        super().__init__()
        if float(gamma) < 0:
            raise ValueError(f"FocalLoss.gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.class_weights = ClassWeights(class_weights, "FocalLoss")

    def set_class_counts(self, counts: Sequence[int]) -> None:
        """Train images per class, for `class_weights: auto`."""
        self.class_weights.set_class_counts(counts)

    def forward(self, logits: Any, labels: paddle.Tensor) -> paddle.Tensor:
        """The scalar (weighted) mean focal loss."""
        logits = logits_of(logits)
        target = class_targets(logits, labels)
        log_prob = F.log_softmax(logits, axis=-1)
        focus = (1.0 - paddle.exp(log_prob)) ** self.gamma
        per_sample = -(target * focus * log_prob).sum(axis=-1)
        return weighted_mean(per_sample, target, self.class_weights)


@LOSSES.register()
class MultiLabelLoss(paddle.nn.Layer):
    """Binary cross-entropy on every class's logit (PaddleClas's multi-label loss).

    labels: float 0/1 [N, C], or [N, 2, C] (MultiLabelDataset with label_ratio: 0/1 rows and each class's share of
    positives in the list). `epsilon` smooths the targets to (1 - epsilon) * t + epsilon / C (ignored outside
    (0, 1), as in PaddleClas). `weight_ratio` weighs each term by exp(1 - ratio) for a positive and exp(ratio) for a
    negative, so rare attributes count more (needs label_ratio). `size_sum` sums over classes before the batch
    mean (else the mean over both)."""

    multilabel = True

    def __init__(self, epsilon: Optional[float] = None, size_sum: bool = False, weight_ratio: bool = False):
        super().__init__()
        self.epsilon = float(epsilon) if epsilon is not None and 0 < float(epsilon) < 1 else None
        self.size_sum = bool(size_sum)
        self.weight_ratio = bool(weight_ratio)

    def forward(self, logits: Any, labels: paddle.Tensor) -> paddle.Tensor:
        """The scalar loss."""
        logits = logits_of(logits)
        class_num = logits.shape[-1]
        labels = labels.astype(logits.dtype)
        ratio = None
        if labels.ndim == 3:
            labels, ratio = labels[:, 0, :], labels[:, 1, :]
        elif self.weight_ratio:
            raise ValueError("MultiLabelLoss.weight_ratio needs each class's positive ratio: set label_ratio: True "
                             "in the MultiLabelDataset of DataLoader.Train and DataLoader.Eval")
        if labels.shape[-1] != class_num:
            raise ValueError(f"MultiLabelLoss: labels have {labels.shape[-1]} classes but the model outputs "
                             f"{class_num}; check Arch.class_num against the list file")
        target = labels * (1.0 - self.epsilon) + self.epsilon / class_num if self.epsilon else labels
        cost = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        if self.weight_ratio:
            positive = (target > 0.5).astype(cost.dtype)
            cost = cost * paddle.exp(positive * (1.0 - ratio) + (1.0 - positive) * ratio)
        return cost.sum(axis=1).mean() if self.size_sum else cost.mean()
