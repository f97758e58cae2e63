"""Confusion matrix and per-class precision / recall / F1."""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ppcls_lite.arch.outputs import logits_of

from ._arrays import label_ids, to_numpy


class ConfusionMatrix:
    """`matrix[t, p]` counts samples of true class t predicted as p (int64 [C, C])."""

    def __init__(self, class_num):
        self.class_num = int(class_num)
        self.reset()

    def reset(self) -> None:
        """Zero all counts."""
        self.matrix = np.zeros((self.class_num, self.class_num), dtype=np.int64)

    def update(self, logits_or_preds: Any, labels: Any) -> None:
        """logits [N, C] (argmax taken) or predicted ids [N]; labels as for TopkAcc (ids or soft targets)."""
        pred = to_numpy(logits_of(logits_or_preds))
        pred = pred.argmax(axis=1) if pred.ndim == 2 else pred.reshape(-1)
        pred = pred.astype(np.int64)
        true = label_ids(labels)
        if pred.shape != true.shape:
            raise ValueError(f"ConfusionMatrix: {pred.shape[0]} predictions but {true.shape[0]} labels")
        bad = (true < 0) | (true >= self.class_num) | (pred < 0) | (pred >= self.class_num)
        if bad.any():
            raise ValueError(f"ConfusionMatrix: class ids must be in [0, {self.class_num}); got labels "
                             f"{np.unique(true[bad]).tolist()} / predictions {np.unique(pred[bad]).tolist()}; "
                             f"check Arch.class_num against the label list")
        np.add.at(self.matrix, (true, pred), 1)

    def per_class_report(self, label_names: Optional[Sequence[str]] = None) -> List[Dict[str, Any]]:
        """One dict per class {name, precision, recall, f1, support}, then a "macro avg" row.

        A class never predicted has precision 0; never present has recall 0. The macro average is over the
        classes that occur in the labels or the predictions (as sklearn does); its support is the total.
        """
        names = list(label_names) if label_names is not None else [str(i) for i in range(self.class_num)]
        if len(names) != self.class_num:
            raise ValueError(f"per_class_report: {len(names)} label names for {self.class_num} classes")
        tp = np.diag(self.matrix).astype(np.float64)
        support = self.matrix.sum(axis=1)
        predicted = self.matrix.sum(axis=0)
        precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
        recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
        denom = precision + recall
        f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
        rows = [
            {"name": names[c], "precision": float(precision[c]), "recall": float(recall[c]),
             "f1": float(f1[c]), "support": int(support[c])}
            for c in range(self.class_num)
        ]
        seen = (support > 0) | (predicted > 0)
        if seen.any():
            macro = {k: float(v[seen].mean()) for k, v in (("precision", precision), ("recall", recall), ("f1", f1))}
        else:
            macro = {"precision": 0.0, "recall": 0.0, "f1": 0.0}
        rows.append({"name": "macro avg", **macro, "support": int(support.sum())})
        return rows

    @property
    def accuracy(self) -> float:
        """Fraction of all counted samples predicted as their true class (0.0 when none)."""
        total = self.matrix.sum()
        return float(np.trace(self.matrix)) / total if total else 0.0
