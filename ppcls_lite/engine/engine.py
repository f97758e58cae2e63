"""The Engine: train / eval / infer loops over objects built by `build_engine` (see `__init__.py`).

The engine never reads the raw config: it gets the built model, loaders, losses, metrics, optimizer and
LR scheduler, plus an `EngineSettings` (Global/AMP/EMA/Infer values).

Training outputs, all in `<Global.output_dir>/<Arch.name>/` and written by rank 0 only:
- `config.yaml` (the final config; when a resume changes it, the earlier one is kept as
  `config.<timestamp>.yaml`, see `keep_config` in `__init__.py`), `train.log` (the log lines, appended on resume);
- checkpoints `epoch_N`, `latest`, `best_model` (see `checkpoint.py` for the trio);
- `metrics.csv`, one row per finished epoch, columns (read by name by `ppcls_lite.utils.plot`):
    `epoch`           1-based epoch number
    `lr`              learning rate at the last step of the epoch
    `train_loss`      mean training loss (weighted sum of Loss.Train) over the epoch, all ranks
    `train_<metric>`  one column per Metric.Train value, e.g. `train_top1`, `train_top5` (epoch, all ranks)
    `eval_loss`       mean Loss.Eval over the whole eval set (empty in epochs without evaluation)
    `eval_<metric>`   one column per Metric.Eval value, e.g. `eval_top1`, `eval_top5` (empty without eval)
    `epoch_time_s`    wall time of the epoch in seconds (training + evaluation)
  With EMA enabled the eval columns are measured with the EMA weights. On resume rows after the resumed
  epoch are dropped and new rows appended.
- `training_curves.png` (via `ppcls_lite.utils.plot.plot_training_curves`, when that module exists);
- VisualDL logs in `vdl/` when `Global.use_visualdl` is true.

Behaviours worth knowing:
- Determinism/resume: `Global.seed` seeds python/numpy/paddle; each epoch calls `train_loader.set_epoch(epoch)`
  (data order and augmentation depend on (seed, epoch) only); the python/numpy/paddle RNG states are saved
  in `.pdstates` and restored on resume, so dropout continues as in an uninterrupted run.
- Resume vs extend: `.pdstates` records the plan (Global.epochs, steps per epoch, the Optimizer section).
  Unchanged → the saved LR schedule is restored (bit-exact). Changed → the schedule built from the current
  config is moved to the saved position (`_continue_lr_plan`: warm-up not repeated, a cosine continues on the
  new, longer curve), one log line per change; a next step at LR 0 is an error before training.
- Empty loaders: a Train or Eval loader with no batches is an error (`require_batches`) before any metric is
  computed, written or saved as best_model.
- Ctrl-C: the message names the last complete checkpoint and `--resume auto`, or says nothing was saved and to
  start again with the same command.
- Non-finite loss: training stops before the update with `NonFiniteLossError` naming epoch, iteration and
  the last good checkpoint. In data-parallel runs the finiteness flag is all-reduced so all ranks stop.
- Data parallel (`python -m paddle.distributed.launch --nproc_per_node N tools/train.py ...`): the model is
  wrapped in `paddle.DataParallel`; each rank sees its shard (DistributedBatchSampler). Eval counts (metric
  states, loss sums, sample counts) are all-reduced. The DistributedBatchSampler pads the eval set by
  repeating its first samples so every rank has the same number; with `shuffle: False` (the Eval default)
  the padded positions are the last ones of each rank's sequence, so each rank computes how many of its
  samples are real (`real_samples_on_rank`) and drops the rest: eval metrics equal a single-process run.
  Train metrics are all-reduced too (their padding, a few repeated images, is not removed).
- EMA: updated after every optimizer step, used for evaluation and `best_model.pdparams`; raw weights go to
  `latest`/`epoch_N.pdparams`; the EMA weights travel in `.pdstates`.
- AMP: GPU/XPU only (`paddle.amp.auto_cast` + `GradScaler`, O1/O2); PaddlePaddle 3.3's autocast has no
  effect on CPU (not even bfloat16), so on CPU AMP is switched off with a one-line warning.
"""
import csv
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import paddle
import paddle.nn.functional as F

from ppcls_lite.engine import checkpoint as ckpt
from ppcls_lite.utils import logger
from ppcls_lite.utils.ema import ModelEMA
from ppcls_lite.utils.seeding import get_rng_state, set_rng_state



class NonFiniteLossError(ValueError):
    """The training loss became NaN or Inf."""


@dataclass
class EngineSettings:
    """Everything the engine needs from Global / AMP / EMA / Infer, already resolved."""

    arch_name: str
    class_num: int
    output_dir: str = "./output/"        # Global.output_dir; the run dir is output_dir/arch_name
    epochs: int = 10
    save_interval: int = 1
    eval_during_train: bool = True
    eval_interval: int = 1
    print_batch_step: int = 10
    use_visualdl: bool = False
    device: str = "cpu"
    seed: int = 42
    to_static: bool = False
    image_shape: list = field(default_factory=lambda: [3, 224, 224])
    checkpoints: Optional[str] = None       # resume prefix (already resolved from "auto")
    pretrained_model: Optional[str] = None  # weights-only prefix
    arch_pretrained: bool = False           # Arch.pretrained loaded weights inside build_model
    config_digest: Optional[str] = None
    use_amp: bool = False
    amp_level: str = "O1"
    scale_loss: float = 1.0
    use_dynamic_loss_scaling: bool = False
    use_fp16_test: bool = False
    amp_use_promote: bool = False           # AMP.use_promote: run an op in fp32 when any input is fp32
    ema_decay: Optional[float] = None
    infer_imgs: Optional[str] = None
    infer_batch_size: int = 10
    eval_batch_size: Optional[int] = None   # for removing DistributedBatchSampler padding
    eval_shuffle: bool = False
    label_map_file: Optional[str] = None    # Infer.PostProcess.class_id_map_file: class names for reports
    optimizer_config: Optional[dict] = None  # the Optimizer section (numbers normalised), kept in .pdstates

    @property
    def run_dir(self):
        return os.path.join(self.output_dir, self.arch_name)


