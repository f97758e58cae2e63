"""Config dicts for the tiny datasets (training, tools, export) and writing/loading them."""
import copy
import os
from pathlib import Path

import yaml

from .data import make_image_folder


# ImageNet-style inference preprocessing scaled down to 32 px (resize short side 36, centre crop 32).
INFER_OPS_32PX = [
    {"DecodeImage": {"to_rgb": True, "channel_first": False}},
    {"ResizeImage": {"resize_short": 36}},
    {"CropImage": {"size": 32}},
    {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                        "order": ""}},
    {"ToCHWImage": None},
]


DECODE = {"DecodeImage": {"to_rgb": True, "channel_first": False}}
NORMALIZE = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "order": ""}}
# Deterministic preprocessing (no random crop/flip): the tiny PNGs are already 32 px.
DETERMINISTIC_OPS = [DECODE, NORMALIZE]
RANDOM_OPS = [DECODE, {"RandCropImage": {"size": 32, "scale": [0.6, 1.0]}}, {"RandFlipImage": {"flip_code": 1}},
              NORMALIZE]
TINY_ARCH = "MobileNetV1_x0_25"  # no dropout, 0.2 M parameters: fast and deterministic on CPU
EXPORT_ARCH = "MobileNetV3_small_x0_35"  # has hard-swish and SE blocks


def tiny_config(data_root, output_dir, arch="MobileNetV3_small_x0_35", class_num=3, epochs=2, num_workers=0,
                lr=0.01):
    """A complete config dict for the tiny dataset of make_image_folder (32 px, 3 classes): CPU, batch 4, fast."""
    data_root = str(data_root)

    def loader(list_name, train):
        ops = [DECODE] + ([{"RandFlipImage": {"flip_code": 1}}] if train else []) + [NORMALIZE]
        return {
            "dataset": {"name": "ImageNetDataset", "image_root": data_root,
                        "cls_label_path": os.path.join(data_root, list_name), "transform_ops": ops},
            "sampler": {"name": "DistributedBatchSampler", "batch_size": 4, "drop_last": False, "shuffle": train},
            "loader": {"num_workers": num_workers if train else 0, "use_shared_memory": False},
        }

    return {
        "Global": {"output_dir": str(output_dir), "device": "cpu", "epochs": epochs, "print_batch_step": 1,
                   "seed": 42, "save_interval": 1, "eval_during_train": True, "eval_interval": 1,
                   "image_shape": [3, 32, 32]},
        "Arch": {"name": arch, "class_num": class_num},
        "Loss": {"Train": [{"CELoss": {"weight": 1.0, "epsilon": 0.1}}], "Eval": [{"CELoss": {"weight": 1.0}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9,
                      "lr": {"name": "Cosine", "learning_rate": lr, "warmup_epoch": 1, "warmup_start_lr": 0.0},
                      "regularizer": {"name": "L2", "coeff": 1e-5}},
        "DataLoader": {"Train": loader("train_list.txt", True), "Eval": loader("val_list.txt", False)},
        "Infer": {"infer_imgs": os.path.join(data_root, "val_list.txt"), "batch_size": 4,
                  "transforms": [DECODE, NORMALIZE, {"ToCHWImage": None}],
                  "PostProcess": {"name": "Topk", "topk": 2,
                                  "class_id_map_file": os.path.join(data_root, "label_list.txt")}},
        "Metric": {"Train": [{"TopkAcc": {"topk": [1, 5]}}], "Eval": [{"TopkAcc": {"topk": [1, 5]}}]},
    }


def tiny_train_config(data_root, output_dir, *, arch=TINY_ARCH, class_num=3, epochs=2, batch_size=3,
                      eval_batch_size=4, train_list="train_list.txt", val_list="val_list.txt", random_aug=False,
                      shuffle=True, lr=0.02, seed=7):
    """A config for runs through tools/train.py on the tiny dataset: constant lr, deterministic ops unless
    `random_aug`, a small model (change it, then `write_config`)."""
    data_root = str(data_root)

    def dataset(list_name, ops):
        return {"name": "ImageNetDataset", "image_root": data_root,
                "cls_label_path": os.path.join(data_root, list_name), "transform_ops": ops}

    loader = {"num_workers": 0, "use_shared_memory": False}
    return {
        "Global": {"output_dir": str(output_dir), "device": "cpu", "epochs": epochs, "seed": seed,
                   "print_batch_step": 1, "image_shape": [3, 32, 32], "save_interval": 1,
                   "eval_during_train": True, "eval_interval": 1, "use_visualdl": False, "to_static": False,
                   "checkpoints": None, "pretrained_model": None},
        "Arch": {"name": arch, "class_num": class_num},
        "Loss": {"Train": [{"CELoss": {"weight": 1.0}}], "Eval": [{"CELoss": {"weight": 1.0}}]},
        # Constant lr, plain momentum: small steps so the tiny model stays finite and comparisons are tight.
        "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Constant", "learning_rate": lr},
                      "regularizer": {"name": "L2", "coeff": 1.0e-4}},
        "DataLoader": {
            "Train": {"dataset": dataset(train_list, RANDOM_OPS if random_aug else DETERMINISTIC_OPS),
                      "sampler": {"name": "DistributedBatchSampler", "batch_size": batch_size, "drop_last": False,
                                  "shuffle": shuffle},
                      "loader": loader},
            "Eval": {"dataset": dataset(val_list, DETERMINISTIC_OPS),
                     "sampler": {"name": "DistributedBatchSampler", "batch_size": eval_batch_size,
                                 "drop_last": False, "shuffle": False},
                     "loader": loader},
        },
        "Metric": {"Train": [{"TopkAcc": {"topk": [1, 2]}}], "Eval": [{"TopkAcc": {"topk": [1, 2]}}]},
    }


