"""The training loop's two plain functions: `train_one_epoch` and `evaluate`.

Both take the built objects (see `build_engine`) and return the epoch's or eval set's metrics over all ranks.
"""
import math
import time
from typing import Any, Dict, Optional

import numpy as np
import paddle

from ppcls_lite.arch.outputs import logits_of
from ppcls_lite.engine.amp import AmpContext
from ppcls_lite.engine.checkpoint import TrainState
from ppcls_lite.engine.distributed import all_reduce_sum, any_rank_each, global_metrics, real_samples_on_rank
from ppcls_lite.engine.run_log import RunLog, StepRecord, format_metrics
from ppcls_lite.engine.stopping import StopRequest
from ppcls_lite.utils import logger


def map_tensors(outputs: Any, fn: Any) -> Any:
    """`fn` applied to every tensor of a model output: a tensor, or a (nested) dict of them (return_patterns,
    a DistillationModel's {sub-model name: output})."""
    if isinstance(outputs, dict):  # type() keeps a DistillationOutput's deployed sub-model
        return type(outputs)((k, map_tensors(v, fn)) for k, v in outputs.items())
    return fn(outputs)


class NonFiniteLossError(ValueError):
    """The training loss became NaN or Inf."""


def require_batches(loader: Any, section: str) -> int:
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


def check_finite(loss_value: float, epoch: int, iter_id: int, global_step: int, world_size: int,
                 last_checkpoint: Optional[str], stop: Optional[StopRequest] = None) -> None:
    """Stop before the update when the loss is NaN/Inf on any rank (the others would hang in the all-reduce), or
    a stop signal arrived on any rank (KeyboardInterrupt: all ranks leave at this same step)."""
    nonfinite, stopping = any_rank_each([not math.isfinite(loss_value), stop is not None and stop.requested()],
                                        world_size)
    if stopping and not nonfinite:
        raise KeyboardInterrupt  # the engine says what was saved and how to go on
    if not nonfinite:
        return
    last = (f"{last_checkpoint} (resume with -o Global.checkpoints={last_checkpoint})"
            if last_checkpoint else "none (no checkpoint was saved yet)")
    raise NonFiniteLossError(
        f"training loss is {loss_value} at epoch {epoch}, iteration {iter_id} (global step "
        f"{global_step + 1}); stopped before updating the weights. Last good checkpoint: {last}. "
        f"Lower Optimizer.lr.learning_rate, add warm-up (Optimizer.lr.warmup_epoch) or check the data.")


def train_one_epoch(state: TrainState, train_model: paddle.nn.Layer, loader: Any, loss_fn: Any,
                    metrics: Optional[Any], amp: AmpContext, run_log: RunLog, epoch: int, *, world_size: int = 1,
                    by_epoch: bool = False, last_checkpoint: Optional[str] = None,
                    stop: Optional[StopRequest] = None) -> Dict[str, float]:
    """One pass over the Train loader: forward, loss, backward, optimizer and per-step LR step, EMA update.
    Returns {"loss", <metric>...} of the epoch over all ranks. A `stop` request ends it before a step's update."""
    loader.set_epoch(epoch)  # data order and augmentation depend on (seed, epoch) only
    train_model.train()
    if metrics is not None:
        metrics.reset()
    run_log.start_epoch()
    loss_sum, seen = 0.0, 0
    takes_labels = getattr(state.model, "takes_labels", False)  # a RecModel's margin head needs them
    tic = time.time()
    for iter_id, (images, labels) in enumerate(loader, 1):
        reader_cost = time.time() - tic
        lr = state.optimizer.get_lr()
        with amp.autocast(training=True):
            # The whole output goes to the losses and metrics: each picks what it reads (logits, a sub-model's
            # output of a DistillationModel, features).
            outputs = train_model(images, labels) if takes_labels else train_model(images)
            loss = loss_fn(outputs, labels)["loss"]
        loss_value = float(loss)
        check_finite(loss_value, epoch, iter_id, state.global_step, world_size, last_checkpoint, stop)
        amp.backward_and_step(loss, state.optimizer)
        state.optimizer.clear_grad()
        if not by_epoch and state.lr_scheduler is not None:
            state.lr_scheduler.step()
        if state.ema is not None:
            state.ema.update(state.model)
        state.global_step += 1

        batch_size = int(images.shape[0])
        loss_sum += loss_value * batch_size
        seen += batch_size
        batch_metrics = metrics.update(map_tensors(outputs, lambda t: t.detach()), labels) if metrics else {}
        record = StepRecord(epoch=epoch, iter_id=iter_id, global_step=state.global_step, lr=float(lr),
                            loss=loss_value, loss_avg=loss_sum / seen, batch_metrics=batch_metrics,
                            reader_cost=reader_cost, batch_cost=time.time() - tic, batch_size=batch_size)
        run_log.step(record, metrics)
        tic = time.time()
    return global_metrics(metrics, loss_sum, seen, world_size)


