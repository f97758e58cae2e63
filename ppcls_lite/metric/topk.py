"""Top-k accuracy and the MetricSet that the engine drives."""

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ppcls_lite.arch.outputs import logits_of
from ppcls_lite.utils.config_rules import COUNT, check_each, warn
from ppcls_lite.utils.registry import Registry, parse_named_list

from ._arrays import label_ids, to_numpy


# Metrics a `Metric.Train` / `Metric.Eval` list may name (the engine passes class_num).
METRICS = Registry("metric")


@METRICS.register()
class TopkAcc:
    """Fraction of samples whose label is among the k highest logits, for each k in `topk`.

    The results keep the names the config asked for: with topk [1, 5] on 4 classes they are top1 and top5 (always
    1.0, with one warning), as in PaddleClas, so logs, metrics.csv columns and scripts that read them stay the
    same whatever the class count. Keeps integer counts so the epoch value is exact whatever the batch sizes.
    """

    # What picks the best model when this metric comes first in Metric.Eval (see MetricSet.primary).
    higher_is_better = True

    @property
    def primary_key(self) -> str:
        """The result that ranks models: the smallest k (`top1`)."""
        return self.keys[0]

    def __init__(self, topk=(1, 5), class_num=None):
        ks = [topk] if isinstance(topk, int) else list(topk)
        if not ks or any(int(k) < 1 for k in ks):
            raise ValueError(f"TopkAcc.topk must be positive integers, got {topk!r} (Metric.*.TopkAcc.topk)")
        ks = [int(k) for k in ks]
        too_large = [k for k in ks if class_num is not None and k > int(class_num)]
        if too_large:
            warn(f"TopkAcc: the model has {class_num} classes, fewer than k = {too_large}, so top{too_large[0]} "
                 f"is always 1.0 (the name is kept, as in PaddleClas)")
        self.topk = sorted(set(ks))
        self.keys = [f"top{k}" for k in self.topk]
        self.reset()

    def reset(self) -> None:
        """Zero the counts."""
        self.correct = np.zeros(len(self.topk), dtype=np.int64)
        self.count = np.zeros(1, dtype=np.int64)

    def batch_counts(self, logits: Any, labels: Any) -> Tuple[np.ndarray, int]:
        """Hits for each k and the sample count of one batch, without adding them to the totals."""
        logits = to_numpy(self.select(logits))
        if logits.ndim != 2:
            raise ValueError(f"TopkAcc expects logits [N, C], got shape {logits.shape}")
        labels = label_ids(labels)
        if labels.shape[0] != logits.shape[0]:
            raise ValueError(f"TopkAcc: {logits.shape[0]} logits rows but {labels.shape[0]} labels")
        kmax = min(self.topk[-1], logits.shape[1])
        # Stable sort on -logits: on ties the lower class id ranks first (deterministic).
        ranked = np.argsort(-logits, axis=1, kind="stable")[:, :kmax]
        hit = ranked == labels[:, None]
        correct = np.array([hit[:, :k].any(axis=1).sum() for k in self.topk], dtype=np.int64)
        return correct, labels.shape[0]

    def select(self, outputs: Any) -> Any:
        """The logits this metric scores in a model output (see `logits_of`)."""
        return logits_of(outputs)

    def update(self, logits: Any, labels: Any) -> Dict[str, float]:
        """Add one batch to the totals and return its own accuracies."""
        correct, n = self.batch_counts(logits, labels)
        self.correct += correct
        self.count += n
        return self._result(correct, n)

    def _result(self, correct, n):
        return {key: (float(c) / n if n else 0.0) for key, c in zip(self.keys, correct)}

    def accumulate(self) -> Dict[str, float]:
        """Accuracies over everything counted since the last reset."""
        return self._result(self.correct, int(self.count[0]))

    def state(self) -> Dict[str, np.ndarray]:
        """A copy of the counts: {"correct": int64 [len(topk)], "count": int64 [1]}."""
        return {"correct": self.correct.copy(), "count": self.count.copy()}

    def set_state(self, state: Dict[str, Any]) -> None:
        """Replace the counts with those of `state`."""
        self.correct = np.asarray(state["correct"], dtype=np.int64).reshape(len(self.topk)).copy()
        self.count = np.asarray(state["count"], dtype=np.int64).reshape(1).copy()

    def result_from_state(self, state: Dict[str, Any]) -> Dict[str, float]:
        """Accuracies from the counts in `state`, leaving this metric's own counts alone."""
        correct = np.asarray(state["correct"], dtype=np.int64).reshape(-1)
        return self._result(correct, int(np.asarray(state["count"]).reshape(-1)[0]))