def write_config(config, path):
    """Write `config` as YAML to `path`; returns the Path."""
    path = Path(path)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def load_config(config, tmp_path, overrides=()):
    """Round-trip through get_config so the engine sees exactly what the tools would give it."""
    from ppcls_lite.config import get_config

    return get_config(write_config(config, tmp_path / "config.yaml"), list(overrides))


def tiny_export_config(tmp_path, reference_dir, weights=True, per_class=8):
    """A config file exporting the parity weights of EXPORT_ARCH at 32 px, with a small Train/Eval list of real
    images (in a folder whose name has a space and Chinese characters). Returns (config path, dataset root)."""
    root = make_image_folder(tmp_path / "数据 集", per_class=per_class, size=48)
    dataset = {"name": "ImageNetDataset", "image_root": str(root)}
    config = {
        "Global": {"pretrained_model": str(reference_dir / "parity" / EXPORT_ARCH) if weights else None,
                   "save_inference_dir": str(tmp_path / "inference"), "image_shape": [3, 32, 32]},
        "Arch": {"name": EXPORT_ARCH, "class_num": 10},
        "DataLoader": {"Train": {"dataset": dict(dataset, cls_label_path=str(root / "train_list.txt"))},
                       "Eval": {"dataset": dict(dataset, cls_label_path=str(root / "val_list.txt"))}},
        "Infer": {"transforms": INFER_OPS_32PX, "PostProcess": {"name": "Topk", "topk": 3}},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path, root


def with_params(ops, name, **params):
    """A copy of the op list with `params` set on the op called `name`."""
    ops = copy.deepcopy(ops)
    for entry in ops:
        if name in entry:
            entry[name] = {**(entry[name] or {}), **params}
    return ops


def paddleclas_data_overrides(raw_config, image_root, lists, batch_size):
    """-o overrides that point a PaddleClas config's Train/Eval datasets at `image_root` with list files
    `lists` {"train": path, "val": path}, set the batch size, no workers, and shrink every op size to 32 px
    (resize_short 36), wherever the ops sit (Train, Eval and Infer.transforms)."""
    def sizes(ops, prefix):
        out = []
        for i, item in enumerate(ops):
            name, params = next(iter(item.items()))
            for key in params or {}:
                if name in ("RandCropImage", "CropImage") and key == "size":
                    out.append(f"{prefix}.{i}.{name}.size=32")
                elif name == "ResizeImage" and key in ("resize_short", "size"):
                    out.append(f"{prefix}.{i}.{name}.{key}={36 if key == 'resize_short' else 32}")
        return out

    overrides = []
    for mode, split in (("Train", "train"), ("Eval", "val")):
        where = f"DataLoader.{mode}"
        overrides += [f"{where}.dataset.image_root={image_root}", f"{where}.dataset.cls_label_path={lists[split]}",
                      f"{where}.sampler.batch_size={batch_size}", f"{where}.loader.num_workers=0"]
        overrides += sizes(raw_config["DataLoader"][mode]["dataset"]["transform_ops"], f"{where}.dataset.transform_ops")
    return overrides + sizes(raw_config["Infer"]["transforms"], "Infer.transforms")
