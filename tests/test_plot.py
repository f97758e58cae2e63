"""Training-curve and confusion-matrix pictures, and the per-class report numbers."""
import csv
import subprocess
import sys

import numpy as np
import pytest

from ppcls_lite.engine.reports import per_class_report, plot_confusion_matrix, write_classification_report
from ppcls_lite.engine.run_log import plot_training_curves, read_metrics_csv

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write_metrics(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(str(c) for c in r) + "\n" for r in rows))
    return path


def _assert_png(path, min_bytes=10_000):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    # A figure with three titled panels and lines is tens of kB; an empty canvas is a few kB.
    assert len(data) > min_bytes, f"{path} is suspiciously small ({len(data)} bytes)"


def _png_size(path):
    import struct

    data = path.read_bytes()
    width, height = struct.unpack(">II", data[16:24])  # IHDR chunk
    return width, height


@pytest.fixture
def full_metrics(tmp_path):
    header = ["epoch", "lr", "train_loss", "train_top1", "eval_loss", "eval_top1", "eval_top5", "epoch_time_s"]
    rows = []
    for epoch in range(1, 7):
        has_eval = epoch % 2 == 0  # eval_interval 2: eval cells empty on odd epochs
        rows.append([epoch, 0.1 / epoch, 2.0 / epoch, 1 - 1 / (epoch + 1),
                     2.1 / epoch if has_eval else "", 0.8 - 0.5 / epoch if has_eval else "",
                     0.9 if has_eval else "", 1.5])
    (tmp_path / "run").mkdir()
    return _write_metrics(tmp_path / "run" / "metrics.csv", header, rows)


def test_read_metrics_csv_empty_cells_become_nan(full_metrics):
    cols = read_metrics_csv(full_metrics)
    assert list(cols["epoch"]) == [1, 2, 3, 4, 5, 6]
    assert np.isnan(cols["eval_top1"][0]) and not np.isnan(cols["eval_top1"][1])
    assert cols["eval_top1"][1] == pytest.approx(0.8 - 0.25)


def test_training_curves_png(full_metrics, tmp_path):
    png = plot_training_curves(full_metrics, tmp_path / "out" / "curves.png")
    _assert_png(png)
    width, height = _png_size(png)
    assert width > 2 * height  # three panels side by side


def test_training_curves_missing_eval_columns(tmp_path):
    # eval_during_train False: the engine writes no eval columns at all, and lr may be missing too.
    metrics = _write_metrics(tmp_path / "metrics.csv", ["epoch", "train_loss", "train_top1"],
                             [[1, 1.2, 0.3], [2, 0.9, 0.5], [3, 0.7, 0.6]])
    _assert_png(plot_training_curves(metrics, tmp_path / "c.png"))


def test_training_curves_all_eval_cells_empty_and_single_row(tmp_path):
    metrics = _write_metrics(tmp_path / "metrics.csv", ["epoch", "lr", "train_loss", "train_top1", "eval_loss",
                                                        "eval_top1"], [[1, 0.01, 1.1, 0.2, "", ""]])
    _assert_png(plot_training_curves(metrics, tmp_path / "c.png"))


def test_training_curves_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        plot_training_curves(tmp_path / "nope.csv", tmp_path / "c.png")
    header_only = _write_metrics(tmp_path / "metrics.csv", ["epoch", "train_loss"], [])
    with pytest.raises(ValueError, match="metrics.csv"):
        plot_training_curves(header_only, tmp_path / "c.png")


def test_confusion_matrix_png_ten_long_names(tmp_path):
    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 5, (10, 10)) + np.diag(rng.integers(10, 40, 10))
    names = [f"a_rather_long_class_name_{i:02d}" for i in range(10)]
    for normalize in (True, False):
        png = plot_confusion_matrix(matrix, names, tmp_path / f"cm_{normalize}.png", normalize=normalize)
        _assert_png(png, min_bytes=30_000)
    # an empty row (class absent from the eval set) must not divide by zero
    matrix[3] = 0
    _assert_png(plot_confusion_matrix(matrix, names, tmp_path / "cm_empty_row.png"))


def test_confusion_matrix_rejects_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match="square"):
        plot_confusion_matrix(np.zeros((2, 3)), ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="label names"):
        plot_confusion_matrix(np.eye(3), ["a", "b"], tmp_path / "x.png")


# Hand-made 3-class matrix, rows = true, cols = predicted:
#            pred a  pred b  pred c
# true a        5       1       0      support 6
# true b        2       3       1      support 6
# true c        0       0       0      support 0 (never present; predicted once)
HAND = np.array([[5, 1, 0], [2, 3, 1], [0, 0, 0]])


