"""Engine package: `build_engine(config, mode)` turns a config into built objects and an `Engine`.

This is the only place that reads the raw config for training/eval/infer: it calls the section builders
(`build_model`, `build_dataloader`, `build_loss`, `build_metrics`, `build_optimizer`, `create_operators`,
`build_postprocess`) and hands their results plus an `EngineSettings` to `Engine`.

Process setup done here, in this order: device (`Global.device`), data-parallel init when launched with
`python -m paddle.distributed.launch` (world size > 1: `paddle.distributed.init_parallel_env()`, gloo on
CPU, NCCL on GPU), seeding (`Global.seed`), then the builders.

Run folders (`<Global.output_dir>/<Arch.name>/`) are protected: a training run that is not a resume refuses to
start in a folder holding checkpoints, before anything is written (`protect_run_dir`); `overwrite=True`
(tools/train.py `--overwrite`) moves the earlier run aside to `<run>.old-<timestamp>/` first. Each run's final
config is `config.yaml`; an earlier, different one is kept as `config.<its timestamp>.yaml` (`keep_config`).
"""
import os
import time
from typing import Optional

import paddle

from ppcls_lite.arch import build_model
from ppcls_lite.data import build_dataloader
from ppcls_lite.data.preprocess import create_operators
from ppcls_lite.engine import checkpoint as ckpt
from ppcls_lite.engine.engine import Engine
from ppcls_lite.engine.loop import NonFiniteLossError, require_batches
from ppcls_lite.engine.postprocess import Topk, build_postprocess
from ppcls_lite.engine.settings import EngineSettings, build_settings, resolve_checkpoints
from ppcls_lite.loss import build_loss
from ppcls_lite.metric import build_metrics
from ppcls_lite.optimizer import build_optimizer
from ppcls_lite.utils import logger
from ppcls_lite.utils.config import config_to_text, print_config, save_config
from ppcls_lite.utils.device import set_device
from ppcls_lite.utils.seeding import seed_everything

__all__ = ["build_engine", "build_settings", "resolve_checkpoints", "Engine", "EngineSettings", "NonFiniteLossError",
           "RunDirError", "Topk", "build_postprocess", "protect_run_dir", "keep_config"]

MODES = ("train", "eval", "infer")
QUICK_START_CONFIG = "configs/quick_start/MobileNetV3_small_fashion_mnist.yaml"

class RunDirError(ValueError):
    """A new training run would mix with (and overwrite) an earlier run's checkpoints."""


def _timestamp(seconds: Optional[float] = None) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(seconds))


def _free_name(path_without_suffix: str, suffix: str = "") -> str:
    """`path_without_suffix + suffix`, or with -2, -3, ... inserted when that exists (two runs in one second)."""
    candidate, n = path_without_suffix + suffix, 1
    while os.path.exists(candidate):
        n += 1
        candidate = f"{path_without_suffix}-{n}{suffix}"
    return candidate


def protect_run_dir(settings: EngineSettings, overwrite: bool = False, is_main: bool = True) -> Optional[str]:
    """Refuse a new (not resumed) training run in a run folder that holds checkpoints; with `overwrite`, move
    the earlier run aside to `<run>.old-<timestamp>/` (rank 0 only; nothing is deleted). Returns the folder it
    was moved to, or None. Runs before anything is written."""
    run_dir = os.path.normpath(settings.run_dir)
    if settings.Global.checkpoints:
        if overwrite:
            raise RunDirError("--overwrite starts a new run, --resume / Global.checkpoints continues one: use one "
                              "of them")
        return None
    if not overwrite:
        names = ckpt.checkpoint_names(run_dir)
        if names:
            raise RunDirError(
                f"{run_dir} already holds the checkpoints of an earlier run ({', '.join(names)}); a new run there "
                f"would overwrite them. Choose one: continue that run with --resume auto; start a new run in another "
                f"folder with -o Global.output_dir=DIR; or add --overwrite to move the earlier run aside to "
                f"{run_dir}.old-<timestamp>/ (nothing is deleted).")
        return None
    if not os.path.isdir(run_dir) or not os.listdir(run_dir):
        return None
    pretrained = settings.Global.pretrained_model
    if pretrained and os.path.abspath(str(pretrained)).startswith(os.path.abspath(run_dir) + os.sep):
        raise RunDirError(f"Global.pretrained_model={pretrained} is inside {run_dir}, which --overwrite would move "
                          f"away: copy those weights elsewhere first, or train into another Global.output_dir")
    if not is_main:
        return None
    target = _free_name(f"{run_dir}.old-{_timestamp()}")
    os.replace(run_dir, target)
    return target


def keep_config(config: dict, run_dir: str) -> str:
    """Write the final config to run_dir/config.yaml; an earlier, different config.yaml (the config of an
    earlier part of this run, e.g. before a resume with more epochs) is kept as config.<its mtime>.yaml.
    Returns the path of the archived file ('' when none)."""
    path = os.path.join(run_dir, "config.yaml")
    archived = ""
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            unchanged = f.read() == config_to_text(config)
        if not unchanged:
            archived = _free_name(os.path.join(run_dir, f"config.{_timestamp(os.path.getmtime(path))}"), ".yaml")
            os.replace(path, archived)
            logger.info(f"config.yaml now holds this run's config; the earlier one is kept as {archived}")
    save_config(config, path)
    return archived


