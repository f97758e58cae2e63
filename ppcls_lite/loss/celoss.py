"""Cross-entropy with optional label smoothing; accepts hard labels or soft targets (mixup/cutmix)."""
from __future__ import annotations

from typing import Dict, Union

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


@LOSSES.register()
class CELoss(paddle.nn.Layer):
    """Mean cross-entropy over the batch.

    labels: int `[N]` / `[N, 1]` class ids, or float `[N, C]` soft targets (rows summing to 1).
    epsilon: label smoothing; the target becomes `(1 - epsilon) * target + epsilon / C`. None or 0 -> plain CE.
    As in PaddleClas, soft targets are smoothed too when epsilon is set.
    """

    def __init__(self, epsilon=None):
        super().__init__()
        if epsilon is not None and not 0.0 <= float(epsilon) < 1.0:
            raise ValueError(f"CELoss.epsilon must be in [0, 1), got {epsilon} (Loss.Train.CELoss.epsilon)")
        self.epsilon = float(epsilon) if epsilon else 0.0

    def forward(self, logits: Union[paddle.Tensor, Dict[str, paddle.Tensor]], labels: paddle.Tensor) -> paddle.Tensor:
        """The scalar mean cross-entropy of `logits` against `labels`."""
        logits = logits_of(logits)  # models with return_patterns give {"logits": ..., ...}
        class_num = logits.shape[-1]
        if is_soft_target(labels, class_num):
            target = labels.astype(logits.dtype)
        else:
            target = F.one_hot(labels.reshape([-1]).astype("int64"), class_num).astype(logits.dtype)
        if self.epsilon:
            target = target * (1.0 - self.epsilon) + self.epsilon / class_num
        log_prob = F.log_softmax(logits, axis=-1)
        return -(target * log_prob).sum(axis=-1).mean()


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
