"""The record of a training run: console lines, VisualDL scalars, metrics.csv and training_curves.png.

`RunLog` writes them during training (rank 0 only); `read_metrics_csv` reads metrics.csv back, and
`plot_training_curves` (also behind tools/plot_log.py) draws training_curves.png from what was read.

metrics.csv has one row per finished epoch; columns:
    `epoch`           1-based epoch number
    `lr`              learning rate at the last step of the epoch
    `train_loss`      mean training loss (weighted sum of Loss.Train) over the epoch, all ranks
    `train_<metric>`  one column per Metric.Train value, e.g. `train_top1`, `train_top5` (epoch, all ranks)
    `eval_loss`       mean Loss.Eval over the whole eval set (empty in epochs without evaluation)
    `eval_<metric>`   one column per Metric.Eval value, e.g. `eval_top1`, `eval_top5` (empty without eval)
    `epoch_time_s`    wall time of the epoch in seconds (training + evaluation)
With EMA enabled the eval columns are measured with the EMA weights. On resume the rows after the resumed
epoch are dropped and new rows appended. metrics.csv is a log, not state: damage to it (NUL bytes a power cut
left, a line cut short) never stops a resume or a plot; the readable rows are kept, the damaged file is kept
beside it as `metrics.<timestamp>.csv`, and one warning names it.
"""
import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ppcls_lite.utils import logger
from ppcls_lite.utils.files import keep_aside
from ppcls_lite.utils.plot import plt, save_figure


def read_csv_rows(path: str) -> Tuple[List[str], List[Dict[str, str]], bool]:
    """(header, rows, damaged) of a CSV file: NUL bytes are dropped, undecodable bytes replaced, and reading stops
    at the first line the csv module cannot parse; `damaged` says whether any of that happened."""
    with open(path, "rb") as f:
        raw = f.read()
    damaged = b"\0" in raw
    text = raw.replace(b"\0", b"").decode("utf-8", errors="replace")
    damaged = damaged or "\ufffd" in text
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = []
    try:
        for row in reader:
            rows.append(row)
    except csv.Error:
        damaged = True
    return list(reader.fieldnames or []), rows, damaged


def _epoch_of(row: Dict[str, str]) -> Optional[int]:
    try:
        return int(str(row.get("epoch") or "").strip())
    except ValueError:
        return None


def format_metrics(values: Dict[str, float]) -> str:
    """'loss: 0.12345, top1: 0.90000' for a dict of numbers."""
    return ", ".join(f"{k}: {v:.5f}" for k, v in values.items())


def format_eta(seconds: float) -> str:
    """H:MM:SS for a number of seconds (negative counts as 0)."""
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@dataclass(frozen=True)
class StepRecord:
    """What one training step reports to RunLog.step."""

    epoch: int
    iter_id: int                     # 1-based iteration within the epoch
    global_step: int                 # steps done in the whole run, after this one
    lr: float                        # learning rate the step used
    loss: float                      # this batch's loss
    loss_avg: float                  # mean loss of the epoch so far
    batch_metrics: Dict[str, float]  # this batch's Metric.Train values
    reader_cost: float               # seconds spent waiting for the batch
    batch_cost: float                # seconds of the whole step, reading included
    batch_size: int


