"""Engine package: `build_engine(config, mode)` turns a config into built objects and an `Engine`.

This is the only place that reads the raw config for training/eval/infer: it calls the section builders
(`build_model`, `build_dataloader`, `build_loss`, `build_metrics`, `build_optimizer`, `create_operators`,
`build_postprocess`) and hands their results plus an `EngineSettings` to `Engine`.

Process setup done here, in this order: device (`Global.device`), the pixel limit, Paddle's CPU threads
(`Global.cpu_threads`, in every rank; logged once), data-parallel init when launched with
`python -m paddle.distributed.launch` (world size > 1: `paddle.distributed.init_parallel_env()`, gloo on
CPU, NCCL on GPU), seeding (`Global.seed`), then the builders.

Run folders are protected before anything is written: one writer per run folder (`run_lock.py`, taken by rank 0
first), then `protect_run_dir` and `keep_config` (`run_dir.py`).
With `Global.eval_mode: retrieval` the Eval objects are the query/gallery loaders and retrieval metrics
(`retrieval.py`); a retrieval model (RecModel, `infer_output_key: features`) infers embeddings.
"""
import os
from typing import Any

import paddle

from ppcls_lite.arch import build_model, is_retrieval_model
from ppcls_lite.config import print_config
from ppcls_lite.data import build_dataloader, build_dataset, label_counts
from ppcls_lite.data.preprocess import create_operators
from ppcls_lite.engine.engine import Engine
from ppcls_lite.engine.loop import NonFiniteLossError, require_batches
from ppcls_lite.engine.retrieval import build_retrieval_data
from ppcls_lite.engine.run_dir import RunDirError, check_dataset_present, keep_config, protect_run_dir
from ppcls_lite.engine.run_lock import RunLockedError, acquire_for
from ppcls_lite.engine.settings import EngineSettings, build_settings, resolve_checkpoints
from ppcls_lite.engine.task import infer_section
from ppcls_lite.loss import build_loss
from ppcls_lite.metric import build_metrics
from ppcls_lite.optimizer import build_optimizer
from ppcls_lite.pipeline import Embedding, Topk, build_postprocess, set_max_image_pixels
from ppcls_lite.slim import apply_slim
from ppcls_lite.utils import logger
from ppcls_lite.utils.device import set_device
from ppcls_lite.utils.seeding import seed_everything
from ppcls_lite.utils.threads import busy_machine_note, set_cpu_threads

__all__ = ["build_engine", "build_settings", "resolve_checkpoints", "Engine", "EngineSettings", "NonFiniteLossError",
           "RunDirError", "RunLockedError", "Topk", "build_postprocess", "protect_run_dir", "keep_config"]

MODES = ("train", "eval", "infer")


def _init_distributed() -> int:
    world_size = paddle.distributed.get_world_size()
    if world_size > 1 and not paddle.distributed.is_initialized():
        paddle.distributed.init_parallel_env()
    return world_size


def arch_to_build(arch: dict, mode: str, g: Any) -> dict:
    """The Arch section to build: `pretrained: True` is not downloaded when other weights replace it anyway (a
    resume, or eval / infer with Global.pretrained_model), so PaddleClas's PULC configs evaluate offline."""
    if arch.get("pretrained") and (g.checkpoints or (mode != "train" and g.pretrained_model)):
        logger.info(f"Arch.pretrained is not loaded: the weights come from "
                    f"{g.checkpoints or g.pretrained_model}")
        return {**arch, "pretrained": False}
    return arch


def give_class_counts(loss: Any, config: dict, class_num: int, train_dataset: Any = None) -> None:
    """Tell the losses with `class_weights: auto` how many train images each class has (logged once); the train
    list is read when `train_dataset` is not given (eval)."""
    if not loss.needs_class_counts:
        return
    if train_dataset is None:
        train_dataset, _ = build_dataset(config["DataLoader"]["Train"]["dataset"], class_num)
    counts = label_counts(train_dataset, class_num)
    loss.set_class_counts(counts)
    logger.info(f"class_weights auto: train images per class {counts.tolist()}")


def _eval_objects(config: dict, settings: EngineSettings, training: bool, train_dataset: Any = None) -> dict:
    """The Eval loader, loss and metrics: DataLoader.Eval (classification), or the query/gallery loaders and
    no loss (Global.eval_mode: retrieval)."""
    g, dataloader_config = settings.Global, config.get("DataLoader") or {}
    metrics = build_metrics((config.get("Metric") or {}).get("Eval"), settings.class_num)
    if g.eval_mode == "retrieval":
        return {"eval_loader": build_retrieval_data(dataloader_config, g.device, g.seed), "eval_metrics": metrics}
    objects = {"eval_loader": build_dataloader(dataloader_config, "Eval", g.device, g.seed, settings.class_num),
               "eval_metrics": metrics}
    require_batches(objects["eval_loader"], "Eval")
    loss_config = config.get("Loss") or {}
    if training or loss_config.get("Eval") or loss_config.get("Train"):
        objects["eval_loss"] = build_loss(loss_config.get("Eval") or loss_config["Train"])
        give_class_counts(objects["eval_loss"], config, settings.class_num, train_dataset)
    return objects