def check_dataset_present(dataloader_config: Optional[dict], mode: str) -> None:
    """Fail early, with directions, when a dataset's list file or image root is not on disk."""
    dataset = ((dataloader_config or {}).get(mode) or {}).get("dataset") or {}
    for key in ("cls_label_path", "image_root"):
        path = dataset.get(key)
        if not path or os.path.exists(str(path)):
            continue
        msg = f"DataLoader.{mode}.dataset.{key}: {path} does not exist."
        if "ILSVRC2012" in str(path):
            msg += (" This is an ImageNet recipe: put ImageNet-1k under ./dataset/ILSVRC2012/ (train/, val/, "
                    "train_list.txt and val_list.txt with lines 'relative/path.JPEG label'), or point the config at "
                    f"your data with -o DataLoader.{mode}.dataset.image_root=DIR "
                    f"-o DataLoader.{mode}.dataset.cls_label_path=LIST. To try ppcls_lite without ImageNet, run "
                    f"the quick start: python tools/train.py -c {QUICK_START_CONFIG}")
        else:
            msg += f" Fix the path in the config or with -o DataLoader.{mode}.dataset.{key}=PATH."
        raise FileNotFoundError(msg)


def _init_distributed() -> int:
    world_size = paddle.distributed.get_world_size()
    if world_size > 1 and not paddle.distributed.is_initialized():
        paddle.distributed.init_parallel_env()
    return world_size


def build_engine(config: dict, mode: str = "train", overwrite: bool = False) -> Engine:
    """Build every object `mode` ("train" | "eval" | "infer") needs and return the Engine.

    train: checks the run folder first (`protect_run_dir`; `overwrite` moves an earlier run aside), then builds
           the model, Train (and Eval, when eval_during_train) loaders, losses, metrics, optimizer + scheduler;
           prints the final config and, once everything is built, saves it as
           <output_dir>/<Arch.name>/config.yaml (rank 0, `keep_config`).
    eval:  model (+ Global.pretrained_model weights), Eval loader, Eval loss and metrics.
    infer: model (+ weights), Infer.transforms operators and the Infer.PostProcess (Topk).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    settings = build_settings(config, mode)
    g = settings.Global
    set_device(g.device)
    rank = paddle.distributed.get_rank()
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

    dataloader_config = config.get("DataLoader") or {}
    if mode == "train":  # fail before building anything when the data is not there
        check_dataset_present(dataloader_config, "Train")
    if mode == "eval" or (mode == "train" and g.eval_during_train and dataloader_config.get("Eval")):
        check_dataset_present(dataloader_config, "Eval")

    model = build_model(config["Arch"])
    class_num = settings.class_num
    objects = {}
    if mode == "train":
        objects["train_loader"] = build_dataloader(dataloader_config, "Train", g.device, g.seed,
                                                   class_num)
        objects["train_loss"] = build_loss(config["Loss"]["Train"])
        objects["train_metrics"] = build_metrics((config.get("Metric") or {}).get("Train"), class_num)
        if g.eval_during_train and dataloader_config.get("Eval"):
            objects["eval_loader"] = build_dataloader(dataloader_config, "Eval", g.device, g.seed,
                                                      class_num)
            require_batches(objects["eval_loader"], "Eval")
            objects["eval_loss"] = build_loss((config.get("Loss") or {}).get("Eval") or config["Loss"]["Train"])
            objects["eval_metrics"] = build_metrics((config.get("Metric") or {}).get("Eval"), class_num)
        elif g.eval_during_train:
            logger.warning("Global.eval_during_train is true but there is no DataLoader.Eval section: no evaluation, "
                           "and best_model is not saved")
        steps_per_epoch = require_batches(objects["train_loader"], "Train")
        objects["optimizer"], objects["lr_scheduler"] = build_optimizer(config["Optimizer"], g.epochs,
                                                                        steps_per_epoch, model)
    elif mode == "eval":
        if not dataloader_config.get("Eval"):
            raise KeyError("the config has no DataLoader.Eval section: add one (dataset, sampler, loader) to evaluate")
        objects["eval_loader"] = build_dataloader(dataloader_config, "Eval", g.device, g.seed, class_num)
        require_batches(objects["eval_loader"], "Eval")
        loss_config = config.get("Loss") or {}
        if loss_config.get("Eval") or loss_config.get("Train"):
            objects["eval_loss"] = build_loss(loss_config.get("Eval") or loss_config["Train"])
        objects["eval_metrics"] = build_metrics((config.get("Metric") or {}).get("Eval"), class_num)
    else:
        infer = config.get("Infer") or {}
        if not infer.get("transforms"):
            raise KeyError("the config has no Infer.transforms: add the preprocessing ops (DecodeImage, ResizeImage, "
                           "CropImage, NormalizeImage, ToCHWImage) under Infer")
        objects["infer_ops"] = create_operators(infer["transforms"])
        objects["postprocess"] = build_postprocess(infer.get("PostProcess"))
    engine = Engine(settings, model, **objects)  # a resume that cannot go on (e.g. LR 0) stops here
    engine.world_size = world_size
    if mode == "train" and rank == 0:
        keep_config(config, settings.run_dir)
    return engine

