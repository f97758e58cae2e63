"""The Engine: train / eval / infer over objects built by `build_engine` (see `__init__.py`).

The engine never reads the raw config: it gets the built model, loaders, losses, metrics, optimizer and
LR scheduler, plus an `EngineSettings` (Global/AMP/EMA/Infer values). `train()` reads top-down: restore the
`TrainState` (checkpoint.py), then per epoch `train_one_epoch` and `evaluate` (loop.py), the `RunLog` row
(run_log.py) and the checkpoint saves.

Training outputs, all in `<Global.output_dir>/<Arch.name>/` and written by rank 0 only:
- `config.yaml` (the final config; when a resume changes it, the earlier one is kept as
  `config.<timestamp>.yaml`, see `keep_config` in `run_dir.py`), `train.log` (the log lines, appended on resume);
- checkpoints `epoch_N`, `latest`, `best_model` (see `checkpoint.py` for the trio);
- `metrics.csv` (one row per finished epoch, columns in `run_log.py`) and `training_curves.png`;
- VisualDL logs in `vdl/` when `Global.use_visualdl` is true.

Behaviours worth knowing:
- Determinism/resume: `Global.seed` seeds python/numpy/paddle; each epoch calls `train_loader.set_epoch(epoch)`
  (data order and augmentation depend on (seed, epoch) only); the python/numpy/paddle RNG states are saved
  in `.pdstates` and restored on resume, so dropout continues as in an uninterrupted run.
- Resume vs extend: a changed Global.epochs / Optimizer section re-plans the LR schedule (`resume_plan.py`).
- Empty loaders: a Train or Eval loader with no batches is an error (`require_batches`) before any metric is
  computed, written or saved as best_model.
- Ctrl-C, SIGTERM, SIGHUP (`stopping.py`): training stops at the next safe point (a second signal: at once); one
  line names the last complete checkpoint and the command with `--resume auto`, or says nothing was saved; exit
  status 130 / 143 / 129.
- One writer per run folder: `build_engine` takes the run's lock (`run_lock.py`); `train()` gives it up at its end.
- Images left out by `skip_bad_images` are counted in one line per loader at the end of training.
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
- AMP: see `amp.py` (GPU/XPU only; switched off with a warning on CPU).
"""
import os
import signal
import time
import weakref
from typing import Any, Callable, Dict, List, Optional

import paddle

from ppcls_lite.arch import is_retrieval_model
from ppcls_lite.engine import checkpoint as ckpt
from ppcls_lite.engine.amp import AmpContext
from ppcls_lite.engine.distributed import any_rank
from ppcls_lite.engine.inference import predict_images
from ppcls_lite.engine.loop import NonFiniteLossError, evaluate, require_batches, train_one_epoch
from ppcls_lite.engine.reports import class_names
from ppcls_lite.engine.task_reports import report_collector, write_reports
from ppcls_lite.engine.resume_plan import continue_lr_plan
from ppcls_lite.engine.retrieval import RetrievalEvalData, evaluate_retrieval
from ppcls_lite.engine.run_log import RunLog, log_model_size, metric_keys
from ppcls_lite.engine.settings import EngineSettings
from ppcls_lite.engine.stopping import StopRequest, interrupt_message
from ppcls_lite.metric import ConfusionMatrix
from ppcls_lite.utils import logger
from ppcls_lite.utils.cli import Interrupted
from ppcls_lite.utils.ema import ModelEMA
from ppcls_lite.utils.save_load import load_pretrained

__all__ = ["Engine", "EngineSettings", "NonFiniteLossError", "require_batches"]


