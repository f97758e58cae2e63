"""Distillation losses on a DistillationModel's {sub-model name: output} dict, with PaddleClas's keys and loss names.

Each returns a dict of named losses (summed, after its `weight`, by loss/combined.py):
  DistillationCELoss     CE of model a against softmax(model b)        "CELoss_<a>_<b>"
  DistillationGTCELoss   CE of each model against the labels           "CELoss_<model>"
  DistillationDMLLoss    symmetric KL (deep mutual learning)           "DMLLoss_<a>_<b>_<pair index>"
  DistillationKLDivLoss  KL(softmax(b / T) || softmax(a / T)) * T^2     "loss_kldiv_<a>_<b>"
  DistillationDKDLoss    decoupled KD (Zhao et al. 2022)               "<name>_<a>_<b>" (name: "loss_dkd")
`model_name_pairs` lists [a, b] pairs (a learns from b); `key` picks one entry of dict outputs (a sub-model with
return_patterns); without it a dict output gives its "logits".
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import paddle
import paddle.nn.functional as F

from ppcls_lite.arch.outputs import logits_of

from .celoss import LOSSES, CELoss, is_soft_target


class _PairLoss(paddle.nn.Layer):
    """Shared parts: which sub-model outputs to read and how."""

    def __init__(self, loss_name: str, names: Any, key: Optional[str], pairs: bool):
        super().__init__()
        item = "[student, teacher] pairs like [[Student, Teacher]]" if pairs else "sub-model names like [Student]"
        what = "model_name_pairs" if pairs else "model_names"
        ok = isinstance(names, (list, tuple)) and names and all(
            isinstance(n, (list, tuple)) and len(n) == 2 and all(isinstance(m, str) for m in n) if pairs
            else isinstance(n, str) for n in names)
        if not ok:
            raise ValueError(f"{loss_name}.{what} must be a non-empty list of {item}, got {names!r}")
        self.loss_name = loss_name
        self.key = key

    def output(self, predicts: Any, name: str) -> paddle.Tensor:
        """The output of sub-model `name` (its `key` entry for a dict output)."""
        if not isinstance(predicts, dict):
            raise ValueError(f"{self.loss_name} needs the {{sub-model name: output}} dict of a DistillationModel "
                             f"(Arch.name: DistillationModel), got {type(predicts).__name__}")
        if name not in predicts:
            raise KeyError(f"{self.loss_name}: {name!r} is not a sub-model; Arch.models has {list(predicts)}")
        out = predicts[name]
        if self.key is None:
            return logits_of(out)
        if not isinstance(out, dict) or self.key not in out:
            have = list(out) if isinstance(out, dict) else "a single tensor"
            raise KeyError(f"{self.loss_name}.key {self.key!r} is not an output of sub-model {name} (it gives "
                           f"{have}); give the sub-model return_patterns including it, or drop the key")
        return out[self.key]


def _kl_sum(log_pred: paddle.Tensor, target: paddle.Tensor) -> paddle.Tensor:
    """sum(target * (log target - log_pred)) over everything, 0 * log 0 counted as 0 (paddle's kl_div 'sum')."""
    return F.kl_div(log_pred, target, reduction="sum")


@LOSSES.register()
class DistillationCELoss(_PairLoss):
    """Cross-entropy of model a against model b's softmax (b's output gets no gradient from it).

    `epsilon` smooths that target: (1 - epsilon) * softmax(b) + epsilon / C. (PaddleClas instead smooths b's raw
    logits when epsilon is set, which is not a distribution; none of its configs sets it.)
    """

    def __init__(self, model_name_pairs: Sequence = (), epsilon: Optional[float] = None, key: Optional[str] = None,
                 name: str = "loss_ce"):
        super().__init__("DistillationCELoss", model_name_pairs, key, pairs=True)
        self.model_name_pairs = [list(p) for p in model_name_pairs]
        self.ce = CELoss(epsilon=epsilon)  # soft targets, smoothed when epsilon is set
        self.name = name

    def forward(self, predicts: Any, labels: Any = None) -> dict:
        """{"CELoss_<a>_<b>": loss} for each pair."""
        losses = {}
        for a, b in self.model_name_pairs:
            student, teacher = self.output(predicts, a), self.output(predicts, b)
            losses[f"CELoss_{a}_{b}"] = self.ce(student, F.softmax(teacher.detach(), axis=-1))
        return losses


@LOSSES.register()
class DistillationGTCELoss(_PairLoss):
    """CELoss (label smoothing `epsilon`, mixup/cutmix soft targets) of each named sub-model on the labels."""

    def __init__(self, model_names: Sequence = (), epsilon: Optional[float] = None, key: Optional[str] = None,
                 name: str = "loss_gt_ce"):
        super().__init__("DistillationGTCELoss", model_names, key, pairs=False)
        self.model_names = list(model_names)
        self.ce = CELoss(epsilon=epsilon)
        self.name = name

    def forward(self, predicts: Any, labels: paddle.Tensor) -> dict:
        """{"CELoss_<model>": loss} for each model."""
        return {f"CELoss_{m}": self.ce(self.output(predicts, m), labels) for m in self.model_names}


@LOSSES.register()
class DistillationDMLLoss(_PairLoss):
    """Deep mutual learning: per class, (KL(p || q) + KL(q || p)) / 2 * C with p, q = act(a), act(b) ("softmax",
    "sigmoid" or null); averaged over all elements, or summed over classes then averaged with
    `sum_across_class_dim`. Both models get gradients."""

    EPS = 1e-12

    def __init__(self, model_name_pairs: Sequence = (), act: Optional[str] = "softmax", weight_ratio: bool = False,
                 sum_across_class_dim: bool = False, key: Optional[str] = None, name: str = "loss_dml"):
        super().__init__("DistillationDMLLoss", model_name_pairs, key, pairs=True)
        if act not in ("softmax", "sigmoid", None):
            raise ValueError(f"DistillationDMLLoss.act must be softmax, sigmoid or null, got {act!r}")
        if weight_ratio:
            raise ValueError("DistillationDMLLoss.weight_ratio weights multi-label classes by their label ratio; "
                             "ppcls_lite trains single-label classifiers: remove weight_ratio")
        self.model_name_pairs = [list(p) for p in model_name_pairs]
        self.act = act
        self.sum_across_class_dim = bool(sum_across_class_dim)
        self.name = name

    def _activate(self, x):
        if self.act == "softmax":
            return F.softmax(x, axis=-1)
        return F.sigmoid(x) if self.act == "sigmoid" else x

    def _directed(self, x, target):
        return target * paddle.log((target + self.EPS) / (x + self.EPS)) * x.shape[-1]

    def forward(self, predicts: Any, labels: Any = None) -> dict:
        """{"DMLLoss_<a>_<b>_<index>": loss} for each pair."""
        losses = {}
        for index, (a, b) in enumerate(self.model_name_pairs):
            p, q = self._activate(self.output(predicts, a)), self._activate(self.output(predicts, b))
            loss = (self._directed(p, q) + self._directed(q, p)) / 2
            losses[f"DMLLoss_{a}_{b}_{index}"] = loss.sum(axis=1).mean() if self.sum_across_class_dim else loss.mean()
        return losses


@LOSSES.register()
class DistillationKLDivLoss(_PairLoss):
    """Hinton's soft-target loss: KL(softmax(b / T) || softmax(a / T)) summed, * T^2, / batch size."""

    def __init__(self, model_name_pairs: Sequence = (), temperature: float = 4, key: Optional[str] = None,
                 name: str = "loss_kl"):
        super().__init__("DistillationKLDivLoss", model_name_pairs, key, pairs=True)
        if not float(temperature) > 0:
            raise ValueError(f"DistillationKLDivLoss.temperature must be > 0, got {temperature}")
        self.model_name_pairs = [list(p) for p in model_name_pairs]
        self.temperature = float(temperature)
        self.name = name

    def forward(self, predicts: Any, labels: Any = None) -> dict:
        """{"loss_kldiv_<a>_<b>": loss} for each pair."""
        t = self.temperature
        losses = {}
        for a, b in self.model_name_pairs:
            student, teacher = self.output(predicts, a), self.output(predicts, b)
            kl = _kl_sum(F.log_softmax(student / t, axis=1), F.softmax(teacher / t, axis=1))
            losses[f"loss_kldiv_{a}_{b}"] = kl * t ** 2 / student.shape[0]
        return losses


@LOSSES.register()
class DistillationDKDLoss(_PairLoss):
    """Decoupled knowledge distillation (Zhao et al. 2022): alpha * TCKD + beta * NCKD at temperature T.

    TCKD: KL between the two-way (true class, all others) distributions of teacher and student; NCKD: KL between
    their distributions over the non-target classes. The true class is the label, or the teacher's top class
    with `use_target_as_gt` (or when no labels are given).
    """

    def __init__(self, model_name_pairs: Sequence = (), key: Optional[str] = None, temperature: float = 1.0,
                 alpha: float = 1.0, beta: float = 1.0, use_target_as_gt: bool = False, name: str = "loss_dkd"):
        super().__init__("DistillationDKDLoss", model_name_pairs, key, pairs=True)
        if not float(temperature) > 0:
            raise ValueError(f"DistillationDKDLoss.temperature must be > 0, got {temperature}")
        self.model_name_pairs = [list(p) for p in model_name_pairs]
        self.temperature, self.alpha, self.beta = float(temperature), float(alpha), float(beta)
        self.use_target_as_gt = bool(use_target_as_gt)
        self.name = name

    def _true_class(self, teacher, labels):
        if labels is None or self.use_target_as_gt:
            return teacher.argmax(axis=-1)
        if is_soft_target(labels, teacher.shape[-1]):
            raise ValueError("DistillationDKDLoss needs class-id labels, but the batch has soft targets "
                             "(mixup/cutmix): set use_target_as_gt: True or remove the batch_transform_ops")
        return labels.reshape([-1]).astype("int64")

    def forward(self, predicts: Any, labels: Optional[paddle.Tensor] = None) -> dict:
        """{"<name>_<a>_<b>": loss} for each pair."""
        t = self.temperature
        losses = {}
        for a, b in self.model_name_pairs:
            student, teacher = self.output(predicts, a), self.output(predicts, b)
            gt = F.one_hot(self._true_class(teacher, labels), student.shape[-1]).astype(student.dtype)
            p_s, p_t = F.softmax(student / t, axis=1), F.softmax(teacher / t, axis=1)
            two_way_s = paddle.concat([(p_s * gt).sum(1, keepdim=True), (p_s * (1 - gt)).sum(1, keepdim=True)], 1)
            two_way_t = paddle.concat([(p_t * gt).sum(1, keepdim=True), (p_t * (1 - gt)).sum(1, keepdim=True)], 1)
            tckd = _kl_sum(paddle.log(two_way_s), two_way_t)
            # The true class pushed out of both softmaxes by a large negative offset, as PaddleClas does.
            nckd = _kl_sum(F.log_softmax(student / t - 1000.0 * gt, axis=1), F.softmax(teacher / t - 1000.0 * gt, axis=1))
            losses[f"{self.name}_{a}_{b}"] = (self.alpha * tckd + self.beta * nckd) * t ** 2 / student.shape[0]
        return losses