def real_samples_on_rank(num_samples, nranks, rank, batch_size):
    """How many of this rank's eval samples are real (not DistributedBatchSampler padding).

    Mirrors paddle.io.DistributedBatchSampler (no shuffle): indices 0..total-1 (total = ceil(n / nranks) *
    nranks, positions >= n are padding) are dealt out in batch-size blocks round-robin, the remainder split
    evenly. Positions stay increasing on each rank, so the padding is at the end of the rank's sequence.
    """
    per_rank = int(math.ceil(num_samples / nranks))
    total = per_rank * nranks
    positions = np.arange(total)
    last = total % (batch_size * nranks)
    mine = []
    for start in range(rank * batch_size, total - last, batch_size * nranks):
        mine.extend(positions[start:start + batch_size])
    tail = positions[total - last:]
    share = last // nranks
    mine.extend(tail[rank * share:(rank + 1) * share])
    return int(np.sum(np.asarray(mine) < num_samples))


def require_batches(loader, section: str) -> int:
    """The number of batches `loader` yields; an error naming the section when there are none, so that no
    metric is ever computed from nothing."""
    n = len(loader)
    if n > 0:
        return n
    sampler = getattr(loader, "batch_sampler", None)
    batch_size = getattr(sampler, "batch_size", "?")
    drop_last = getattr(sampler, "drop_last", "?")
    try:
        images = len(loader.dataset)
    except (AttributeError, TypeError):
        images = "?"
    raise ValueError(f"the {section} loader yields no batches: {images} image(s) in its list, "
                     f"DataLoader.{section}.sampler.batch_size={batch_size}, drop_last={drop_last}. Lower "
                     f"DataLoader.{section}.sampler.batch_size, set DataLoader.{section}.sampler.drop_last=False, "
                     f"or check DataLoader.{section}.dataset.cls_label_path.")


def flatten_config(prefix, value):
    """{"Optimizer.lr.learning_rate": 0.1, ...} from a nested section (lists stay whole values)."""
    if not isinstance(value, dict):
        return {prefix: value}
    out = {}
    for key, item in value.items():
        out.update(flatten_config(f"{prefix}.{key}", item))
    return out


def _logits_of(output):
    return output["logits"] if isinstance(output, dict) else output


def _format_eta(seconds):
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _fmt_metrics(values):
    return ", ".join(f"{k}: {v:.5f}" for k, v in values.items())