def _infer_objects(config: dict, settings: EngineSettings, model: paddle.nn.Layer) -> dict:
    """The inference preprocessing and post-process (engine/task.py fills what the config leaves out; a retrieval
    model's post-process is its embedding, finished as Global says)."""
    retrieval = is_retrieval_model(model)
    infer = infer_section(config, fill_postprocess=not retrieval)
    if not infer.get("transforms"):
        raise KeyError("the config has no Infer.transforms (nor DataLoader.Eval transform_ops to take them "
                       "from): add the preprocessing ops (DecodeImage, ResizeImage, CropImage, NormalizeImage, "
                       "ToCHWImage) under Infer")
    postprocess_config = infer.get("PostProcess")
    if retrieval:
        if postprocess_config and postprocess_config.get("name") != "Embedding":
            logger.warning(f"Infer.PostProcess ({postprocess_config.get('name')}) is not used: the model outputs "
                           f"features (Arch.infer_output_key), so inference gives the embedding")
        postprocess = Embedding(settings.Global.feature_normalize, settings.Global.feature_binarize)
    else:
        postprocess = build_postprocess(postprocess_config)
    return {"infer_ops": create_operators(infer["transforms"]), "postprocess": postprocess}


def build_engine(config: dict, mode: str = "train", overwrite: bool = False) -> Engine:
    """Build every object `mode` ("train" | "eval" | "infer") needs and return the Engine.

    train: takes the run folder's lock (`run_lock.py`; held until `Engine.train` ends), checks the run folder
           (`protect_run_dir`; `overwrite` moves an earlier run aside), then builds
           the model, Train (and Eval, when eval_during_train) loaders, losses, metrics, optimizer + scheduler;
           prints the final config and, once everything is built, saves it as
           <output_dir>/<Arch.name>/config.yaml (rank 0, `keep_config`).
    eval:  model (+ Global.pretrained_model weights), Eval loader, Eval loss and metrics.
    infer: model (+ weights), Infer.transforms operators and the Infer.PostProcess (engine/task.py fills either
           when the config leaves it out; Embedding for a retrieval model).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    settings = build_settings(config, mode)
    g = settings.Global
    set_device(g.device)
    set_max_image_pixels(g.max_image_pixels)  # before any loader worker is started: they inherit it
    threads = set_cpu_threads(g.cpu_threads)  # every process, each launch rank too
    rank = paddle.distributed.get_rank()
    # One writer per run folder, before anything there is looked at, moved or written.
    lock = acquire_for(settings.run_dir, rank == 0) if mode == "train" else None
    try:
        engine = _build(config, mode, overwrite, settings, rank, threads)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    if lock is not None:
        engine.hold_run_lock(lock)
    return engine


def _build(config: dict, mode: str, overwrite: bool, settings: EngineSettings, rank: int,
           threads: tuple) -> Engine:
    g = settings.Global
    moved_to = None
    if mode == "train":  # before any rank joins the others, so no rank can have written a checkpoint yet
        moved_to = protect_run_dir(settings, overwrite, is_main=rank == 0)
    elif overwrite:
        raise ValueError("overwrite only applies to training")
    world_size = _init_distributed()
    seed_everything(g.seed)

    if mode == "train" and rank == 0:
        logger.init_logger(os.path.join(settings.run_dir, "train.log"))
        if moved_to:
            logger.info(f"--overwrite: moved the earlier run {os.path.normpath(settings.run_dir)} aside to {moved_to}")
        print_config(config)
    if rank == 0:
        logger.info(f"CPU threads of Paddle's kernels: {threads[0]} per process ({threads[1]})")
        note = busy_machine_note(threads[0]) if g.device == "cpu" else ""
        if note:
            logger.warning(note)

    dataloader_config = config.get("DataLoader") or {}
    if mode == "train":  # fail before building anything when the data is not there
        check_dataset_present(dataloader_config, "Train")
    evaluating = mode == "eval" or (mode == "train" and g.eval_during_train and dataloader_config.get("Eval"))
    if evaluating and g.eval_mode != "retrieval":  # (retrieval: its Query/Gallery are checked when built)
        check_dataset_present(dataloader_config, "Eval")

    model = build_model(arch_to_build(config["Arch"], mode, g))
    apply_slim(model, config.get("Slim"))  # before weights are loaded and before the optimizer sees the model
    class_num = settings.class_num
    objects = {}
    if mode == "train":
        objects["train_loader"] = build_dataloader(dataloader_config, "Train", g.device, g.seed,
                                                   class_num)
        objects["train_loss"] = build_loss(config["Loss"]["Train"])
        give_class_counts(objects["train_loss"], config, class_num, objects["train_loader"].dataset)
        objects["train_metrics"] = build_metrics((config.get("Metric") or {}).get("Train"), class_num)
        if g.eval_during_train and dataloader_config.get("Eval"):
            objects.update(_eval_objects(config, settings, training=True,
                                         train_dataset=objects["train_loader"].dataset))
        elif g.eval_during_train:
            logger.warning("Global.eval_during_train is true but there is no DataLoader.Eval section: no evaluation, "
                           "and best_model is not saved")
        if "eval_loader" in objects and g.start_eval_epoch > g.epochs:
            logger.info(f"Global.start_eval_epoch={g.start_eval_epoch} is beyond Global.epochs={g.epochs}: only the "
                        f"last epoch is evaluated")
        steps_per_epoch = require_batches(objects["train_loader"], "Train")
        objects["optimizer"], objects["lr_scheduler"] = build_optimizer(config["Optimizer"], g.epochs,
                                                                        steps_per_epoch, model)
    elif mode == "eval":
        if not dataloader_config.get("Eval"):
            raise KeyError("the config has no DataLoader.Eval section: add one (dataset, sampler, loader) to evaluate")
        objects.update(_eval_objects(config, settings, training=False))
    else:
        objects.update(_infer_objects(config, settings, model))
    engine = Engine(settings, model, **objects)  # a resume that cannot go on (e.g. LR 0) stops here
    engine.world_size = world_size
    if mode == "train" and rank == 0:
        keep_config(config, settings.run_dir)
    return engine

