"""Pictures of a training run: loss/accuracy/lr curves, confusion matrix, per-class report.

Everything renders with matplotlib's Agg backend, so it works on servers without a display.
"""
import csv
import math
from pathlib import Path

import numpy as np

import matplotlib

matplotlib.use("Agg")  # never try to open a window
import matplotlib.pyplot as plt  # noqa: E402


def read_metrics_csv(metrics_csv):
    """Read the engine's metrics.csv into {column: float array}, one value per row (NaN for empty cells).

    Rows come one per epoch; eval columns are empty on epochs without eval.
    """
    path = Path(metrics_csv)
    if not path.is_file():
        raise FileNotFoundError(
            f"metrics file not found: {path} (the engine writes <Global.output_dir>/<Arch.name>/metrics.csv "
            "during `python tools/train.py`)"
        )
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames:
            raise ValueError(f"{path} is empty: it has no header line; re-run training to regenerate it")
        rows = list(reader)
    columns = {}
    for name in reader.fieldnames:
        values = []
        for row in rows:
            cell = (row.get(name) or "").strip()
            try:
                values.append(float(cell))
            except ValueError:  # empty or non-numeric cell: treat as missing
                values.append(math.nan)
        columns[name.strip()] = np.asarray(values, dtype=np.float64)
    return columns


def _plot_series(ax, x, columns, names_and_labels):
    """Draw each present, not-all-missing column; return how many lines were drawn."""
    drawn = 0
    for name, label in names_and_labels:
        y = columns.get(name)
        if y is None or np.all(np.isnan(y)):
            continue
        keep = ~np.isnan(y)  # skip epochs without a value (e.g. no eval that epoch) instead of breaking the line
        ax.plot(x[keep], y[keep], marker="o", markersize=3, label=label)
        drawn += 1
    return drawn


def _save_figure(fig, png_path):
    """Lay out, write as PNG (creating the folder) and free the figure; returns the path."""
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return png_path


def plot_training_curves(metrics_csv, png_path, title=None):
    """Plot loss (train/eval), top-1 (train/eval) and learning rate against epoch into one PNG.

    Missing columns or empty cells are skipped; a panel with no data says so instead of being blank.
    Returns the PNG path.
    """
    columns = read_metrics_csv(metrics_csv)
    n_rows = max((len(v) for v in columns.values()), default=0)
    if n_rows == 0:
        raise ValueError(f"{metrics_csv} has a header but no rows: train at least one epoch first")
    x = columns.get("epoch")
    if x is None or np.all(np.isnan(x)):
        x = np.arange(1, n_rows + 1, dtype=np.float64)  # fall back to row number
    else:
        x = np.where(np.isnan(x), np.arange(1, n_rows + 1), x)

    panels = [
        ("Loss", "loss", [("train_loss", "train"), ("eval_loss", "eval")]),
        ("Top-1 accuracy", "top-1", [("train_top1", "train"), ("eval_top1", "eval"), ("eval_top5", "eval top-5")]),
        ("Learning rate", "lr", [("lr", "lr")]),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 4.2))
    for ax, (panel_title, ylabel, series) in zip(axes, panels):
        drawn = _plot_series(ax, x, columns, series)
        ax.set_title(panel_title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if drawn:
            ax.legend(loc="best")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="gray")
        ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole numbers
    fig.suptitle(title or f"Training curves — {Path(metrics_csv).parent.name or Path(metrics_csv).name}")
    return _save_figure(fig, png_path)


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


def plot_confusion_matrix(matrix, label_names, png_path, normalize=True, title="Confusion matrix"):
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
    return _save_figure(fig, png_path)


def per_class_report(matrix, label_names=None):
    """Per-class rows and averages from a confusion matrix (rows = true, cols = predicted).

    Returns (rows, averages): rows is one dict per class (name, precision, recall, f1, support); averages
    holds "macro avg" and "weighted avg" dicts. The per-class numbers and the macro average come from
    `ppcls_lite.metric.ConfusionMatrix.per_class_report` (one implementation for eval and reports): a class
    never predicted has precision 0, never present recall 0, and the macro average is over the classes that
    occur in the labels or the predictions. The weighted average weights each class by its support.
    """
    from ppcls_lite.metric import ConfusionMatrix

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


def write_classification_report(matrix, label_names, out_dir):
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
