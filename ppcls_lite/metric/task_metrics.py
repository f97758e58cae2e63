"""Metrics of the practical tasks, with PaddleClas's names and formulas:

    TprAtFpr         binary detectors: the best recall (TPR) whose false-positive rate stays <= max_fpr, and the
                     class-1 probability threshold that reaches it (copy it into ThreshOutput.threshold)
    HammingDistance  multi-label: the fraction of wrong 0/1 decisions (lower is better)
    AccuracyScore    multi-label: the fraction of right 0/1 decisions (base: label), or of images with every
                     label right (base: sample)
    ATTRMetric       attributes (PA100k / VeRi): mA and the label- and instance-based F1, precision, recall

Every state is a set of sums (histograms, counts), so the values over several ranks are exact after an
all-reduce, as for TopkAcc. Multi-label labels are 0/1 [N, C] (or [N, 2, C] with label_ratio: row 0 is used).
"""
from typing import Any, Dict, Tuple

import numpy as np

from ppcls_lite.arch.outputs import logits_of

from ._arrays import label_ids, to_numpy
from .topk import METRICS

# TprAtFpr tries the thresholds 0, 1/BINS, ..., (BINS-1)/BINS, as PaddleClas does.
BINS = 10000
_THRESHOLDS = (np.arange(BINS) / BINS).astype(np.float32)


