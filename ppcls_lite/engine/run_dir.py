"""Run folders (`<Global.output_dir>/<Arch.name>/`) and the data they need, checked before training writes anything.

A training run that is not a resume refuses to start in a folder holding checkpoints (`protect_run_dir`);
`overwrite=True` (tools/train.py `--overwrite`) moves the earlier run aside to `<run>.old-<timestamp>/` first.
Each run's final config is `config.yaml`; an earlier, different one is kept as `config.<its timestamp>.yaml`
(`keep_config`). `check_dataset_present` names a missing list file or image folder with what to do.
"""
import os
from typing import Optional

from ppcls_lite.config import config_to_text, save_config
from ppcls_lite.engine import checkpoint as ckpt
from ppcls_lite.engine.settings import EngineSettings
from ppcls_lite.utils import logger
from ppcls_lite.utils.files import free_name, timestamp

QUICK_START_CONFIG = "configs/quick_start/MobileNetV3_small_fashion_mnist.yaml"


class RunDirError(ValueError):
    """A new training run would mix with (and overwrite) an earlier run's checkpoints."""


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
        if names and ckpt.newest_valid_checkpoint(run_dir)[0] is None:
            raise RunDirError(f"{run_dir} holds checkpoints of an earlier run ({', '.join(names)}) but none to resume "
                              f"(no complete latest or epoch_N). {ckpt.weights_only_advice(run_dir, names)}")
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
    target = free_name(f"{run_dir}.old-{timestamp()}")
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
            archived = free_name(os.path.join(run_dir, f"config.{timestamp(os.path.getmtime(path))}"), ".yaml")
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