def test_per_class_report_hand_computed():
    rows, averages = per_class_report(HAND, ["a", "b", "c"])
    rows = {r["name"]: r for r in rows}
    assert [a["name"] for a in averages] == ["macro avg", "weighted avg"]
    assert rows["a"]["precision"] == pytest.approx(5 / 7)
    assert rows["a"]["recall"] == pytest.approx(5 / 6)
    assert rows["a"]["f1"] == pytest.approx(2 * (5 / 7) * (5 / 6) / (5 / 7 + 5 / 6))
    assert rows["b"]["precision"] == pytest.approx(3 / 4)
    assert rows["b"]["recall"] == pytest.approx(3 / 6)
    assert rows["b"]["f1"] == pytest.approx(0.6)
    assert rows["c"] == {"name": "c", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert [r["support"] for r in rows.values()] == [6, 6, 0]


def test_macro_average_skips_classes_never_seen():
    # class "d" is neither in the labels nor predicted: it has no precision/recall to average (sklearn's rule)
    matrix = np.zeros((4, 4), dtype=np.int64)
    matrix[:3, :3] = HAND
    _, averages = per_class_report(matrix, ["a", "b", "c", "d"])
    _, averages_3 = per_class_report(HAND, ["a", "b", "c"])
    assert averages[0]["f1"] == pytest.approx(averages_3[0]["f1"])


def test_classification_report_files(tmp_path):
    result = write_classification_report(HAND, ["a", "b", "c"], tmp_path / "rep")
    assert result["accuracy"] == pytest.approx(8 / 12)
    with open(result["csv"], newline="") as f:
        table = {row["class"]: row for row in csv.DictReader(f)}
    assert set(table) == {"a", "b", "c", "macro avg", "weighted avg"}
    f1_a = 2 * (5 / 7) * (5 / 6) / (5 / 7 + 5 / 6)
    assert float(table["macro avg"]["precision"]) == pytest.approx((5 / 7 + 3 / 4 + 0) / 3, abs=1e-6)
    assert float(table["macro avg"]["f1"]) == pytest.approx((f1_a + 0.6 + 0) / 3, abs=1e-6)
    assert float(table["weighted avg"]["recall"]) == pytest.approx((6 * 5 / 6 + 6 * 0.5) / 12, abs=1e-6)
    assert float(table["weighted avg"]["f1"]) == pytest.approx((6 * f1_a + 6 * 0.6) / 12, abs=1e-6)
    assert table["weighted avg"]["support"] == "12"
    text = result["txt"].read_text()
    for word in ("precision", "recall", "f1", "support", "macro avg", "weighted avg", "accuracy", "0.6667"):
        assert word in text


@pytest.mark.slow
def test_plot_log_tool(full_metrics, tmp_path, repo_root):
    # Given a directory holding a run directory, the tool finds metrics.csv and writes the PNG next to it.
    run = subprocess.run([sys.executable, str(repo_root / "tools" / "plot_log.py"), str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    _assert_png(full_metrics.parent / "training_curves.png")
    out = tmp_path / "explicit.png"
    run = subprocess.run([sys.executable, str(repo_root / "tools" / "plot_log.py"), str(full_metrics),
                          "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    _assert_png(out)
    run = subprocess.run([sys.executable, str(repo_root / "tools" / "plot_log.py"), str(tmp_path / "empty")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "empty" in run.stderr


@pytest.mark.slow
def test_plot_log_on_a_real_engine_run(tiny_dataset, tmp_path, repo_root):
    """The engine's own metrics.csv (eval every 2nd epoch, so epoch 1 has empty eval cells) plots via the tool."""
    from helpers import TINY_ARCH, run_train, tiny_train_config, write_config

    cfg = tiny_train_config(tiny_dataset, tmp_path / "out", epochs=2)
    cfg["Global"]["eval_interval"] = 2
    run_train(write_config(cfg, tmp_path / "c.yaml"))
    run_dir = tmp_path / "out" / TINY_ARCH
    cols = read_metrics_csv(run_dir / "metrics.csv")
    for name in ("epoch", "lr", "train_loss", "train_top1", "eval_loss", "eval_top1"):
        assert name in cols, f"metrics.csv lacks {name}: {sorted(cols)}"
    assert np.isnan(cols["eval_top1"][0]) and not np.isnan(cols["eval_top1"][1])
    out = tmp_path / "curves.png"
    run = subprocess.run([sys.executable, str(repo_root / "tools" / "plot_log.py"), str(run_dir), "--out", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    _assert_png(out)