def softmax_np(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64."""
    logits = np.asarray(logits, dtype=np.float64)
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def sigmoid_np(logits: np.ndarray) -> np.ndarray:
    """Element-wise sigmoid in float32 (the precision of the model's scores)."""
    return (0.5 * (1.0 + np.tanh(0.5 * np.asarray(logits, dtype=np.float32)))).astype(np.float32)


def multilabel_targets(labels: Any) -> np.ndarray:
    """0/1 labels [N, C] (row 0 of MultiLabelDataset's [N, 2, C] label_ratio form)."""
    labels = to_numpy(labels)
    return (labels[:, 0, :] if labels.ndim == 3 else labels).astype(np.int64)


class ScoreHistogram:
    """How many positive / negative images have their class-1 probability above each of BINS thresholds, kept as
    two histograms over `np.searchsorted(thresholds, score)` (the number of thresholds below the score)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """Zero the histograms."""
        self.positive = np.zeros(BINS + 1, dtype=np.int64)
        self.negative = np.zeros(BINS + 1, dtype=np.int64)

    def update(self, logits: Any, labels: Any) -> None:
        """Add a batch: softmax of 2-class logits [N, 2], labels 0/1."""
        logits = to_numpy(logits_of(logits))
        if logits.ndim != 2 or logits.shape[1] != 2:
            raise ValueError(f"TprAtFpr and the ROC curve are for binary models (2 outputs), got logits of shape "
                             f"{list(logits.shape)}; remove TprAtFpr from Metric.Eval or set Arch.class_num: 2")
        scores = softmax_np(logits)[:, 1].astype(np.float32)
        bins = np.searchsorted(_THRESHOLDS, scores, side="left")  # thresholds strictly below each score
        positive = label_ids(labels) != 0
        self.positive += np.bincount(bins[positive], minlength=BINS + 1)
        self.negative += np.bincount(bins[~positive], minlength=BINS + 1)

    def rates(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(thresholds, tpr, fpr, precision) for every threshold t: images with score > t count as predicted 1."""
        above_pos = self.positive[::-1].cumsum()[::-1][1:]  # [i]: positives with more than i thresholds below
        above_neg = self.negative[::-1].cumsum()[::-1][1:]
        n_pos, n_neg = max(int(self.positive.sum()), 0), max(int(self.negative.sum()), 0)
        tpr = above_pos / n_pos if n_pos else np.zeros(BINS)
        fpr = above_neg / n_neg if n_neg else np.zeros(BINS)
        predicted = above_pos + above_neg
        precision = np.divide(above_pos, predicted, out=np.ones(BINS), where=predicted > 0)
        return np.arange(BINS) / BINS, tpr, fpr, precision

    def state(self) -> Dict[str, np.ndarray]:
        """The two histograms (int64 [BINS + 1])."""
        return {"positive": self.positive.copy(), "negative": self.negative.copy()}

    def set_state(self, state: Dict[str, Any]) -> None:
        """Replace the histograms."""
        self.positive = np.asarray(state["positive"], dtype=np.int64).copy()
        self.negative = np.asarray(state["negative"], dtype=np.int64).copy()


@METRICS.register()
class TprAtFpr(ScoreHistogram):
    """Binary detectors (PaddleClas's TprAtFpr): over the thresholds 0, 0.0001, ..., 0.9999 of the class-1
    probability, the highest TPR whose FPR is <= `max_fpr`; reports `tpr`, its `fpr` and the `threshold`
    (the first that reaches it). No threshold qualifies (e.g. no positives): tpr 0 at threshold 1."""

    higher_is_better = True
    primary_key = "tpr"
    keys = ["tpr", "fpr", "threshold"]

    def __init__(self, max_fpr: float = 1 / 1000.0, class_num: Any = None):
        if not 0.0 <= float(max_fpr) <= 1.0:
            raise ValueError(f"TprAtFpr.max_fpr must be in [0, 1], got {max_fpr!r} (Metric.Eval.TprAtFpr.max_fpr)")
        self.max_fpr = float(max_fpr)
        super().__init__()

    def update(self, logits: Any, labels: Any) -> Dict[str, float]:
        """Add one batch; no per-batch value (the rates need the whole set)."""
        super().update(logits, labels)
        return {}

    def result_from_state(self, state: Dict[str, Any]) -> Dict[str, float]:
        """The best TPR within max_fpr, its FPR and threshold, from histograms `state`."""
        counts = ScoreHistogram()
        counts.set_state(state)
        thresholds, tpr, fpr, _ = counts.rates()
        ok = np.flatnonzero((fpr <= self.max_fpr + 1e-12) & (tpr > 0))
        if not len(ok):
            return {"tpr": 0.0, "fpr": 0.0, "threshold": 1.0}
        best = ok[np.argmax(tpr[ok])]  # argmax: the first (lowest) threshold of the best TPR
        return {"tpr": float(tpr[best]), "fpr": float(fpr[best]), "threshold": float(thresholds[best])}

    def accumulate(self) -> Dict[str, float]:
        """The values over everything counted since the last reset."""
        return self.result_from_state(self.state())


class _MultiLabelCounts:
    """Base of HammingDistance / AccuracyScore: sigmoid(logits) > threshold vs the 0/1 labels."""

    higher_is_better = True

    def __init__(self, class_num: Any = None, threshold: float = 0.5):
        self.threshold = float(threshold)
        self.reset()

    @property
    def primary_key(self) -> str:
        """The one result."""
        return self.keys[0]

    def reset(self) -> None:
        """Zero the counts."""
        self.counts = np.zeros(4, dtype=np.int64)  # right decisions, all-right images, images, decisions

    def batch_counts(self, logits: Any, labels: Any) -> np.ndarray:
        """[right 0/1 decisions, images with every decision right, images, decisions] of one batch."""
        preds = sigmoid_np(to_numpy(logits_of(logits))) > self.threshold
        target = multilabel_targets(labels) == 1
        if preds.shape != target.shape:
            raise ValueError(f"{type(self).__name__}: logits {list(preds.shape)} and labels {list(target.shape)} "
                             f"differ; multi-label labels are 0/1 per class (MultiLabelDataset)")
        right = preds == target
        return np.array([right.sum(), right.all(axis=1).sum(), len(right), right.size], dtype=np.int64)

    def update(self, logits: Any, labels: Any) -> Dict[str, float]:
        """Add one batch to the totals and return its own value."""
        counts = self.batch_counts(logits, labels)
        self.counts += counts
        return self._result(counts)

    def accumulate(self) -> Dict[str, float]:
        """The value over everything counted since the last reset."""
        return self._result(self.counts)

    def state(self) -> Dict[str, np.ndarray]:
        """The counts (int64 [4]), summed over ranks."""
        return {"counts": self.counts.copy()}

    def set_state(self, state: Dict[str, Any]) -> None:
        """Replace the counts."""
        self.counts = np.asarray(state["counts"], dtype=np.int64).copy()

    def result_from_state(self, state: Dict[str, Any]) -> Dict[str, float]:
        """The value from summed counts."""
        return self._result(np.asarray(state["counts"], dtype=np.int64))


@METRICS.register()
class HammingDistance(_MultiLabelCounts):
    """The fraction of wrong 0/1 label decisions over all images and classes (sigmoid > 0.5); lower is better."""

    higher_is_better = False
    keys = ["HammingDistance"]

    def _result(self, counts: np.ndarray) -> Dict[str, float]:
        return {"HammingDistance": 1.0 - float(counts[0]) / int(counts[3]) if counts[3] else 0.0}


@METRICS.register()
class AccuracyScore(_MultiLabelCounts):
    """base `label` (PaddleClas's default): the fraction of right 0/1 decisions; base `sample`: the fraction of
    images whose labels are all right."""

    keys = ["AccuracyScore"]

    def __init__(self, base: str = "label", class_num: Any = None):
        if base not in ("label", "sample"):
            raise ValueError(f"AccuracyScore.base must be 'label' or 'sample', got {base!r}")
        self.base = base
        super().__init__(class_num)

    def _result(self, counts: np.ndarray) -> Dict[str, float]:
        images = int(counts[2])
        if not images:
            return {"AccuracyScore": 0.0}
        if self.base == "sample":
            return {"AccuracyScore": float(counts[1]) / images}
        return {"AccuracyScore": float(counts[0]) / int(counts[3])}


ATTR_KEYS = ["ma", "label_f1", "label_pos_recall", "label_neg_recall", "instance_f1", "instance_acc",
             "instance_prec", "instance_recall"]
_EPS = 1e-20


@METRICS.register()
class ATTRMetric:
    """Pedestrian / vehicle attributes (PaddleClas's ATTRMetric): a label is predicted when its sigmoid score is
    > `threshold`. Label-based: per attribute the positive recall, negative recall and mA (their mean, averaged
    over attributes: `ma`, the main result), `label_f1` as PaddleClas computes it (each attribute's precision
    with the mean positive recall); instance-based: per image accuracy (|pred & true| / |pred | true|),
    precision, recall, averaged, and F1 from the averages. `per_label()` gives each attribute's own F1."""

    higher_is_better = True
    primary_key = "ma"
    keys = ATTR_KEYS

    def __init__(self, threshold: float = 0.5, class_num: Any = None):
        self.threshold = float(threshold)
        self.reset()

    def reset(self) -> None:
        """Zero the sums."""
        self.label_counts = None   # int64 [4, C]: true pos, true neg, false pos, false neg per attribute
        self.instance_sums = np.zeros(4, dtype=np.float64)  # sums of accuracy, precision, recall; images

    def batch_state(self, logits: Any, labels: Any) -> Dict[str, np.ndarray]:
        """The sums of one batch."""
        pred = sigmoid_np(to_numpy(logits_of(logits))) > self.threshold
        true = multilabel_targets(labels) == 1
        counts = np.stack([(true & pred).sum(0), (~true & ~pred).sum(0), (~true & pred).sum(0),
                           (true & ~pred).sum(0)]).astype(np.int64)
        intersect, union = (true & pred).sum(1), (true | pred).sum(1)
        instance = np.array([(intersect / (union + _EPS)).sum(), (intersect / (pred.sum(1) + _EPS)).sum(),
                             (intersect / (true.sum(1) + _EPS)).sum(), len(true)], dtype=np.float64)
        return {"label_counts": counts, "instance_sums": instance}

    def update(self, logits: Any, labels: Any) -> Dict[str, float]:
        """Add one batch; returns its own values."""
        batch = self.batch_state(logits, labels)
        self.label_counts = batch["label_counts"] if self.label_counts is None else self.label_counts + \
            batch["label_counts"]
        self.instance_sums += batch["instance_sums"]
        return self.result_from_state(batch)

    def state(self) -> Dict[str, np.ndarray]:
        """The sums (all-reduced over ranks)."""
        counts = self.label_counts if self.label_counts is not None else np.zeros((4, 1), np.int64)
        return {"label_counts": counts.copy(), "instance_sums": self.instance_sums.copy()}

    def set_state(self, state: Dict[str, Any]) -> None:
        """Replace the sums."""
        self.label_counts = np.asarray(state["label_counts"], dtype=np.int64).copy()
        self.instance_sums = np.asarray(state["instance_sums"], dtype=np.float64).copy()

    def accumulate(self) -> Dict[str, float]:
        """The values over everything since the last reset."""
        return self.result_from_state(self.state())

    def per_label(self, state: Dict[str, Any] = None) -> Dict[str, np.ndarray]:
        """Per attribute: precision, pos_recall, neg_recall, ma, f1, support (images with the attribute)."""
        tp, tn, fp, fn = np.asarray((state or self.state())["label_counts"], dtype=np.float64)
        precision = tp / (tp + fp + _EPS)
        pos_recall, neg_recall = tp / (tp + fn + _EPS), tn / (tn + fp + _EPS)
        return {"precision": precision, "pos_recall": pos_recall, "neg_recall": neg_recall,
                "ma": (pos_recall + neg_recall) / 2, "support": (tp + fn).astype(np.int64),
                "f1": 2 * precision * pos_recall / (precision + pos_recall + _EPS)}

    def result_from_state(self, state: Dict[str, Any]) -> Dict[str, float]:
        """The eight values from sums `state`."""
        labels = self.per_label(state)
        acc_sum, prec_sum, recall_sum, images = np.asarray(state["instance_sums"], dtype=np.float64)
        images = max(images, 1.0)
        prec, recall = prec_sum / images, recall_sum / images
        recall_all = labels["pos_recall"].mean()
        # PaddleClas's label_f1 pairs each label's precision with the mean positive recall (kept for comparable logs)
        label_f1 = np.mean(2 * labels["precision"] * recall_all / (labels["precision"] + recall_all + _EPS))
        values = [labels["ma"].mean(), label_f1, recall_all, labels["neg_recall"].mean(),
                  2 * prec * recall / (prec + recall + _EPS), acc_sum / images, prec, recall]
        return {key: float(v) for key, v in zip(ATTR_KEYS, values)}