@METRICS.register()
class DistillationTopkAcc(TopkAcc):
    """TopkAcc of one sub-model of a DistillationModel: `model_key` names it, `feature_key` picks one entry of its
    dict output (return_patterns), else its logits. A plain tensor (one model's logits) is scored as it is."""

    def __init__(self, model_key, feature_key=None, topk=(1, 5), class_num=None):
        super().__init__(topk=topk, class_num=class_num)
        self.model_key, self.feature_key = model_key, feature_key

    def select(self, outputs: Any) -> Any:
        """The `model_key` sub-model's logits (its `feature_key` entry when given)."""
        if isinstance(outputs, dict) and "logits" not in outputs:  # {sub-model name: output}
            if self.model_key not in outputs:
                raise KeyError(f"DistillationTopkAcc.model_key {self.model_key!r} is not a sub-model; the model "
                               f"outputs {list(outputs)}")
            outputs = outputs[self.model_key]
        if self.feature_key is not None:
            if not isinstance(outputs, dict) or self.feature_key not in outputs:
                raise KeyError(f"DistillationTopkAcc.feature_key {self.feature_key!r} is not an output of "
                               f"{self.model_key}; give it return_patterns including it, or drop feature_key")
            return outputs[self.feature_key]
        return logits_of(outputs)


# Older PaddleClas names still found in its configs (e.g. its CIFAR100 fine-tune): name -> (metric, {old key: key}).
METRIC_ALIASES = {"Topk": ("TopkAcc", {"k": "topk"})}


class MetricSet:
    """The metrics of one Metric.Train / Metric.Eval list, driven together."""

    def __init__(self, metrics):
        self.metrics = list(metrics)

    def reset(self) -> None:
        """Zero the counts of every metric."""
        for m in self.metrics:
            m.reset()

    def update(self, logits: Any, labels: Any) -> Dict[str, float]:
        """Add one batch to every metric and return the batch values; `logits` is the model output as given
        (each metric picks what it scores, e.g. DistillationTopkAcc one sub-model)."""
        out = {}
        for m in self.metrics:
            out.update(m.update(logits, labels))
        return out

    def update_ranked(self, ranked: Any) -> None:
        """Add one block of gallery rankings (bool [queries, gallery], True = same identity) to every retrieval
        metric (metric/retrieval.py)."""
        for m in self.metrics:
            m.update_ranked(ranked)

    @property
    def retrieval(self) -> bool:
        """True when the metrics score gallery rankings (Global.eval_mode: retrieval)."""
        return bool(self.metrics) and all(getattr(m, "retrieval", False) for m in self.metrics)

    def accumulate(self) -> Dict[str, float]:
        """Every metric's value since the last reset."""
        out = {}
        for m in self.metrics:
            out.update(m.accumulate())
        return out

    def state(self) -> Dict[str, np.ndarray]:
        """Counts as numpy int64 arrays to be summed over ranks: {"correct": [len(topk)], "count": [1]}."""
        out = {}
        for m in self.metrics:
            out.update(m.state())
        return out

    def set_state(self, state: Dict[str, Any]) -> None:
        """Give every metric its counts from `state`."""
        for m in self.metrics:
            m.set_state(state)

    def result_from_state(self, state: Dict[str, Any]) -> Dict[str, float]:
        """Epoch values from a (summed over ranks) state, without touching this set's own counts."""
        out = {}
        for m in self.metrics:
            out.update(m.result_from_state(state))
        return out

    @property
    def keys(self) -> List[str]:
        """Result names of all metrics in order, e.g. ["top1", "top5"]."""
        return [k for m in self.metrics for k in m.keys]

    @property
    def primary(self) -> Optional[Tuple[str, bool]]:
        """(result name, higher is better) that picks the best model: the first metric's primary result (as
        PaddleClas ranks by its first Eval metric); None without metrics."""
        if not self.metrics:
            return None
        first = self.metrics[0]
        return getattr(first, "primary_key", first.keys[0]), bool(getattr(first, "higher_is_better", True))


def check_metric_item(problems: list, name: str, params: dict, where: str) -> None:
    """Append a message when the `topk` of one Metric list item is not a whole number >= 1."""
    key = "k" if "k" in params and "topk" not in params else "topk"  # `k`: the older Topk spelling
    check_each(problems, params.get(key), COUNT, f"{where}.{key}")


def build_metrics(metric_section: Optional[list], class_num: Optional[int] = None, where: str = "Metric") -> "MetricSet":
    """`metric_section` is a list like [{"TopkAcc": {"topk": [1, 5]}}]; None or [] -> empty MetricSet."""
    metrics = []
    seen = set()
    for i, name, params in parse_named_list(metric_section or [], where):
        if name in METRIC_ALIASES:
            new_name, renamed = METRIC_ALIASES[name]
            params = {renamed.get(k, k): v for k, v in params.items()}
            warn(f"{where}: '{name}' is an older PaddleClas name; read as {new_name} "
                 f"({', '.join(f'{old} -> {new}' for old, new in renamed.items())}).")
            name = new_name
        METRICS.canonical(name, f"{where}.{i}")
        if name in seen:  # their count arrays would share names in state()
            raise ValueError(f"{where}: metric '{name}' is listed twice; list it once (e.g. TopkAcc: {{topk: [1, 5]}})")
        seen.add(name)
        metrics.append(METRICS.build(name, params, f"{where}.{i}.{name}", class_num=class_num))
    return MetricSet(metrics)
