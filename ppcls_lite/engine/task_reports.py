"""Eval reports of the practical tasks (tools/eval.py --report), next to the confusion matrix of engine/reports.py:

    yes/no models (2 classes)  roc_curve.png, pr_curve.png and curves.csv: TPR, FPR, precision at every threshold
                               of the class-1 probability (0, 0.0001, ..., 0.9999, as TprAtFpr tries them)
    multi-label models         report.csv / report.txt: per label precision, recall, F1, mA, support (sigmoid > 0.5)
"""
import csv
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ppcls_lite.engine.reports import write_eval_report
from ppcls_lite.metric import ATTRMetric, ScoreHistogram
from ppcls_lite.utils import logger
from ppcls_lite.utils.plot import plt, save_figure


def report_collector(class_num: int, multilabel: bool) -> Optional[Any]:
    """What eval --report collects beside the confusion matrix: per-label counts (multi-label), the class-1 score
    histogram (2 classes), or nothing."""
    if multilabel:
        return ATTRMetric()
    return ScoreHistogram() if class_num == 2 else None


def roc_auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Area under the ROC curve through (1, 1), the given points (thresholds rising) and (0, 0)."""
    x = np.concatenate([[1.0], fpr, [0.0]])
    y = np.concatenate([[1.0], tpr, [0.0]])
    return float(np.sum((x[:-1] - x[1:]) * (y[:-1] + y[1:]) / 2))


def write_binary_curves(scores: ScoreHistogram, label_names: Sequence[str], out_dir: str) -> Path:
    """roc_curve.png, pr_curve.png and curves.csv of a yes/no model in `out_dir`; returns the folder."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    thresholds, tpr, fpr, precision = scores.rates()
    positive = label_names[1] if len(label_names) > 1 else "1"
    with open(out_dir / "curves.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["threshold", "tpr", "fpr", "precision"])
        for row in zip(thresholds, tpr, fpr, precision):
            writer.writerow([f"{row[0]:.4f}", *(f"{v:.6f}" for v in row[1:])])
    counts = f"{int(scores.positive.sum())} {positive} / {int(scores.negative.sum())} other"
    auc = roc_auc(fpr, tpr)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot(np.concatenate([[1.0], fpr, [0.0]]), np.concatenate([[1.0], tpr, [0.0]]), color="tab:blue",
            label=f"ROC (AUC {auc:.4f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="false positive rate", ylabel=f"true positive rate (recall of {positive})", xlim=(0, 1),
           ylim=(0, 1.01))
    ax.set_title(f"ROC over class-1 probability thresholds\n{counts}", fontsize=10)
    ax.legend(loc="lower right")
    save_figure(fig, str(out_dir / "roc_curve.png"))
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot(tpr, precision, color="tab:orange")
    ax.set(xlabel=f"recall of {positive}", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01))
    ax.set_title(f"Precision-recall over class-1 probability thresholds\n{counts}", fontsize=10)
    save_figure(fig, str(out_dir / "pr_curve.png"))
    logger.info(f"ROC AUC {auc:.4f}; roc_curve.png, pr_curve.png and curves.csv written to {out_dir}")
    return out_dir


def write_multilabel_report(counts: ATTRMetric, label_names: Sequence[str], out_dir: str) -> str:
    """report.csv and report.txt: per label precision, recall (of positives), F1, mA and support; returns out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_label = counts.per_label()
    width = len(per_label["support"])
    names = [str(n) for n in label_names] if len(label_names) == width else [str(i) for i in range(width)]
    columns = ("precision", "pos_recall", "f1", "ma")
    with open(out_dir / "report.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "precision", "recall", "f1", "ma", "support"])
        for i, name in enumerate(names):
            writer.writerow([name, *(f"{per_label[c][i]:.6f}" for c in columns), int(per_label["support"][i])])
    pad = max(len(n) for n in names + ["label"])
    lines = [f"{'label':<{pad}}  {'precision':>9}  {'recall':>9}  {'f1':>9}  {'mA':>9}  {'support':>7}"]
    lines += [f"{name:<{pad}}  " + "  ".join(f"{per_label[c][i]:>9.4f}" for c in columns)
              + f"  {int(per_label['support'][i]):>7d}" for i, name in enumerate(names)]
    overall = counts.accumulate()
    lines += ["", "  ".join(f"{k}: {v:.4f}" for k, v in overall.items())]
    (out_dir / "report.txt").write_text("\n".join(lines) + "\n")
    logger.info("per-label report:\n" + "\n".join(lines))
    logger.info(f"eval report written to {out_dir}")
    return os.fspath(out_dir)


def write_reports(confusion: Optional[Any], scores: Optional[Any], label_names: Sequence[str], out_dir: str) -> str:
    """Write eval --report's files into `out_dir` and return it: the multi-label table (`scores` an ATTRMetric), or
    the confusion-matrix report plus, for a yes/no model (`scores` a ScoreHistogram), its ROC / PR curves."""
    if isinstance(scores, ATTRMetric):
        return write_multilabel_report(scores, label_names, out_dir)
    report_dir = write_eval_report(confusion.matrix, label_names, out_dir)
    if isinstance(scores, ScoreHistogram):
        write_binary_curves(scores, label_names, out_dir)
    return report_dir