class RunLog:
    """Console lines (every Global.print_batch_step iterations and per epoch), VisualDL (Global.use_visualdl),
    metrics.csv and training_curves.png of one training run; only rank 0 writes files."""

    def __init__(self, run_dir: str, epochs: int, steps_per_epoch: int, print_batch_step: int,
                 use_visualdl: bool = False, is_main: bool = True):
        self.run_dir = run_dir
        self.epochs, self.steps_per_epoch = int(epochs), int(steps_per_epoch)
        self.print_batch_step = max(int(print_batch_step), 1)
        self.use_visualdl = bool(use_visualdl) and is_main
        self.is_main = is_main
        self.metrics_csv: Optional[MetricsCSV] = None
        self.last_lr: Optional[float] = None  # LR of the last step: the epoch row's `lr`
        self._vdl_writer = None
        self._epoch_batch_time, self._epoch_steps = 0.0, 0
        self._window = {"reader": 0.0, "batch": 0.0, "images": 0, "steps": 0}

    def open_metrics_csv(self, start_epoch: int, train_keys: List[str], eval_keys: Optional[List[str]]) -> None:
        """Start metrics.csv with the columns for these Metric.Train / Metric.Eval keys (`eval_keys` None: no
        evaluation), keeping the rows of epochs before `start_epoch` on resume."""
        columns = ["epoch", "lr", "train_loss"] + [f"train_{k}" for k in train_keys]
        if eval_keys is not None:
            columns += ["eval_loss"] + [f"eval_{k}" for k in eval_keys]
        columns.append("epoch_time_s")
        if self.is_main:
            self.metrics_csv = MetricsCSV(os.path.join(self.run_dir, "metrics.csv"), start_epoch, columns)

    def start_epoch(self) -> None:
        """Reset the per-epoch timers the ETA is computed from."""
        self._epoch_batch_time, self._epoch_steps = 0.0, 0
        self._window = {"reader": 0.0, "batch": 0.0, "images": 0, "steps": 0}

    def step(self, record: StepRecord, metrics: Any = None) -> None:
        """Record one training step; every print_batch_step-th (and the epoch's last) prints the line
        lr, loss, metrics (with the running averages of `metrics`, a MetricSet), reader_cost, batch_cost, ips and
        ETA, and writes VisualDL scalars."""
        self.last_lr = float(record.lr)
        window = self._window
        window["reader"] += record.reader_cost
        window["batch"] += record.batch_cost
        window["images"] += record.batch_size
        window["steps"] += 1
        self._epoch_batch_time += record.batch_cost
        self._epoch_steps += 1
        epoch, iter_id, steps = record.epoch, record.iter_id, self.steps_per_epoch
        if iter_id % self.print_batch_step != 0 and iter_id != steps:
            return
        remaining = (self.epochs - epoch) * steps + (steps - iter_id)
        eta = remaining * self._epoch_batch_time / max(self._epoch_steps, 1)
        running = metrics.accumulate() if metrics else {}
        logger.info(
            f"[Train][Epoch {epoch}/{self.epochs}][Iter {iter_id}/{steps}] lr: {record.lr:.6f}, "
            f"loss: {record.loss:.5f} (avg {record.loss_avg:.5f}), "
            + "".join(f"{k}: {v:.5f} (avg {running.get(k, v):.5f}), " for k, v in record.batch_metrics.items())
            + f"reader_cost: {window['reader'] / window['steps']:.5f} s, "
            f"batch_cost: {window['batch'] / window['steps']:.5f} s, "
            f"ips: {window['images'] / max(window['batch'], 1e-9):.1f} img/s, eta: {format_eta(eta)}")
        self._scalars(record.global_step, {"train/loss": record.loss, "train/lr": record.lr,
                                           **{f"train/{k}": v for k, v in record.batch_metrics.items()}})
        self._window = {"reader": 0.0, "batch": 0.0, "images": 0, "steps": 0}

    def end_epoch(self, epoch: int, train_result: Dict[str, float], eval_result: Optional[Dict[str, float]],
                  epoch_time: float) -> None:
        """The epoch's metrics.csv row and VisualDL epoch scalars (rank 0)."""
        if not self.is_main:
            return
        self.metrics_csv.write(epoch, self.last_lr, train_result, eval_result, epoch_time)
        self._scalars(epoch, {f"train_epoch/{k}": v for k, v in train_result.items()})
        self._scalars(epoch, {f"eval/{k}": v for k, v in (eval_result or {}).items()})

    def epoch_line(self, epoch: int, train_result: Dict[str, float], eval_result: Optional[Dict[str, float]],
                   epoch_time: float) -> None:
        """The console summary of a finished epoch (after its checkpoints are saved)."""
        logger.info(f"[Train][Epoch {epoch}/{self.epochs}] done in {epoch_time:.1f} s: "
                    + format_metrics({f"train_{k}": v for k, v in train_result.items()})
                    + (", " + format_metrics({f"eval_{k}": v for k, v in eval_result.items()}) if eval_result else ""))

    def close(self) -> None:
        """Close VisualDL and draw training_curves.png from metrics.csv (rank 0)."""
        if self._vdl_writer is not None:
            self._vdl_writer.close()
            self._vdl_writer = None
        if not self.is_main:
            return
        csv_path = os.path.join(self.run_dir, "metrics.csv")
        png = os.path.join(self.run_dir, "training_curves.png")
        try:
            plot_training_curves(csv_path, png)
            logger.info(f"training curves: {png}")
        except Exception as exc:  # a plotting problem must not fail a finished training run
            logger.warning(f"could not plot {csv_path}: {type(exc).__name__}: {exc}")

    def _scalars(self, step: int, scalars: Dict[str, float]) -> None:
        if not self.use_visualdl or not scalars:
            return
        if self._vdl_writer is None:
            from visualdl import LogWriter  # optional dependency, needed only with Global.use_visualdl

            os.makedirs(self.run_dir, exist_ok=True)
            self._vdl_writer = LogWriter(logdir=os.path.join(self.run_dir, "vdl"))
        for tag, value in scalars.items():
            self._vdl_writer.add_scalar(tag=tag, step=step, value=float(value))


