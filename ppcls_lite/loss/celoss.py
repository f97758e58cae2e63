"""Cross-entropy with optional label smoothing; accepts hard labels or soft targets (mixup/cutmix)."""
from __future__ import annotations

from typing import Dict, Sequence, Union

import numpy as np
import paddle
import paddle.nn.functional as F

from ppcls_lite.arch.outputs import logits_of
from ppcls_lite.utils.registry import Registry

# Losses a `Loss.Train` / `Loss.Eval` list may name.
LOSSES = Registry("loss", plural="losses")


def is_soft_target(labels: paddle.Tensor, class_num: int) -> bool:
    """True for float `[N, C]` soft targets (mixup/cutmix), False for class ids."""
    return labels.dtype in (paddle.float16, paddle.float32, paddle.float64, paddle.bfloat16) and \
        labels.ndim == 2 and labels.shape[-1] == class_num


class ClassWeights:
    """Per-class loss weights for imbalanced data, the `class_weights` key of CELoss and FocalLoss: a list (one
    weight per class), or `auto`: N / (C * n_c) from the train list's counts n_c (a class with half the average
    count weighs 2), set by the engine through `set_class_counts`. A sample weighs its class's weight (soft
    targets: their mix), and the loss is the weighted mean over the batch."""

    def __init__(self, spec: Union[None, str, Sequence[float]], where: str):
        self.where, self.auto = where, isinstance(spec, str)
        if self.auto and spec.strip().lower() != "auto":
            raise ValueError(f"{where}.class_weights must be a list of weights (one per class) or auto, got {spec!r}")
        self.values = None if spec is None or self.auto else np.asarray(spec, dtype=np.float32).reshape(-1)
        if self.values is not None and (not np.all(np.isfinite(self.values)) or (self.values < 0).any()):
            raise ValueError(f"{where}.class_weights must be numbers >= 0, got {list(spec)}")

    @property
    def active(self) -> bool:
        """Whether the loss is weighted at all."""
        return self.auto or self.values is not None

    def set_class_counts(self, counts: Sequence[int]) -> None:
        """`auto`: the weights from the number of train images of each class."""
        if self.auto:
            counts = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)  # a class absent from the list weighs most
            self.values = (counts.sum() / (len(counts) * counts)).astype(np.float32)

    def sample_weights(self, target: paddle.Tensor) -> paddle.Tensor:
        """[N] weights of the samples whose (one-hot or soft) targets are `target` [N, C]."""
        if self.values is None:
            raise RuntimeError(f"{self.where}.class_weights: auto needs the train list's class counts; build the "
                               f"loss through build_engine (or call set_class_counts)")
        if len(self.values) != target.shape[-1]:
            raise ValueError(f"{self.where}.class_weights has {len(self.values)} values but the model has "
                             f"{target.shape[-1]} classes; give one weight per class (or auto)")
        return (target * paddle.to_tensor(self.values, dtype=target.dtype)).sum(axis=-1)


def class_targets(logits: paddle.Tensor, labels: paddle.Tensor) -> paddle.Tensor:
    """float [N, C] targets: soft targets as they are, class ids one-hot."""
    class_num = logits.shape[-1]
    if is_soft_target(labels, class_num):
        return labels.astype(logits.dtype)
    return F.one_hot(labels.reshape([-1]).astype("int64"), class_num).astype(logits.dtype)


def weighted_mean(per_sample: paddle.Tensor, target: paddle.Tensor, weights: ClassWeights) -> paddle.Tensor:
    """The batch mean of `per_sample` losses, weighted by class when `weights` is active."""
    if not weights.active:
        return per_sample.mean()
    w = weights.sample_weights(target)
    return (per_sample * w).sum() / paddle.clip(w.sum(), min=1e-12)


@LOSSES.register()
class CELoss(paddle.nn.Layer):
    """Mean cross-entropy over the batch.

    labels: int `[N]` / `[N, 1]` class ids, or float `[N, C]` soft targets (rows summing to 1).
    epsilon: label smoothing; the target becomes `(1 - epsilon) * target + epsilon / C`. None or 0 -> plain CE.
    As in PaddleClas, soft targets are smoothed too when epsilon is set.
    class_weights: a list (one weight per class) or `auto` (from the train list's class counts): see ClassWeights.
    """

    def __init__(self, epsilon=None, class_weights=None):
        super().__init__()
        if epsilon is not None and not 0.0 <= float(epsilon) < 1.0:
            raise ValueError(f"CELoss.epsilon must be in [0, 1), got {epsilon} (Loss.Train.CELoss.epsilon)")
        self.epsilon = float(epsilon) if epsilon else 0.0
        self.class_weights = ClassWeights(class_weights, "CELoss")

    def set_class_counts(self, counts: Sequence[int]) -> None:
        """Train images per class, for `class_weights: auto`."""
        self.class_weights.set_class_counts(counts)

    def forward(self, logits: Union[paddle.Tensor, Dict[str, paddle.Tensor]], labels: paddle.Tensor) -> paddle.Tensor:
        """The scalar mean cross-entropy of `logits` against `labels`."""
        logits = logits_of(logits)  # models with return_patterns give {"logits": ..., ...}
        target = class_targets(logits, labels)
        smoothed = target * (1.0 - self.epsilon) + self.epsilon / logits.shape[-1] if self.epsilon else target
        per_sample = -(smoothed * F.log_softmax(logits, axis=-1)).sum(axis=-1)
        return weighted_mean(per_sample, target, self.class_weights)


@LOSSES.register()
class MixCELoss(CELoss):
    """PaddleClas's deprecated name for cross-entropy on mixup/cutmix targets: CELoss already handles them."""

    deprecated_for = "CELoss"


@LOSSES.register()
class SoftTargetCrossEntropy(CELoss):
    """PaddleClas's soft-target cross-entropy, `-(target * log_softmax(logits)).sum(-1).mean()`: CELoss without
    label smoothing (it takes no parameters)."""

    def __init__(self):
        super().__init__(epsilon=None)
