"""Metrics (pure numpy; paddle Tensors are accepted and converted).

    metrics = build_metrics(config["Metric"]["Eval"], class_num)   # -> MetricSet
    metrics.reset()
    batch = metrics.update(logits, labels)     # {"top1": 0.5, "top5": 0.9} for this batch; also accumulated
    epoch = metrics.accumulate()               # exact over all batches seen since reset()

Across ranks (engine): `state = metrics.state()` gives numpy arrays of counts,
`{"correct": int64 [len(topk)], "count": int64 [1]}` for TopkAcc. All-reduce (sum) every array, then
`metrics.result_from_state(summed)` gives the global epoch dict (or `metrics.set_state(summed)` followed by
`metrics.accumulate()`).

`DistillationTopkAcc(model_key, feature_key=None, topk)`: TopkAcc of one sub-model of a DistillationModel's
output dict (PaddleClas's metric names: top1, top5).

Retrieval metrics (metric/retrieval.py: `Recallk`, `mAP`, `mINP`, `Precisionk`; Global.eval_mode: retrieval) score
gallery rankings instead: `metrics.update_ranked(ranked)` with bool [queries, gallery] (True = same identity, in
rank order); their state is summed over ranks the same way.

`ConfusionMatrix(class_num)`: `.update(logits_or_pred_ids, labels)`, `.matrix` (int64 [C, C], rows = true
class, cols = predicted), `.per_class_report(label_names)`
(report files and pictures: `ppcls_lite.engine.reports`).
"""
from ppcls_lite.utils.config_rules import ANY, NameCheck, SectionRules

from .confusion import ConfusionMatrix
from .retrieval import Precisionk, Recallk, is_retrieval_metric, mAP, mINP
from .topk import (METRIC_ALIASES, METRICS, DistillationTopkAcc, MetricSet, TopkAcc, build_metrics,
                   check_metric_item)

__all__ = ["ConfusionMatrix", "DistillationTopkAcc", "METRICS", "MetricSet", "TopkAcc", "build_metrics", "Recallk",
           "mAP", "mINP", "Precisionk", "CONFIG_RULES"]


def check_metric_modes(config: dict, problems: list) -> None:
    """Retrieval metrics belong in Metric.Eval of a `Global.eval_mode: retrieval` config, and only there."""
    retrieval = (config.get("Global") or {}).get("eval_mode") == "retrieval"
    for mode, items in (config.get("Metric") or {}).items():
        names = [next(iter(item)) if isinstance(item, dict) and item else item for item in items or []]
        wrong = [n for n in names if isinstance(n, str) and is_retrieval_metric(n) != (retrieval and mode == "Eval")]
        if not wrong:
            continue
        if retrieval and mode == "Eval":
            problems.append(f"Metric.Eval lists {', '.join(wrong)} but Global.eval_mode is retrieval: list retrieval "
                            f"metrics (Recallk, mAP, mINP, Precisionk), e.g. [{{Recallk: {{topk: [1, 5]}}}}, {{mAP: {{}}}}]")
        elif mode == "Eval":
            problems.append(f"Metric.Eval lists the retrieval metric(s) {', '.join(wrong)}: set Global.eval_mode: "
                            f"retrieval (a RecModel) or list classification metrics such as TopkAcc")
        else:
            problems.append(f"Metric.{mode} lists the retrieval metric(s) {', '.join(wrong)}: they score query and "
                            f"gallery rankings at eval; list classification metrics (TopkAcc) there")


# The Metric section's rules for ppcls_lite.config: Metric.Train / Metric.Eval, each a named list of registered
# metrics (PaddleClas's older `Topk` is read as TopkAcc by build_metrics); retrieval metrics only with retrieval eval.
CONFIG_RULES = SectionRules(schema=lambda: {"Metric": {"Train": ANY, "Eval": ANY}},
                            names=(NameCheck("Metric.*", METRICS, named_list=True, also_accepted=tuple(METRIC_ALIASES),
                                             check_item=check_metric_item),),
                            check_values=check_metric_modes)
