"""Eval reports (tools/eval.py --report): eval_report/ with report.csv + report.txt (per-class precision,
recall, F1, support and macro/weighted averages), confusion_matrix.csv and confusion_matrix.png."""
import csv
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ppcls_lite.metric import ConfusionMatrix
from ppcls_lite.pipeline import read_class_id_map, resolve_class_id_map_file
from ppcls_lite.utils import logger
from ppcls_lite.utils.plot import plt, save_figure


def write_eval_report(matrix: np.ndarray, label_names: Sequence[str], out_dir: str) -> str:
    """Write every eval_report/ file for a confusion matrix (rows = true, cols = predicted); returns out_dir."""
    report = write_classification_report(matrix, label_names, out_dir)
    np.savetxt(os.path.join(out_dir, "confusion_matrix.csv"), matrix, fmt="%d", delimiter=",")
    plot_confusion_matrix(matrix, label_names, os.path.join(out_dir, "confusion_matrix.png"))
    logger.info("per-class report:\n" + report["txt"].read_text())
    logger.info(f"eval report written to {out_dir}")
    return out_dir


def class_names(dataset: Any, class_num: int, label_map_file: Optional[str]) -> List[str]:
    """Class names for reports: the Eval dataset's, else Infer.PostProcess.class_id_map_file's, else ids."""
    names = getattr(dataset, "label_names", None)
    if names and len(names) == class_num:
        return list(names)
    try:
        path = resolve_class_id_map_file(label_map_file)
        mapping = read_class_id_map(path) if path else {}
    except (OSError, ValueError):
        mapping = {}
    if mapping and all(i in mapping for i in range(class_num)):
        return [mapping[i] for i in range(class_num)]
    return [str(i) for i in range(class_num)]


def _check_matrix(matrix, label_names):
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"confusion matrix must be square [C, C] (rows = true, cols = predicted), got {matrix.shape}")
    if label_names is None:
        label_names = [str(i) for i in range(matrix.shape[0])]
    label_names = [str(n) for n in label_names]
    if len(label_names) != matrix.shape[0]:
        raise ValueError(
            f"{len(label_names)} label names for a {matrix.shape[0]}-class confusion matrix; "
            "check the label list file (one `id name` line per class)"
        )
    return matrix, label_names


def plot_confusion_matrix(matrix: np.ndarray, label_names: Optional[Sequence[str]], png_path: str,
                          normalize: bool = True, title: str = "Confusion matrix") -> Path:
    """Draw a confusion matrix (rows = true, columns = predicted) as a PNG.

    With normalize=True colours and cell text are row percentages (recall per class) and the count is shown
    below; otherwise raw counts. Returns the PNG path.
    """
    matrix, label_names = _check_matrix(matrix, label_names)
    counts = matrix.astype(np.float64)
    n = counts.shape[0]
    row_sums = counts.sum(axis=1, keepdims=True)
    percent = np.divide(counts, row_sums, out=np.zeros_like(counts), where=row_sums > 0) * 100.0
    shown = percent if normalize else counts

    # Grow the figure with the class count so cell text stays legible; long names get rotated ticks.
    side = min(max(5.0, 0.75 * n + 3.0), 30.0)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=100.0 if normalize else max(shown.max(), 1.0))
    colorbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    colorbar.set_label("% of true class" if normalize else "count")

    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(label_names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticklabels(label_names)
    ax.set_xlabel("predicted", fontsize=12)
    ax.set_ylabel("true", fontsize=12)
    ax.set_title(f"{title} ({'row-normalised %' if normalize else 'counts'}, {int(counts.sum())} samples)")

    if n <= 30:  # beyond that the text would not fit in the cells
        font = 9 if n <= 12 else 6
        threshold = (100.0 if normalize else shown.max()) / 2.0
        for i in range(n):
            for j in range(n):
                text = f"{percent[i, j]:.0f}%\n({int(counts[i, j])})" if normalize else f"{int(counts[i, j])}"
                colour = "white" if shown[i, j] > threshold else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=font, color=colour)
    return save_figure(fig, png_path)


def per_class_report(matrix: np.ndarray, label_names: Optional[Sequence[str]] = None) -> Tuple[list, list]:
    """Per-class rows and averages from a confusion matrix (rows = true, cols = predicted).

    Returns (rows, averages): rows is one dict per class (name, precision, recall, f1, support); averages
    holds "macro avg" and "weighted avg" dicts. The per-class numbers and the macro average come from
    `ppcls_lite.metric.ConfusionMatrix.per_class_report` (one implementation for eval and reports): a class
    never predicted has precision 0, never present recall 0, and the macro average is over the classes that
    occur in the labels or the predictions. The weighted average weights each class by its support.
    """
    matrix, label_names = _check_matrix(matrix, label_names)
    confusion = ConfusionMatrix(matrix.shape[0])
    confusion.matrix = matrix.astype(np.int64)
    report = confusion.per_class_report(label_names)
    rows, macro = report[:-1], report[-1]  # the last row is the macro average

    support = np.array([r["support"] for r in rows], dtype=np.float64)
    weighted = {"name": "weighted avg", "support": int(support.sum())}
    for key in ("precision", "recall", "f1"):
        values = np.array([r[key] for r in rows], dtype=np.float64)
        weighted[key] = float((values * support).sum() / support.sum()) if support.sum() > 0 else 0.0
    return rows, [macro, weighted]


def write_classification_report(matrix: np.ndarray, label_names: Optional[Sequence[str]], out_dir: str) -> Dict[str, Any]:
    """Write report.csv and report.txt (per-class precision/recall/F1/support + macro/weighted avg).

    Returns {"csv": path, "txt": path, "rows": per-class dicts, "accuracy": float, "averages": [...]}.
    """
    matrix, label_names = _check_matrix(matrix, label_names)
    rows, averages = per_class_report(matrix, label_names)
    total = matrix.sum()
    accuracy = float(np.trace(matrix) / total) if total > 0 else 0.0

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "report.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["class", "precision", "recall", "f1", "support"])
        for r in rows + averages:
            writer.writerow([r["name"], *(f"{r[k]:.6f}" for k in ("precision", "recall", "f1")), r["support"]])

    width = max([len(n) for n in label_names] + [len("weighted avg"), len("accuracy")])

    def line(r):
        return (f"{r['name']:<{width}}  {r['precision']:>9.4f}  {r['recall']:>9.4f}  {r['f1']:>9.4f}  "
                f"{r['support']:>7d}")

    lines = [f"{'':<{width}}  {'precision':>9}  {'recall':>9}  {'f1':>9}  {'support':>7}", ""]
    lines += [line(r) for r in rows]
    lines.append("")
    lines.append(f"{'accuracy':<{width}}  {'':>9}  {'':>9}  {accuracy:>9.4f}  {int(total):>7d}")  # f1 column
    lines += [line(r) for r in averages]
    txt_path = out_dir / "report.txt"
    txt_path.write_text("\n".join(lines) + "\n")
    return {"csv": csv_path, "txt": txt_path, "rows": rows, "accuracy": accuracy, "averages": averages}