class Engine:
    def __init__(self, settings, model, *, train_loader=None, eval_loader=None, train_loss=None, eval_loss=None,
                 train_metrics=None, eval_metrics=None, optimizer=None, lr_scheduler=None, infer_ops=None,
                 postprocess=None):
        self.settings = settings
        self.model = model  # the plain Layer: its state_dict is what checkpoints hold
        self.train_loader, self.eval_loader = train_loader, eval_loader
        self.train_loss, self.eval_loss = train_loss, eval_loss
        self.train_metrics, self.eval_metrics = train_metrics, eval_metrics
        self.optimizer, self.lr_scheduler = optimizer, lr_scheduler
        self.infer_ops, self.postprocess = infer_ops, postprocess

        self.world_size = paddle.distributed.get_world_size()
        self.rank = paddle.distributed.get_rank()
        self.is_main = self.rank == 0
        self.start_epoch = 1
        self.global_step = 0
        self.best_metric = -1.0   # best eval top-1 so far (-1: none yet)
        self.best_epoch = 0
        self.last_checkpoint = None
        self.lr_trace = []        # (global_step, lr) of every step run in this process (used by tests)
        self.weights_loaded = settings.arch_pretrained
        self._resume_states = None
        self._vdl_writer = None

        self._setup_amp()
        self.ema = ModelEMA(model, settings.ema_decay) if settings.ema_decay else None
        self._load_weights()
        # The model used for the forward pass in training: to_static and/or DataParallel wrappers.
        self.train_model = self.model
        if settings.to_static and optimizer is not None:
            self.train_model = self._to_static(self.model)
        if self.world_size > 1 and optimizer is not None:
            self.train_model = paddle.DataParallel(self.train_model)

    # ------------------------------------------------------------------ setup helpers
    def _setup_amp(self):
        s = self.settings
        self.amp_enabled = bool(s.use_amp)
        self.scaler = None
        if self.amp_enabled and s.device == "cpu":
            logger.warning("AMP.use_amp is on but PaddlePaddle's autocast has no effect on CPU (no fp16/bf16 kernels "
                           "used), so AMP is disabled on this device and training continues in float32.")
            self.amp_enabled = False
        if not self.amp_enabled:
            return
        level = str(s.amp_level).upper()
        if level not in ("O1", "O2"):
            raise ValueError(f"AMP.level must be O1 or O2, got {s.amp_level!r}")
        self.amp_level = level
        if self.optimizer is not None:
            self.scaler = paddle.amp.GradScaler(init_loss_scaling=float(s.scale_loss),
                                                use_dynamic_loss_scaling=bool(s.use_dynamic_loss_scaling))
            if level == "O2":
                self.model, self.optimizer = paddle.amp.decorate(models=self.model, optimizers=self.optimizer,
                                                                 level="O2", save_dtype="float32")
        elif level == "O2" and s.use_fp16_test:
            self.model = paddle.amp.decorate(models=self.model, level="O2", save_dtype="float32")

    def _autocast(self, training=True):
        enable = self.amp_enabled and (training or self.settings.use_fp16_test)
        if not enable:
            return paddle.amp.auto_cast(enable=False)
        return paddle.amp.auto_cast(enable=True, level=self.amp_level, use_promote=self.settings.amp_use_promote)

    def _to_static(self, model):
        shape = list(self.settings.image_shape or [3, None, None])
        # H and W are left open: the same config is used at 32 px (quick start) and 224 px (recipes).
        spec = [paddle.static.InputSpec(shape=[None, shape[0], None, None], dtype="float32", name="x")]
        logger.info("Global.to_static: training with a static graph (paddle.jit.to_static, full_graph=True)")
        return paddle.jit.to_static(model, input_spec=spec, full_graph=True)

    def _load_weights(self):
        s = self.settings
        if s.checkpoints:
            model_state, opt_state, states = ckpt.load_checkpoint(s.checkpoints, s.config_digest)
            own = self.model.state_dict()
            missing = [k for k in own if k not in model_state]
            mismatched = [k for k in own if k in model_state and list(model_state[k].shape) != list(own[k].shape)]
            if missing or mismatched:
                raise ckpt.CheckpointError(
                    f"checkpoint {s.checkpoints}.pdparams does not fit Arch.name={s.arch_name} "
                    f"(class_num={s.class_num}): missing {missing[:3]}, other shapes {mismatched[:3]}. Resume with "
                    f"the config it was trained with, or load matching weights with Global.pretrained_model.")
            self.model.set_state_dict(model_state)
            if self.optimizer is not None:
                opt_state = dict(opt_state)
                sched_state = opt_state.pop("lr_scheduler", None)
                scaler_state = opt_state.pop("amp_scaler", None)
                saved_names = opt_state.pop("param_names", None)
                if saved_names:
                    opt_state = ckpt.rename_optimizer_state(opt_state, saved_names, ckpt.parameter_names(self.model))
                self.optimizer.set_state_dict(opt_state)
                if sched_state is not None and self.lr_scheduler is not None:
                    self.lr_scheduler.set_state_dict(sched_state)
                if scaler_state is not None and self.scaler is not None:
                    self.scaler.load_state_dict(scaler_state)
            if self.ema is not None and states.get("ema"):
                self.ema.set_state_dict(states["ema"])
            self.start_epoch = int(states["epoch"]) + 1
            self.global_step = int(states.get("global_step", 0))
            if self.optimizer is not None:
                self._continue_lr_plan(states)
            # PaddleClas's own .pdstates hold {"epoch", "metric"}; ours also the step, RNG, EMA, digest.
            self.best_metric = float(states.get("best_metric", states.get("metric", -1.0)))
            self.best_epoch = int(states.get("best_epoch", states.get("epoch", 0) if "metric" in states else 0))
            self.last_checkpoint = s.checkpoints
            self._resume_states = states
            self.weights_loaded = True
            logger.info(f"resumed from {s.checkpoints} (finished epoch {states['epoch']}, step {self.global_step}, "
                        f"best top-1 {self.best_metric:.5f} at epoch {self.best_epoch})")
        elif s.pretrained_model:
            from ppcls_lite.utils.save_load import load_pretrained

            report = load_pretrained(self.model, s.pretrained_model)
            self.weights_loaded = True
            reinit = [m[0] if isinstance(m, (list, tuple)) else m for m in report.get("mismatched", [])]
            reinit += list(report.get("missing", []))
            logger.info(f"loaded {len(report.get('loaded', []))} tensors from {s.pretrained_model}"
                        + (f"; kept the fresh initialisation of {len(reinit)} tensors not loaded: {reinit}"
                           if reinit else ""))
            if self.ema is not None:
                self.ema = ModelEMA(self.model, self.settings.ema_decay)  # start the average at the loaded weights

    def plan_changes(self, states):
        """[(key, old, new)] of what differs between the checkpoint's training plan (.pdstates "epochs",
        "steps_per_epoch", "optimizer") and the current one; parts a checkpoint does not record (PaddleClas's
        own, or older ones) are not compared."""
        s = self.settings
        changes = []
        if states.get("epochs") not in (None, s.epochs):
            changes.append(("Global.epochs", states["epochs"], s.epochs))
        steps = len(self.train_loader) if self.train_loader is not None else None
        if states.get("steps_per_epoch") not in (None, steps):
            changes.append(("Train steps per epoch (batch size or train list changed)", states["steps_per_epoch"],
                            steps))
        if states.get("optimizer") is not None and s.optimizer_config is not None:
            old = flatten_config("Optimizer", states["optimizer"])
            new = flatten_config("Optimizer", s.optimizer_config)
            for key in sorted(set(old) | set(new)):
                if old.get(key, "(not set)") != new.get(key, "(not set)"):
                    changes.append((key, old.get(key, "(not set)"), new.get(key, "(not set)")))
        return changes

    def _continue_lr_plan(self, states):
        """After a resume: keep the restored LR schedule when the plan is unchanged (exact resume); otherwise
        re-plan it, log each change, and refuse to train when the next step's LR is 0.

        The scheduler built from the current config is the new plan (new Global.epochs / Optimizer.lr);
        re-planning moves it to the saved position (epochs done x steps per epoch, the saved global step; epochs
        done for `by_epoch`) with paddle's `step(epoch=position)`, which uses the closed form, and inside
        LinearWarmup moves the inner schedule to position - warm-up steps: warm-up already done is not
        repeated and a cosine continues on the curve of the new length. Other Optimizer values (momentum,
        weight decay, ...) need nothing: the optimizer was built from the current config.
        """
        sched = self.lr_scheduler
        if sched is None:
            return
        changes = self.plan_changes(states)
        if states.get("optimizer") is None:
            logger.warning(f"{self.settings.checkpoints}.pdstates does not record the Optimizer section it was "
                           f"trained with (PaddleClas's or an older checkpoint), so a changed Optimizer.lr value "
                           f"cannot be detected: the LR schedule is re-planned only when Global.epochs or the steps "
                           f"per epoch changed, else restored as saved; momentum and weight decay come from this "
                           f"config")
        old_lr = float(sched())  # the restored schedule's LR for the next step
        done = int(states["epoch"])
        by_epoch = bool(getattr(sched, "by_epoch", False))
        steps = len(self.train_loader)
        replan = any(key.startswith(("Global.epochs", "Train steps", "Optimizer.lr")) for key, _, _ in changes)
        if replan:
            sched.step(epoch=done if by_epoch else done * steps)
        new_lr = float(sched())
        for key, old, new in changes:
            logger.info(f"resume: {key} {old} -> {new}; LR at the next step (global step {self.global_step + 1}): "
                        f"old plan {old_lr:.6g}, new plan {new_lr:.6g}"
                        + ("" if replan else " (the LR schedule is unchanged)"))
        if self.start_epoch > self.settings.epochs:
            return  # nothing to train; train() says so
        if new_lr <= 0:  # a finished cosine (restored as it is, or its plan changed to end here), a last value 0
            why = ("the LR plan, re-planned for the changes above," if replan else
                   "the restored LR schedule (its plan is not changed" + ("" if states.get("epochs") is not None else
                   ", or the checkpoint does not record it") + ")")
            raise ValueError(
                f"resuming {self.settings.checkpoints} would train epoch {self.start_epoch} at learning rate 0: "
                f"{why} gives LR {new_lr:g} at the next step (global step {self.global_step + 1}). Nothing was "
                f"trained or written. Give the coming epochs a rate: raise Global.epochs (a cosine then continues on "
                f"the longer curve) or change Optimizer.lr (learning_rate, values, eta_min); or start a new schedule "
                f"from these weights with -o Global.pretrained_model={self.settings.checkpoints} and another "
                f"Global.output_dir.")

    # ------------------------------------------------------------------ distributed helpers
    def _all_reduce_sum(self, values):
        """Sum a dict of numpy arrays/numbers over ranks (identity with one process)."""
        if self.world_size <= 1:
            return {k: np.asarray(v) for k, v in values.items()}
        out = {}
        for key, value in values.items():
            arr = np.asarray(value)
            dtype = "int64" if np.issubdtype(arr.dtype, np.integer) else "float64"
            tensor = paddle.to_tensor(arr.astype(dtype))
            paddle.distributed.all_reduce(tensor)
            out[key] = tensor.numpy()
        return out

    def _global_metrics(self, metric_set, loss_sum, count):
        state = metric_set.state() if metric_set is not None else {}
        summed = self._all_reduce_sum({**{f"m/{k}": v for k, v in state.items()},
                                       "loss_sum": np.float64(loss_sum), "count": np.int64(count)})
        result = {}
        n = int(summed.pop("count"))
        result["loss"] = float(summed.pop("loss_sum")) / max(n, 1)
        if metric_set is not None:
            result.update(metric_set.result_from_state({k[2:]: v for k, v in summed.items()}))
        return result

    # ------------------------------------------------------------------ training
    def _check_finite(self, loss_value, epoch, iter_id):
        bad = not math.isfinite(loss_value)
        if self.world_size > 1:  # all ranks must stop together, or the others hang in the gradient all-reduce
            flag = paddle.to_tensor([1 if bad else 0], dtype="int64")
            paddle.distributed.all_reduce(flag)
            bad = int(flag.numpy()[0]) > 0
        if bad:
            last = (f"{self.last_checkpoint} (resume with -o Global.checkpoints={self.last_checkpoint})"
                    if self.last_checkpoint else "none (no checkpoint was saved yet)")
            raise NonFiniteLossError(
                f"training loss is {loss_value} at epoch {epoch}, iteration {iter_id} (global step "
                f"{self.global_step + 1}); stopped before updating the weights. Last good checkpoint: {last}. "
                f"Lower Optimizer.lr.learning_rate, add warm-up (Optimizer.lr.warmup_epoch) or check the data.")

    @staticmethod
    def _metric_keys(metric_set):
        return list(getattr(metric_set, "keys", None) or []) if metric_set is not None else []

    def _run_dir(self):
        os.makedirs(self.settings.run_dir, exist_ok=True)
        return self.settings.run_dir

    def train(self):
        """Train from `start_epoch` to `Global.epochs`; returns {"best_metric", "best_epoch", "last_eval"}."""
        s = self.settings
        if self.optimizer is None or self.train_loader is None:
            raise ValueError("this engine was built without training objects; use build_engine(config, 'train')")
        steps_per_epoch = require_batches(self.train_loader, "Train")
        if s.eval_during_train and self.eval_loader is not None:
            require_batches(self.eval_loader, "Eval")  # before metrics.csv is touched
        run_dir = self._run_dir() if self.is_main else s.run_dir
        if self.is_main:
            logger.init_logger(os.path.join(run_dir, "train.log"))
            for name in ckpt.remove_stale_temp_files(run_dir):
                logger.warning(f"removed {name}, left by an interrupted checkpoint save")
        if self._resume_states is not None and self._resume_states.get("rng"):
            set_rng_state(self._resume_states["rng"])  # after all building, so nothing consumes it before the loop
        # BN running statistics are paddle parameters with stop_gradient too; they are not "frozen" weights.
        weights = [p for n, p in self.model.named_parameters() if not n.endswith(("_mean", "_variance"))]
        n_trainable = sum(int(np.prod(p.shape)) for p in weights if not p.stop_gradient)
        n_frozen = sum(int(np.prod(p.shape)) for p in weights if p.stop_gradient)
        logger.info(f"model {s.arch_name}: {n_trainable:,} trainable parameters"
                    + (f", {n_frozen:,} frozen (not given to the optimizer)" if n_frozen else "")
                    + f"; {self.world_size} process(es), device {s.device}")
        if self.start_epoch > s.epochs:
            logger.warning(f"nothing to train: the checkpoint already finished epoch {self.start_epoch - 1} "
                           f"and Global.epochs={s.epochs}")
        metrics_csv = None
        if self.is_main:
            columns = ["epoch", "lr", "train_loss"] + [f"train_{k}" for k in self._metric_keys(self.train_metrics)]
            if s.eval_during_train and self.eval_loader is not None:
                columns += ["eval_loss"] + [f"eval_{k}" for k in self._metric_keys(self.eval_metrics)]
            metrics_csv = MetricsCSV(os.path.join(run_dir, "metrics.csv"), self.start_epoch, columns + ["epoch_time_s"])
        by_epoch = bool(getattr(self.lr_scheduler, "by_epoch", False))
        last_eval = None
        epoch = self.start_epoch
        try:
            for epoch in range(self.start_epoch, s.epochs + 1):
                epoch_start = time.time()
                train_result = self._train_epoch(epoch, steps_per_epoch, by_epoch)
                if by_epoch and self.lr_scheduler is not None:
                    self.lr_scheduler.step()
                eval_result = None
                if (s.eval_during_train and self.eval_loader is not None
                        and (epoch % max(int(s.eval_interval), 1) == 0 or epoch == s.epochs)):
                    eval_result = self.evaluate(epoch=epoch)
                    last_eval = eval_result
                    top1 = eval_result.get("top1")
                    improved = top1 is not None and top1 > self.best_metric
                    if improved:
                        self.best_metric, self.best_epoch = float(top1), epoch
                # The metrics row goes first: a crash during the saves below resumes from the previous
                # checkpoint, and the resumed run drops and rewrites the rows of the epochs it repeats.
                epoch_time = time.time() - epoch_start
                if self.is_main:
                    metrics_csv.write(epoch, self._last_lr, train_result, eval_result, epoch_time)
                    self._vdl_epoch(epoch, train_result, eval_result)
                if eval_result is not None:
                    if improved:
                        self._save("best_model", epoch, best=True)
                        logger.info(f"[Eval][Epoch {epoch}] new best top-1 {self.best_metric:.5f}, saved "
                                    f"{os.path.join(s.run_dir, 'best_model')}")
                    else:
                        logger.info(f"[Eval][Epoch {epoch}] best top-1 so far {self.best_metric:.5f} "
                                    f"(epoch {self.best_epoch})")
                if s.save_interval and epoch % int(s.save_interval) == 0:
                    self._save(f"epoch_{epoch}", epoch)
                self._save("latest", epoch)
                logger.info(f"[Train][Epoch {epoch}/{s.epochs}] done in {epoch_time:.1f} s: "
                            + _fmt_metrics({f"train_{k}": v for k, v in train_result.items()})
                            + (", " + _fmt_metrics({f"eval_{k}": v for k, v in eval_result.items()})
                               if eval_result else ""))
        except KeyboardInterrupt:
            raise KeyboardInterrupt(self._interrupt_message(epoch)) from None
        if self._vdl_writer is not None:
            self._vdl_writer.close()
        if self.is_main:
            self._plot_curves(os.path.join(run_dir, "metrics.csv"))
        return {"best_metric": self.best_metric, "best_epoch": self.best_epoch, "last_eval": last_eval}

    def _interrupt_message(self, epoch):
        """What Ctrl-C leaves behind and the command that goes on from there (checkpoints are written
        atomically, so whatever is on disk is complete)."""
        if self.last_checkpoint:
            folder = os.path.dirname(os.path.abspath(self.last_checkpoint))
            in_run_dir = folder == os.path.abspath(self.settings.run_dir)
            how = "--resume auto" if in_run_dir else f"-o Global.checkpoints={self.last_checkpoint}"
            return (f"training stopped during epoch {epoch}. Last complete checkpoint: {self.last_checkpoint}. "
                    f"Continue with: python tools/train.py -c <config> {how}")
        left = ckpt.checkpoint_names(self.settings.run_dir) if self.is_main else []
        if left:  # e.g. best_model written, stopped before latest: not resumable, but a new run would be refused
            return (f"training stopped during epoch {epoch}, before the first resumable checkpoint (only "
                    f"{', '.join(left)} in {self.settings.run_dir}). Start again with the same command plus "
                    f"--overwrite (moves these aside)")
        return (f"training stopped during epoch {epoch}, before the first checkpoint: nothing was saved. Start "
                f"again with the same command (without --resume)")

    def _train_epoch(self, epoch, steps_per_epoch, by_epoch):
        s = self.settings
        self.train_loader.set_epoch(epoch)
        self.train_model.train()
        if self.train_metrics is not None:
            self.train_metrics.reset()
        loss_sum, seen = 0.0, 0
        window = {"reader": 0.0, "batch": 0.0, "images": 0, "steps": 0}
        epoch_batch_time, epoch_steps = 0.0, 0
        tic = time.time()
        for iter_id, (images, labels) in enumerate(self.train_loader, 1):
            reader_cost = time.time() - tic
            lr = self.optimizer.get_lr()
            with self._autocast(training=True):
                logits = _logits_of(self.train_model(images))
                loss_dict = self.train_loss(logits, labels)
            loss = loss_dict["loss"]
            loss_value = float(loss)
            self._check_finite(loss_value, epoch, iter_id)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                self.optimizer.step()
            self.optimizer.clear_grad()
            if not by_epoch and self.lr_scheduler is not None:
                self.lr_scheduler.step()
            if self.ema is not None:
                self.ema.update(self.model)
            self.global_step += 1
            self.lr_trace.append((self.global_step, float(lr)))
            self._last_lr = float(lr)

            batch_size = int(images.shape[0])
            loss_sum += loss_value * batch_size
            seen += batch_size
            batch_metrics = self.train_metrics.update(logits.detach(), labels) if self.train_metrics else {}
            batch_cost = time.time() - tic
            window["reader"] += reader_cost
            window["batch"] += batch_cost
            window["images"] += batch_size
            window["steps"] += 1
            epoch_batch_time += batch_cost
            epoch_steps += 1
            if iter_id % max(int(s.print_batch_step), 1) == 0 or iter_id == steps_per_epoch:
                remaining = (s.epochs - epoch) * steps_per_epoch + (steps_per_epoch - iter_id)
                eta = remaining * epoch_batch_time / max(epoch_steps, 1)
                running = self.train_metrics.accumulate() if self.train_metrics else {}
                logger.info(
                    f"[Train][Epoch {epoch}/{s.epochs}][Iter {iter_id}/{steps_per_epoch}] lr: {lr:.6f}, "
                    f"loss: {loss_value:.5f} (avg {loss_sum / seen:.5f}), "
                    + "".join(f"{k}: {v:.5f} (avg {running.get(k, v):.5f}), " for k, v in batch_metrics.items())
                    + f"reader_cost: {window['reader'] / window['steps']:.5f} s, "
                    f"batch_cost: {window['batch'] / window['steps']:.5f} s, "
                    f"ips: {window['images'] / max(window['batch'], 1e-9):.1f} img/s, eta: {_format_eta(eta)}")
                self._vdl_step({"train/loss": loss_value, "train/lr": lr,
                                **{f"train/{k}": v for k, v in batch_metrics.items()}})
                window = {"reader": 0.0, "batch": 0.0, "images": 0, "steps": 0}
            tic = time.time()
        return self._global_metrics(self.train_metrics, loss_sum, seen)

    # ------------------------------------------------------------------ checkpoints
    def _save(self, name, epoch, best=False):
        if not self.is_main:
            return
        s = self.settings
        prefix = os.path.join(self._run_dir(), name)
        if best and self.ema is not None:
            model_state = self.ema.full_state_dict(self.model)
        else:
            model_state = self.model.state_dict()
        opt_state = dict(self.optimizer.state_dict())
        if self.lr_scheduler is not None:
            opt_state["lr_scheduler"] = self.lr_scheduler.state_dict()
        opt_state["param_names"] = ckpt.parameter_names(self.model)
        if self.scaler is not None:
            opt_state["amp_scaler"] = self.scaler.state_dict()
        states = {
            "epoch": epoch,
            # The plan the LR schedule follows: a resume compares it with its own config (plan_changes).
            "epochs": self.settings.epochs,
            "steps_per_epoch": len(self.train_loader),
            "optimizer": s.optimizer_config,
            "global_step": self.global_step,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "rng": get_rng_state(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "config_digest": s.config_digest,
            "arch": s.arch_name,
        }
        ckpt.save_checkpoint(prefix, model_state, opt_state, states)
        if name == "latest" or name.startswith("epoch_"):
            self.last_checkpoint = prefix

    # ------------------------------------------------------------------ evaluation
    @paddle.no_grad()
    def evaluate(self, epoch=None, report=False):
        """Evaluate on the Eval loader; returns {"loss", "top1", ...} over the whole eval set (all ranks).

        With EMA (during training) the EMA weights are evaluated. `report=True` also fills
        `self.confusion` (a ppcls_lite.metric.ConfusionMatrix).
        """
        if self.eval_loader is None:
            raise ValueError("no DataLoader.Eval section in the config: add one to evaluate")
        if self.ema is not None and self.optimizer is not None:
            with self.ema.applied_to(self.model):
                return self._evaluate(epoch, report)
        return self._evaluate(epoch, report)

    eval = evaluate  # the contract's name: Engine.train() / Engine.eval() / Engine.infer()

    def _evaluate(self, epoch, report):
        s = self.settings
        model = self.model
        was_training = model.training
        model.eval()
        if self.eval_metrics is not None:
            self.eval_metrics.reset()
        self.confusion = None
        if report:
            from ppcls_lite.metric import ConfusionMatrix

            self.confusion = ConfusionMatrix(s.class_num)
        real = None
        if self.world_size > 1:
            sampler = getattr(self.eval_loader, "batch_sampler", None)  # the built sampler knows best
            shuffle = bool(getattr(sampler, "shuffle", s.eval_shuffle))
            batch_size = int(getattr(sampler, "batch_size", None) or s.eval_batch_size or 1)
            if shuffle:
                logger.warning("DataLoader.Eval.sampler.shuffle is true: padded duplicate samples cannot be "
                               "removed, eval metrics over several processes are approximate")
            else:
                real = real_samples_on_rank(len(self.eval_loader.dataset), self.world_size, self.rank, batch_size)
        loss_sum, count, seen_local = 0.0, 0, 0
        start = time.time()
        total_iters = require_batches(self.eval_loader, "Eval")
        for iter_id, (images, labels) in enumerate(self.eval_loader, 1):
            with self._autocast(training=False):
                logits = _logits_of(model(images)).astype("float32")
            batch = int(images.shape[0])
            keep = batch if real is None else max(min(batch, real - seen_local), 0)
            seen_local += batch
            if keep < batch:
                logits, labels = logits[:keep], labels[:keep]
            if keep == 0:
                continue
            if self.eval_loss is not None:
                loss_sum += float(self.eval_loss(logits, labels)["loss"]) * keep
            count += keep
            batch_metrics = self.eval_metrics.update(logits, labels) if self.eval_metrics else {}
            if self.confusion is not None:
                self.confusion.update(logits.numpy(), labels.numpy())
            if iter_id % max(int(s.print_batch_step), 1) == 0:
                logger.info(f"[Eval][Epoch {epoch or 0}][Iter {iter_id}/{total_iters}] " + _fmt_metrics(batch_metrics))
        result = self._global_metrics(self.eval_metrics, loss_sum, count)
        if self.confusion is not None and self.world_size > 1:
            self.confusion.matrix = self._all_reduce_sum({"cm": self.confusion.matrix})["cm"].astype(np.int64)
        logger.info(f"[Eval][Epoch {epoch or 0}][Avg] {_fmt_metrics(result)} ({count} images on this rank, "
                    f"{time.time() - start:.1f} s)")
        if was_training:
            model.train()
        return result

    def evaluate_report(self, label_names=None, allow_random=False, report=False):
        """tools/eval.py: refuse random weights unless allowed; with `report` write eval_report/ files."""
        if not self.weights_loaded and not allow_random:
            raise ValueError("no trained weights to evaluate: set -o Global.pretrained_model=PREFIX (e.g. "
                             f"{os.path.join(self.settings.run_dir, 'best_model')}) or Global.checkpoints; pass "
                             "--allow-random to score the randomly initialised model anyway")
        result = self.evaluate(report=report)
        if report and self.is_main:
            result["report_dir"] = self._write_report(label_names)
        return result

    def _write_report(self, label_names):
        """eval_report/: report.csv + report.txt (per-class P/R/F1), confusion_matrix.csv and .png."""
        from ppcls_lite.utils.plot import plot_confusion_matrix, write_classification_report

        out_dir = os.path.join(self._run_dir(), "eval_report")
        names = list(label_names) if label_names else self._label_names()
        report = write_classification_report(self.confusion.matrix, names, out_dir)
        np.savetxt(os.path.join(out_dir, "confusion_matrix.csv"), self.confusion.matrix, fmt="%d", delimiter=",")
        plot_confusion_matrix(self.confusion.matrix, names, os.path.join(out_dir, "confusion_matrix.png"))
        logger.info("per-class report:\n" + report["txt"].read_text())
        logger.info(f"eval report written to {out_dir}")
        return out_dir

    def _label_names(self):
        """Class names for reports: the Eval dataset's, else Infer.PostProcess.class_id_map_file's, else ids."""
        from ppcls_lite.engine.postprocess import read_class_id_map, resolve_class_id_map_file

        n = self.settings.class_num
        names = getattr(getattr(self.eval_loader, "dataset", None), "label_names", None)
        if names and len(names) == n:
            return list(names)
        try:
            path = resolve_class_id_map_file(self.settings.label_map_file)
            mapping = read_class_id_map(path) if path else {}
        except (OSError, ValueError):
            mapping = {}
        if mapping and all(i in mapping for i in range(n)):
            return [mapping[i] for i in range(n)]
        return [str(i) for i in range(n)]

    # ------------------------------------------------------------------ inference
    @paddle.no_grad()
    def infer(self, output=None):
        """Classify Infer.infer_imgs (an image, a folder searched recursively, or a `path [label]` list file).

        Returns a list of {"file_name", "class_ids", "scores" (softmax probabilities), "label_names"}; prints one
        JSON line per image and writes `output` (.csv or .jsonl) when given. An input that cannot be read is
        reported with its path and reason and listed in `self.infer_failures`; the others are still predicted.
        """
        from ppcls_lite import pipeline

        s = self.settings
        if output:
            pipeline.check_output_path(output)
        if not self.weights_loaded:
            logger.warning("no weights loaded (Global.pretrained_model is not set): predictions are random")
        files = collect_infer_inputs(s.infer_imgs)
        self.model.eval()

        def probabilities(tensors):
            with self._autocast(training=False):
                logits = _logits_of(self.model(paddle.to_tensor(pipeline.stack_batch(tensors)))).astype("float32")
            return F.softmax(logits, axis=-1).numpy()

        loaded = pipeline.load_each(files, lambda p: pipeline.load_file(p, self.infer_ops, pipeline.to_chw_float32))
        results, self.infer_failures = pipeline.predict_loaded(
            loaded, probabilities, self.postprocess, max(int(s.infer_batch_size or 1), 1),
            on_result=lambda r: print(pipeline.format_line(r), flush=True),
            on_failure=lambda path, reason: print(pipeline.format_failure(path, reason), file=sys.stderr, flush=True))
        if output:
            pipeline.write_results(results, output)
            logger.info(f"wrote {len(results)} predictions to {output}")
        if self.infer_failures:
            print(pipeline.format_summary(self.infer_failures, len(files)), file=sys.stderr, flush=True)
        return results

    # ------------------------------------------------------------------ logging outputs
    def _vdl(self):
        if not self.settings.use_visualdl or not self.is_main:
            return None
        if self._vdl_writer is None:
            from visualdl import LogWriter

            self._vdl_writer = LogWriter(logdir=os.path.join(self._run_dir(), "vdl"))
        return self._vdl_writer

    def _vdl_step(self, scalars):
        writer = self._vdl()
        if writer is not None:
            for tag, value in scalars.items():
                writer.add_scalar(tag=tag, step=self.global_step, value=float(value))

    def _vdl_epoch(self, epoch, train_result, eval_result):
        writer = self._vdl()
        if writer is None:
            return
        for k, v in train_result.items():
            writer.add_scalar(tag=f"train_epoch/{k}", step=epoch, value=float(v))
        for k, v in (eval_result or {}).items():
            writer.add_scalar(tag=f"eval/{k}", step=epoch, value=float(v))

    def _plot_curves(self, csv_path):
        png = os.path.join(os.path.dirname(csv_path), "training_curves.png")
        try:
            from ppcls_lite.utils.plot import plot_training_curves
        except ImportError as exc:
            logger.warning(f"training_curves.png not written: ppcls_lite.utils.plot is unavailable ({exc})")
            return
        try:
            plot_training_curves(csv_path, png)
            logger.info(f"training curves: {png}")
        except Exception as exc:  # a plotting problem must not fail a finished training run
            logger.warning(f"could not plot {csv_path}: {type(exc).__name__}: {exc}")


class MetricsCSV:
    """Appends one row per epoch to metrics.csv (columns documented in the module docstring)."""

    def __init__(self, path, start_epoch, columns):
        self.path = path
        self.columns = list(columns)
        rows = []
        if os.path.exists(path) and start_epoch > 1:  # resumed: keep the rows of the epochs already done
            with open(path, newline="", encoding="utf-8") as f:
                rows = [r for r in csv.DictReader(f) if r.get("epoch") and int(r["epoch"]) < start_epoch]
        self._rewrite(rows)

    def _rewrite(self, rows):
        tmp = self.path + ".tmp"
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.path)

    def write(self, epoch, lr, train_result, eval_result, epoch_time):
        row = {"epoch": epoch, "lr": f"{lr:.8g}"}
        row.update({f"train_{k}": f"{v:.6f}" for k, v in train_result.items()})
        row.update({f"eval_{k}": f"{v:.6f}" for k, v in (eval_result or {}).items()})
        row["epoch_time_s"] = f"{epoch_time:.2f}"
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore").writerow(row)



def collect_infer_inputs(infer_imgs):
    """Files for Infer.infer_imgs: one image, a folder (recursive, image extensions, sorted) or a list file
    (`path [label]` per line, paths relative to the list file's folder)."""
    from ppcls_lite.pipeline import collect_inputs

    return collect_inputs(infer_imgs, what="Infer.infer_imgs")


def write_predictions(results, output):
    """Write predictions as CSV (lists joined by spaces) or JSON lines, chosen by the file extension."""
    from ppcls_lite.pipeline import write_results

    write_results(results, output)