class Engine:
    """Train / evaluate / infer one model with the objects `build_engine` built for a mode."""

    def __init__(self, settings: EngineSettings, model: paddle.nn.Layer, *, train_loader: Any = None,
                 eval_loader: Any = None, train_loss: Any = None, eval_loss: Any = None, train_metrics: Any = None,
                 eval_metrics: Any = None, optimizer: Any = None, lr_scheduler: Any = None,
                 infer_ops: Optional[list] = None, postprocess: Any = None):
        self.settings = settings
        self.train_loader, self.eval_loader = train_loader, eval_loader
        self.train_loss, self.eval_loss = train_loss, eval_loss
        self.train_metrics, self.eval_metrics = train_metrics, eval_metrics
        self.infer_ops, self.postprocess = infer_ops, postprocess
        self.world_size = paddle.distributed.get_world_size()
        self.rank = paddle.distributed.get_rank()
        self.is_main = self.rank == 0
        self.last_checkpoint: Optional[str] = None
        self.weights_loaded = settings.arch_pretrained
        self.confusion: Optional[ConfusionMatrix] = None
        self.report_scores: Any = None  # eval --report of a yes/no model: ScoreHistogram; multi-label: ATTRMetric
        self.infer_failures: list = []
        self._release_lock: Callable[[], Any] = lambda: None

        a = settings.AMP
        self.amp = AmpContext(a.use_amp, a.level, settings.Global.device, a.use_fp16_test, a.use_promote)
        model, optimizer = self.amp.prepare(model, optimizer, a.scale_loss, a.use_dynamic_loss_scaling)
        ema = ModelEMA(model, settings.EMA.decay) if settings.EMA.decay else None
        self.state = ckpt.TrainState(model, optimizer, lr_scheduler, self.amp.scaler, ema)
        self._load_weights()
        self.start_epoch = self.state.epoch + 1  # the first epoch this engine trains (after a resume: the next)
        # The model used for the forward pass in training: to_static and/or DataParallel wrappers.
        self.train_model = self.model
        if settings.Global.to_static and optimizer is not None:
            self.train_model = self._to_static(self.model)
        if self.world_size > 1 and optimizer is not None:
            self.train_model = paddle.DataParallel(self.train_model)

    # The plain Layer (its state_dict is what checkpoints hold) and the other parts of the TrainState.
    model = property(lambda self: self.state.model)
    optimizer = property(lambda self: self.state.optimizer)
    lr_scheduler = property(lambda self: self.state.lr_scheduler)
    ema = property(lambda self: self.state.ema)
    scaler = property(lambda self: self.amp.scaler)
    amp_enabled = property(lambda self: self.amp.enabled)
    global_step = property(lambda self: self.state.global_step)
    best_metric = property(lambda self: self.state.best_metric)

    def _to_static(self, model: paddle.nn.Layer) -> paddle.nn.Layer:
        shape = list(self.settings.Global.image_shape)
        # H and W are left open: the same config is used at 32 px (quick start) and 224 px (recipes).
        spec = [paddle.static.InputSpec(shape=[None, shape[0], None, None], dtype="float32", name="x")]
        if getattr(model, "takes_labels", False):  # a RecModel's margin head reads the labels
            spec.append(paddle.static.InputSpec(shape=[None], dtype="int64", name="label"))
        logger.info("Global.to_static: training with a static graph (paddle.jit.to_static, full_graph=True)")
        return paddle.jit.to_static(model, input_spec=spec, full_graph=True)

    def _load_weights(self) -> None:
        """Resume the TrainState from Global.checkpoints, or load Global.pretrained_model weights only."""
        s, g = self.settings, self.settings.Global
        if g.checkpoints:
            states = self.state.restore(g.checkpoints, s.config_digest,
                                        f"Arch.name={s.arch_name} (class_num={s.class_num})",
                                        steps_per_epoch=len(self.train_loader) if self.train_loader else None)
            if self.optimizer is not None:
                continue_lr_plan(self.lr_scheduler, states, checkpoint=g.checkpoints, epochs=g.epochs,
                                 steps_per_epoch=len(self.train_loader), optimizer_config=s.optimizer_config,
                                 global_step=self.global_step)
            self.last_checkpoint = g.checkpoints
            self.weights_loaded = True
            logger.info(f"resumed from {g.checkpoints} (finished epoch {states['epoch']}, step {self.global_step}, "
                        f"best {self.best_key} {self.state.best_metric:.5f} at epoch {self.state.best_epoch})")
        elif g.pretrained_model:
            report = load_pretrained(self.model, g.pretrained_model)
            self.weights_loaded = True
            reinit = [m[0] if isinstance(m, (list, tuple)) else m for m in report.get("mismatched", [])]
            reinit += list(report.get("missing", []))
            logger.info(f"loaded {len(report.get('loaded', []))} tensors from {g.pretrained_model}"
                        + (f"; kept the fresh initialisation of {len(reinit)} tensors not loaded: {reinit}"
                           if reinit else ""))
            if self.ema is not None:
                self.state.ema = ModelEMA(self.model, s.EMA.decay)  # start the average at the loaded weights

    def hold_run_lock(self, lock: Any) -> None:
        """Keep the run folder's lock (run_lock.RunLock) until train() ends or this engine is collected."""
        self._release_lock = weakref.finalize(self, lock.release)

    def _run_dir(self) -> str:
        os.makedirs(self.settings.run_dir, exist_ok=True)
        return self.settings.run_dir

    # ------------------------------------------------------------------ training
    def train(self) -> Dict[str, Any]:
        """Train from `start_epoch` to `Global.epochs`; returns {"best_metric", "best_epoch", "last_eval"}."""
        s, g, state = self.settings, self.settings.Global, self.state
        if self.optimizer is None or self.train_loader is None:
            raise ValueError("this engine was built without training objects; use build_engine(config, 'train')")
        steps_per_epoch = require_batches(self.train_loader, "Train")
        evaluating = g.eval_during_train and self.eval_loader is not None
        if evaluating:
            require_batches(self.eval_loader, "Eval")  # before metrics.csv is touched
        run_dir = self._run_dir() if self.is_main else s.run_dir
        if self.is_main:
            logger.init_logger(os.path.join(run_dir, "train.log"))
            for name in ckpt.remove_stale_temp_files(run_dir):
                logger.warning(f"removed {name}, left by an interrupted checkpoint save")
        state.apply_rng()  # after all building, so nothing consumes the restored RNG before the loop
        log_model_size(self.model, self.settings.arch_name, self.world_size, self.settings.Global.device)
        start_epoch = self.start_epoch
        if start_epoch > g.epochs:
            logger.warning(f"nothing to train: the checkpoint already finished epoch {start_epoch - 1} "
                           f"and Global.epochs={g.epochs}")
        run_log = RunLog(run_dir, g.epochs, steps_per_epoch, g.print_batch_step, g.use_visualdl, self.is_main)
        run_log.open_metrics_csv(start_epoch, metric_keys(self.train_metrics),
                                 metric_keys(self.eval_metrics) if evaluating else None)
        by_epoch = bool(getattr(self.lr_scheduler, "by_epoch", False))
        last_eval, epoch, finished, stop = None, start_epoch, False, StopRequest()
        try:
            with stop.installed():
                for epoch in range(start_epoch, g.epochs + 1):
                    finished = False
                    last_eval = self._train_epoch(epoch, run_log, evaluating, by_epoch, stop) or last_eval
                    finished = True
                    if any_rank(stop.requested(), self.world_size):  # the saves are complete: a safe point
                        raise KeyboardInterrupt
            run_log.close()
        except (KeyboardInterrupt, SystemError, RuntimeError) as exc:
            # A data-loader worker ended by the same signal (`kill -- -PGID`) reaches here as paddle's SystemError
            # (or the loader's RuntimeError about it): part of the stop, not a fault of its own.
            if not isinstance(exc, KeyboardInterrupt) and not stop.requested():
                raise
            signum = stop.signum or getattr(exc, "signum", signal.SIGINT)
            raise Interrupted(interrupt_message(self.last_checkpoint, s.run_dir, epoch, finished, self.is_main),
                              signum) from None
        finally:
            self._release_lock()  # the run folder is free for the next writer
        self._log_skipped()
        return {"best_metric": state.best_metric, "best_epoch": state.best_epoch, "last_eval": last_eval}

    def _train_epoch(self, epoch: int, run_log: RunLog, evaluating: bool, by_epoch: bool,
                     stop: StopRequest) -> Optional[Dict[str, float]]:
        """Train one epoch, evaluate when due, write its metrics row and checkpoints; returns the eval result."""
        s, g, state = self.settings, self.settings.Global, self.state
        epoch_start = time.time()
        train_result = train_one_epoch(state, self.train_model, self.train_loader, self.train_loss,
                                       self.train_metrics, self.amp, run_log, epoch, world_size=self.world_size,
                                       by_epoch=by_epoch, last_checkpoint=self.last_checkpoint, stop=stop)
        if by_epoch and self.lr_scheduler is not None:
            self.lr_scheduler.step()
        eval_result, improved = None, False
        if evaluating and g.evaluates_after(epoch):
            eval_result = self.evaluate(epoch=epoch, stop=stop)
            improved = self._is_better(eval_result)
            if improved:
                state.best_metric, state.best_epoch = float(eval_result[self.best_key]), epoch
        state.epoch = epoch
        # The metrics row goes first: a crash during the saves below resumes from the previous
        # checkpoint, and the resumed run drops and rewrites the rows of the epochs it repeats.
        epoch_time = time.time() - epoch_start
        run_log.end_epoch(epoch, train_result, eval_result, epoch_time)
        if eval_result is not None:
            if improved:
                self._save("best_model", epoch, best=True)
                logger.info(f"[Eval][Epoch {epoch}] new best {self.best_key} {state.best_metric:.5f}, saved "
                            f"{os.path.join(s.run_dir, 'best_model')}")
            else:
                logger.info(f"[Eval][Epoch {epoch}] best {self.best_key} so far {state.best_metric:.5f} "
                            f"(epoch {state.best_epoch})")
        if g.save_interval and epoch % int(g.save_interval) == 0:
            self._save(f"epoch_{epoch}", epoch)
        self._save("latest", epoch)
        run_log.epoch_line(epoch, train_result, eval_result, epoch_time)
        return eval_result

    def _log_skipped(self) -> None:
        """The run's summary of images left out by skip_bad_images, one line per loader."""
        for loader in (self.train_loader, self.eval_loader):
            line = loader.skip_summary() if hasattr(loader, "skip_summary") else ""
            if line:
                logger.warning(line)

    @property
    def best_key(self) -> str:
        """The Eval result that picks best_model: the first Eval metric's main result (`top1` for TopkAcc)."""
        primary = self.eval_metrics.primary if self.eval_metrics is not None else None
        return primary[0] if primary else "top1"

    def _is_better(self, eval_result: Dict[str, float]) -> bool:
        """Whether `eval_result` beats the best so far (none yet: best_epoch 0)."""
        value = eval_result.get(self.best_key)
        if value is None or self.state.best_epoch == 0:
            return value is not None
        primary = self.eval_metrics.primary if self.eval_metrics is not None else None
        higher_is_better = primary[1] if primary else True
        return value > self.state.best_metric if higher_is_better else value < self.state.best_metric

    def _save(self, name: str, epoch: int, best: bool = False) -> None:
        """Save the TrainState as `<run dir>/<name>` (rank 0); `best` writes the EMA weights when EMA is on."""
        if not self.is_main:
            return
        s = self.settings
        prefix = os.path.join(self._run_dir(), name)
        self.state.epoch = epoch
        # The plan the LR schedule follows: a resume compares it with its own config (resume_plan.py).
        plan = {"epochs": s.Global.epochs, "steps_per_epoch": len(self.train_loader), "optimizer": s.optimizer_config,
                "config_digest": s.config_digest, "arch": s.arch_name}
        self.state.save(prefix, plan, best=best)
        if name == "latest" or name.startswith("epoch_"):
            self.last_checkpoint = prefix

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, epoch: Optional[int] = None, report: bool = False,
                 stop: Optional[StopRequest] = None) -> Dict[str, float]:
        """Evaluate on the Eval loader; returns {"loss", "top1", ...} over the whole eval set (all ranks).

        With EMA (during training) the EMA weights are evaluated. `report=True` also fills
        `self.confusion` (a ppcls_lite.metric.ConfusionMatrix).
        """
        if self.eval_loader is None:
            raise ValueError("no DataLoader.Eval section in the config: add one to evaluate")
        s = self.settings
        retrieval = isinstance(self.eval_loader, RetrievalEvalData)
        if report and retrieval:
            raise ValueError("--report (per-class precision/recall, confusion matrix) is for classification; "
                             "retrieval eval prints its metrics (Recallk, mAP, ...) only")
        self.confusion = ConfusionMatrix(s.class_num) if report and not s.multilabel else None
        self.report_scores = report_collector(s.class_num, s.multilabel) if report else None

        def run() -> Dict[str, float]:
            if retrieval:  # Global.eval_mode: retrieval (retrieval.py)
                return evaluate_retrieval(self.model, self.eval_loader, self.eval_metrics, self.amp, s.Global,
                                          epoch=epoch, world_size=self.world_size, rank=self.rank,
                                          print_batch_step=s.Global.print_batch_step)
            return evaluate(self.model, self.eval_loader, self.eval_loss, self.eval_metrics, self.amp, epoch=epoch,
                            print_batch_step=s.Global.print_batch_step, world_size=self.world_size, rank=self.rank,
                            eval_batch_size=s.eval_batch_size, eval_shuffle=s.eval_shuffle, confusion=self.confusion,
                            scores=self.report_scores, stop=stop)

        if self.ema is not None and self.optimizer is not None:
            with self.ema.applied_to(self.model):
                return run()
        return run()

    eval = evaluate  # the contract's name: Engine.train() / Engine.eval() / Engine.infer()

    def evaluate_report(self, label_names: Optional[List[str]] = None, allow_random: bool = False,
                        report: bool = False) -> Dict[str, Any]:
        """tools/eval.py: refuse random weights unless allowed; with `report` write eval_report/ files."""
        if not self.weights_loaded and not allow_random:
            raise ValueError("no trained weights to evaluate: set -o Global.pretrained_model=PREFIX (e.g. "
                             f"{os.path.join(self.settings.run_dir, 'best_model')}) or Global.checkpoints; pass "
                             "--allow-random to score the randomly initialised model anyway")
        result = self.evaluate(report=report)
        self._log_skipped()
        if report and self.is_main:
            s = self.settings
            names = list(label_names or s.Infer.binary_names or class_names(
                getattr(self.eval_loader, "dataset", None), s.class_num, s.Infer.label_map_file))
            result["report_dir"] = write_reports(self.confusion, self.report_scores, names,
                                                 os.path.join(self._run_dir(), "eval_report"))
        return result

    # ------------------------------------------------------------------ inference
    def infer(self, output: Optional[str] = None) -> List[dict]:
        """Classify Infer.infer_imgs (an image, a folder searched recursively, or a `path [label]` list file).

        Returns what Infer.PostProcess makes of the scores (softmax; sigmoid for multi-label models), e.g.
        {"file_name", "class_ids", "scores", "label_names"}, or a retrieval model's {"file_name", "features"}; prints
        one JSON line per image and writes `output` (.csv or .jsonl) when given. An input that cannot be read is
        reported with its path and reason and listed in `self.infer_failures`; the others are still predicted.
        """
        infer = self.settings.Infer
        results, self.infer_failures = predict_images(
            self.model, self.infer_ops, self.postprocess, infer.infer_imgs, infer.batch_size,
            lambda: self.amp.autocast(training=False), output=output, weights_loaded=self.weights_loaded,
            activation=infer.activation, encoding=infer.encoding, features=is_retrieval_model(self.model))
        return results