class MetricsCSV:
    """Appends one row per epoch to metrics.csv (columns documented in the module docstring)."""

    def __init__(self, path: str, start_epoch: int, columns: List[str]):
        self.path = path
        self.columns = list(columns)
        rows = []
        if os.path.exists(path) and start_epoch > 1:  # resumed: keep the rows of the epochs already done
            _, read, damaged = read_csv_rows(path)
            epochs = [_epoch_of(r) for r in read]
            rows = [r for r, e in zip(read, epochs) if e is not None and e < start_epoch]
            if damaged or None in epochs:
                kept = keep_aside(path)
                logger.warning(f"{path} is damaged (NUL bytes or broken lines, e.g. after a power cut); it is a log, "
                               f"not part of the checkpoint: kept its {len(rows)} readable rows of the finished "
                               f"epochs and the damaged file as {kept}")
        self._rewrite(rows)

    def _rewrite(self, rows):
        tmp = self.path + ".tmp"
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.path)

    def write(self, epoch: int, lr: float, train_result: Dict[str, float], eval_result: Optional[Dict[str, float]],
              epoch_time: float) -> None:
        """Append the row of a finished epoch."""
        row = {"epoch": epoch, "lr": f"{lr:.8g}"}
        row.update({f"train_{k}": f"{v:.6f}" for k, v in train_result.items()})
        row.update({f"eval_{k}": f"{v:.6f}" for k, v in (eval_result or {}).items()})
        row["epoch_time_s"] = f"{epoch_time:.2f}"
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore").writerow(row)


def read_metrics_csv(metrics_csv: str) -> Dict[str, np.ndarray]:
    """Read the engine's metrics.csv into {column: float array}, one value per row (NaN for empty cells).

    Rows come one per epoch; eval columns are empty on epochs without eval.
    """
    path = Path(metrics_csv)
    if not path.is_file():
        raise FileNotFoundError(
            f"metrics file not found: {path} (the engine writes <Global.output_dir>/<Arch.name>/metrics.csv "
            "during `python tools/train.py`)"
        )
    fieldnames, rows, _damaged = read_csv_rows(str(path))
    if not fieldnames:
        raise ValueError(f"{path} is empty: it has no header line; re-run training to regenerate it")
    columns = {}
    for name in fieldnames:
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


def plot_training_curves(metrics_csv: str, png_path: str, title: Optional[str] = None) -> Path:
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
        ("Top-1 accuracy", "top-1", [("train_top1", "train"), ("eval_top1", "eval"), ("eval_top5", "eval top-5"),
                                     ("eval_recall1", "eval Recall@1"), ("eval_mAP", "eval mAP")]),  # retrieval
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
    return save_figure(fig, png_path)


def metric_keys(metric_set: Any) -> List[str]:
    """The result names of a MetricSet (none without one): the metrics.csv columns."""
    return list(getattr(metric_set, "keys", None) or []) if metric_set is not None else []


def log_model_size(model: Any, arch_name: str, world_size: int, device: str) -> None:
    """One line at the start of training: trainable and frozen parameter counts, processes, device."""
    # BN running statistics are paddle parameters with stop_gradient too; they are not "frozen" weights.
    weights = [p for n, p in model.named_parameters() if not n.endswith(("_mean", "_variance"))]
    n_trainable = sum(int(np.prod(p.shape)) for p in weights if not p.stop_gradient)
    n_frozen = sum(int(np.prod(p.shape)) for p in weights if p.stop_gradient)
    logger.info(f"model {arch_name}: {n_trainable:,} trainable parameters"
                + (f", {n_frozen:,} frozen (not given to the optimizer)" if n_frozen else "")
                + f"; {world_size} process(es), device {device}")
