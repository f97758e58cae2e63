"""Metrics (pure numpy; paddle Tensors are accepted and converted).

    metrics = build_metrics(config["Metric"]["Eval"], class_num)   # -> MetricSet
    metrics.reset()
    batch = metrics.update(logits, labels)     # {"top1": 0.5, "top5": 0.9} for this batch; also accumulated
    epoch = metrics.accumulate()               # exact over all batches seen since reset()

Across ranks (engine): `state = metrics.state()` gives numpy arrays of counts under each metric's name,
`{"TopkAcc/correct": int64 [len(topk)], "TopkAcc/count": int64 [1]}` for TopkAcc. All-reduce (sum) every array, then
`metrics.result_from_state(summed)` gives the global epoch dict (or `metrics.set_state(summed)` followed by
`metrics.accumulate()`).

`DistillationTopkAcc(model_key, feature_key=None, topk)`: TopkAcc of one sub-model of a DistillationModel's
output dict (PaddleClas's metric names: top1, top5).

Task metrics (metric/task_metrics.py): `TprAtFpr(max_fpr)` (binary: best TPR within an FPR, and its threshold),
`HammingDistance`, `AccuracyScore(base)` (multi-label), `ATTRMetric(threshold)` (attributes: ma, label/instance F1...).

`ConfusionMatrix(class_num)`: `.update(logits_or_pred_ids, labels)`, `.matrix` (int64 [C, C], rows = true
class, cols = predicted), `.per_class_report(label_names)`
(report files and pictures: `ppcls_lite.engine.reports`).
"""
from ppcls_lite.utils.config_rules import ANY, NameCheck, SectionRules

from .confusion import ConfusionMatrix
from .task_metrics import ATTRMetric, AccuracyScore, HammingDistance, ScoreHistogram, TprAtFpr
from .topk import (METRIC_ALIASES, METRICS, DistillationTopkAcc, MetricSet, TopkAcc, build_metrics,
                   check_metric_item, check_metric_values)

__all__ = ["ConfusionMatrix", "DistillationTopkAcc", "METRICS", "MetricSet", "TopkAcc", "build_metrics", "CONFIG_RULES",
           "TprAtFpr", "ScoreHistogram", "HammingDistance", "AccuracyScore", "ATTRMetric"]

# The Metric section's rules for ppcls_lite.config: Metric.Train / Metric.Eval, each a named list of registered
# metrics (PaddleClas's older `Topk` is read as TopkAcc by build_metrics).
CONFIG_RULES = SectionRules(schema=lambda: {"Metric": {"Train": ANY, "Eval": ANY}},
                            names=(NameCheck("Metric.*", METRICS, named_list=True, also_accepted=tuple(METRIC_ALIASES),
                                             check_item=check_metric_item),),
                            check_values=check_metric_values)