@paddle.no_grad()
def evaluate(model: paddle.nn.Layer, loader: Any, loss_fn: Optional[Any], metrics: Optional[Any], amp: AmpContext,
             *, epoch: Optional[int] = None, print_batch_step: int = 10, world_size: int = 1, rank: int = 0,
             eval_batch_size: Optional[int] = None, eval_shuffle: bool = False,
             confusion: Optional[Any] = None, stop: Optional[StopRequest] = None) -> Dict[str, float]:
    """Loss and metrics of `model` over the whole Eval set (all ranks; DistributedBatchSampler padding dropped);
    `confusion` (a ConfusionMatrix), when given, is filled too. A `stop` request ends it after a batch (one
    process; with several, the training loop stops them all at its next step)."""
    was_training = model.training
    model.eval()
    if metrics is not None:
        metrics.reset()
    real = None
    if world_size > 1:
        sampler = getattr(loader, "batch_sampler", None)  # the built sampler knows best
        shuffle = bool(getattr(sampler, "shuffle", eval_shuffle))
        batch_size = int(getattr(sampler, "batch_size", None) or eval_batch_size or 1)
        if shuffle:
            logger.warning("DataLoader.Eval.sampler.shuffle is true: padded duplicate samples cannot be "
                           "removed, eval metrics over several processes are approximate")
        else:
            real = real_samples_on_rank(len(loader.dataset), world_size, rank, batch_size)
    loss_sum, count, seen_local = 0.0, 0, 0
    start = time.time()
    total_iters = require_batches(loader, "Eval")
    for iter_id, (images, labels) in enumerate(loader, 1):
        if stop is not None and world_size == 1 and stop.requested():
            raise KeyboardInterrupt
        with amp.autocast(training=False):
            outputs = map_tensors(model(images), lambda t: t.astype("float32"))
        batch = int(images.shape[0])
        keep = batch if real is None else max(min(batch, real - seen_local), 0)
        seen_local += batch
        if keep < batch:
            outputs, labels = map_tensors(outputs, lambda t: t[:keep]), labels[:keep]
        if keep == 0:
            continue
        if loss_fn is not None:
            loss_sum += float(loss_fn(outputs, labels)["loss"]) * keep
        count += keep
        batch_metrics = metrics.update(outputs, labels) if metrics else {}
        if confusion is not None:
            confusion.update(logits_of(outputs).numpy(), labels.numpy())
        if iter_id % max(int(print_batch_step), 1) == 0:
            logger.info(f"[Eval][Epoch {epoch or 0}][Iter {iter_id}/{total_iters}] " + format_metrics(batch_metrics))
    result = global_metrics(metrics, loss_sum, count, world_size)
    if confusion is not None and world_size > 1:
        confusion.matrix = all_reduce_sum({"cm": confusion.matrix}, world_size)["cm"].astype(np.int64)
    logger.info(f"[Eval][Epoch {epoch or 0}][Avg] {format_metrics(result)} ({count} images on this rank, "
                f"{time.time() - start:.1f} s)")
    if was_training:
        model.train()
    return result
