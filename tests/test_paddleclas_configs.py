"""PaddleClas's own configs (copies in tests/paddleclas_configs/, see its NOTICE) load, build and train here.

Every copy must load through get_config and build its losses, metrics, optimizer + LR schedule and data ops;
a handful train for 2 epochs on the shipped fashion_mnist_mini images with only data paths, class count,
batch size, workers, epochs, image sizes and device overridden (`-o` style, through get_config).
"""
import csv
import math
import random

import numpy as np
import paddle
import pytest

from helpers import REPO_ROOT, paddleclas_data_overrides, record_lr
from ppcls_lite.data.preprocess import create_operators
from ppcls_lite.loss import build_loss
from ppcls_lite.metric import build_metrics
from ppcls_lite.optimizer import build_optimizer
from ppcls_lite import config as cfgmod
from ppcls_lite.config import get_config

COPIES = REPO_ROOT / "tests" / "paddleclas_configs"
DATA = REPO_ROOT / "dataset" / "fashion_mnist_mini"
ALL_CONFIGS = sorted(COPIES.rglob("*.yaml"))
QUICK_START = COPIES / "quick_start" / "MobileNetV3_large_x1_0.yaml"
MOBILENET_V4 = sorted((COPIES / "ImageNet" / "MobileNetV4").glob("*.yaml"))


def rel(path):
    return str(path.relative_to(COPIES))


def test_every_family_and_the_fine_tunes_are_there():
    names = {rel(p) for p in ALL_CONFIGS}
    families = {"MobileNetV1": 4, "MobileNetV2": 6, "MobileNetV3": 13, "MobileNeXt": 3, "MobileNetV4": 5}
    for family, count in families.items():
        assert sum(n.startswith(f"ImageNet/{family}/") for n in names) == count, family
    assert "quick_start/MobileNetV3_large_x1_0.yaml" in names
    assert "quick_start/professional/MobileNetV3_large_x1_0_CIFAR100_finetune.yaml" in names
    notice = (COPIES / "NOTICE").read_text()
    assert "Apache License, Version 2.0" in notice
    assert all(name in notice for name in names)  # every copy's source commit is recorded


class Tiny(paddle.nn.Layer):
    def __init__(self, class_num):
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, 4, 3)
        self.bn = paddle.nn.BatchNorm2D(4)
        self.fc = paddle.nn.Linear(4, class_num)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean(axis=[2, 3]))


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=rel)
def test_config_loads_and_builds(path, logged_warnings):
    warnings = logged_warnings
    config = get_config(path)
    class_num = config["Arch"]["class_num"]
    assert isinstance(class_num, int) and class_num >= 1  # Global.class_num (quick-start) lands in Arch
    model = Tiny(class_num)
    loss = build_loss(config["Loss"]["Train"], "Loss.Train")
    logits = model(paddle.randn([2, 3, 8, 8]))
    value = float(loss(logits, paddle.to_tensor([0, 1]))["loss"])
    assert math.isfinite(value) and value > 0
    for mode, items in (config.get("Metric") or {}).items():
        assert build_metrics(items, class_num, f"Metric.{mode}").keys, mode
    optimizer, scheduler = build_optimizer(config["Optimizer"], config["Global"]["epochs"], 10, model)
    assert optimizer.get_lr() == pytest.approx(scheduler())
    assert 0 <= scheduler() <= max(config["Optimizer"]["lr"].get("learning_rate") or 0,
                                    *(config["Optimizer"]["lr"].get("values") or [0]))
    for mode in ("Train", "Eval"):
        ops = config["DataLoader"][mode]["dataset"]["transform_ops"]
        assert len(create_operators(ops)) == len(ops)
    assert len(create_operators(config["Infer"]["transforms"])) == len(config["Infer"]["transforms"])
    # what the copies use that has no effect here is said, once each
    assert len(warnings) == len(set(warnings))
    if config["Global"].get("use_dali"):
        assert sum("use_dali has no effect" in w for w in warnings) == 1


def test_quick_start_keys_keep_their_paddleclas_meaning(logged_warnings):
    warnings = logged_warnings
    config = get_config(QUICK_START)
    assert config["Optimizer"]["lr"]["last_epoch"] == -1 and warnings == []  # -1: start fresh, as here
    get_config(QUICK_START, ["Optimizer.lr.last_epoch=7"])
    assert len(warnings) == 1 and "last_epoch=7 has no effect here" in warnings[0] and "--resume auto" in warnings[0]


# --------------------------------------------------------------------------------------------- training

def _smoke_overrides(path, tmp_path, batch_size=8):
    """Only data paths, class count, batch size, workers, epochs, image sizes and device change."""
    if not (DATA / "train_list.txt").is_file():
        pytest.skip(f"shipped data not found at {DATA}")
    rng = random.Random(0)
    lists = {}
    for split, n in (("train", 48), ("val", 16)):
        lines = [l for l in (DATA / f"{split}_list.txt").read_text().splitlines() if l.strip()]
        lists[split] = tmp_path / f"{split} 子集.txt"  # a space and Chinese characters in the path
        lists[split].write_text("\n".join(rng.sample(lines, n)) + "\n", encoding="utf-8")
    raw = cfgmod.load_yaml_with_bases(path)  # only to find the ops; get_config runs once, in _train
    overrides = ["Global.device=cpu", "Global.epochs=2", f"Global.output_dir={tmp_path / 'output'}",
                 "Arch.class_num=10"]
    return overrides + paddleclas_data_overrides(raw, DATA, lists, batch_size)


def _train(path, tmp_path, log_lines):
    from ppcls_lite.engine import build_engine

    config = get_config(path, _smoke_overrides(path, tmp_path))
    engine = build_engine(config, "train")
    lr_steps = record_lr(engine)
    engine.train()
    run = tmp_path / "output" / config["Arch"]["name"]
    for name in ("epoch_1", "epoch_2", "latest", "best_model"):
        for ext in (".pdparams", ".pdopt", ".pdstates"):
            assert (run / f"{name}{ext}").is_file(), name + ext
    rows = list(csv.DictReader(open(run / "metrics.csv", encoding="utf-8")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(math.isfinite(float(r["train_loss"])) for r in rows)
    lrs = np.array([lr for _, lr in lr_steps])
    assert len(lrs) % 2 == 0 and len(lrs) > 0
    return config, lrs, "\n".join(log_lines)


@pytest.mark.slow
def test_quick_start_warm_up_longer_than_the_run_is_clamped(tmp_path, log_lines):
    # warmup_epoch 5 >= 2 epochs: PaddleClas clamps the warm-up to the run, the cosine gets T_max = 0, so the
    # whole run warms up linearly from warmup_start_lr (0) towards learning_rate.
    config, lrs, log = _train(QUICK_START, tmp_path, log_lines)
    peak = config["Optimizer"]["lr"]["learning_rate"]
    total = len(lrs)
    np.testing.assert_allclose(lrs, peak * np.arange(total) / total, rtol=1e-6, atol=1e-12)
    assert log.count("warm-up is clamped to 2 epochs") == 1


@pytest.mark.slow
def test_mobilenetv1_piecewise_keeps_its_first_value(tmp_path, log_lines):
    _, lrs, _ = _train(COPIES / "ImageNet/MobileNetV1/MobileNetV1_x0_25.yaml", tmp_path, log_lines)
    np.testing.assert_allclose(lrs, 0.1)  # decay_epochs [30, 60, 90] are beyond a 2-epoch run


@pytest.mark.slow
def test_mobilenetv2_cosine_per_step(tmp_path, log_lines):
    _, lrs, _ = _train(COPIES / "ImageNet/MobileNetV2/MobileNetV2_x0_25.yaml", tmp_path, log_lines)
    t = np.arange(len(lrs))
    np.testing.assert_allclose(lrs, 0.045 * (1 + np.cos(np.pi * t / len(lrs))) / 2, rtol=1e-6)


@pytest.mark.slow
def test_mobilenext_by_epoch_warm_up_clamped(tmp_path, log_lines):
    # by_epoch: the LR moves once per epoch; warmup_epoch 3 >= 2 epochs is clamped to 2 warm-up epochs
    _, lrs, log = _train(COPIES / "ImageNet/MobileNeXt/MobileNeXt_x1_0.yaml", tmp_path, log_lines)
    steps = len(lrs) // 2
    np.testing.assert_allclose(lrs[:steps], 1e-4)
    np.testing.assert_allclose(lrs[steps:], 1e-4 + (0.1 - 1e-4) / 2)
    assert log.count("warm-up is clamped to 2 epochs") == 1


@pytest.mark.slow
def test_mobilenetv3_ultra_with_no_effect_keys_warns_once(tmp_path, log_lines):
    _, lrs, log = _train(COPIES / "ImageNet/MobileNetV3/MobileNetV3_small_x1_0_ultra.yaml", tmp_path, log_lines)
    assert log.count("Global.use_dali has no effect here") == 1
    total = len(lrs)  # 5 warm-up epochs clamped to the 2-epoch run: linear from 0 towards 1.3
    np.testing.assert_allclose(lrs, 1.3 * np.arange(total) / total, rtol=1e-6, atol=1e-12)


@pytest.mark.slow
def test_cifar100_fine_tune_with_global_ema_trains_with_ema(tmp_path, log_lines):
    # PaddleClas's older `Global.ema: {enable: True, decay: 0.999}` turns EMA on: the checkpoints carry EMA weights
    path = COPIES / "quick_start/professional/MobileNetV3_large_x1_0_CIFAR100_finetune_ema.yaml"
    config, lrs, log = _train(path, tmp_path, log_lines)
    assert config["EMA"] == {"decay": 0.999} and log.count("EMA.decay set to 0.999") == 1
    from ppcls_lite.engine.checkpoint import load_checkpoint

    _, _, states = load_checkpoint(str(tmp_path / "output" / config["Arch"]["name"] / "latest"))
    assert states["ema"]  # the EMA average was saved with the run
    t = np.arange(len(lrs))
    np.testing.assert_allclose(lrs, 0.04 * (1 + np.cos(np.pi * t / len(lrs))) / 2, rtol=1e-6)


def test_imagenet_dataset_relabel_maps_sparse_labels_to_0_n(tmp_path):
    import cv2

    from ppcls_lite.data.dataset import ImageNetDataset

    lines = []
    for i, label in enumerate([7, 3, 7, 12]):  # PaddleClas relabel: 3 -> 0, 7 -> 1, 12 -> 2
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 8, 3), 40 * i, np.uint8))
        lines.append(f"{i}.png {label}")
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    dataset = ImageNetDataset(str(tmp_path), str(tmp_path / "list.txt"), relabel=True)
    assert [label for _, label in dataset.samples] == [1, 0, 1, 2] and dataset.class_num == 3
    with pytest.raises(ValueError, match="3 distinct labels but class_num is 2"):
        ImageNetDataset(str(tmp_path), str(tmp_path / "list.txt"), relabel=True, class_num=2)
    with pytest.raises(ValueError, match="label 7 is outside"):  # without relabel, labels must fit class_num
        ImageNetDataset(str(tmp_path), str(tmp_path / "list.txt"), class_num=3)


@pytest.mark.slow
def test_older_mobilenext_100_config_trains(tmp_path, log_lines):
    # PaddleClas's older name for MobileNeXt_x1_0; the run folder keeps the config's own Arch.name
    config, lrs, _ = _train(COPIES / "ImageNet/MobileNeXt/MobileNeXt_100.yaml", tmp_path, log_lines)
    assert config["Arch"]["name"] == "MobileNeXt_100" and len(lrs) > 0


@pytest.mark.slow
@pytest.mark.parametrize("path", MOBILENET_V4, ids=lambda p: p.stem)
def test_mobilenetv4_recipe_keys_reach_the_training_run(path, tmp_path, log_lines):
    """Each MobileNetV4 config trains 1 epoch at 32 px; every recipe key is in the built objects."""
    from ppcls_lite.arch.backbone.mobilenet_v4 import DropPath
    from ppcls_lite.data.preprocess import RandCropImage, RandomErasing, ResizeImage, TimmAutoAugment
    from ppcls_lite.engine import build_engine

    raw = cfgmod.load_yaml_with_bases(path)
    config = get_config(path, _smoke_overrides(path, tmp_path) + ["Global.epochs=1"])
    engine = build_engine(config, "train")
    model, optimizer = engine.model, engine.optimizer
    arch, opt = raw["Arch"], raw["Optimizer"]
    # Arch: dropout before the classifier; stochastic depth rising to drop_path_rate on the last residual block
    assert model.dropout.p == arch["drop_rate"]
    depth = len(model.blocks)
    rates = [layer.rate for layer in model.sublayers() if isinstance(layer, DropPath)]
    assert max(rates) == pytest.approx(arch["drop_path_rate"] * (depth - 2) / depth)
    # AdamW: decoupled decay, none on 1-D parameters, gradients clipped to a global norm of clip_grad
    assert isinstance(optimizer, paddle.optimizer.AdamW) and optimizer._weight_decay == opt["weight_decay"]
    assert (optimizer._beta1, optimizer._beta2, optimizer._epsilon) == (0.9, 0.999, 1e-8)
    assert not optimizer._apply_decay_param_fun(model.conv_stem.bn.weight.name)
    assert optimizer._apply_decay_param_fun(model.conv_stem.conv.weight.name)
    assert isinstance(optimizer._grad_clip, paddle.nn.ClipGradByGlobalNorm)
    assert optimizer._grad_clip.clip_norm == opt["clip_grad"]
    assert engine.ema is not None and engine.ema.decay == raw["EMA"]["decay"]
    # data: bicubic PIL crops, RandAugment from the config string, log-aspect pixel erasing, mixup/cutmix
    train_ops = {type(op): op for op in engine.train_loader.dataset.ops}
    crop = train_ops[RandCropImage]
    assert (crop.resize.interpolation, crop.resize.backend) == ("bicubic", "pil")
    augment = train_ops[TimmAutoAugment]
    magnitude = int(raw["DataLoader"]["Train"]["dataset"]["transform_ops"][3]["TimmAutoAugment"]["config_str"][6])
    assert (augment.magnitude, augment.magnitude_std) == (magnitude, 1.0) and "ShearX" in augment.op_names
    erasing = train_ops[RandomErasing]
    assert (erasing.EPSILON, erasing.sh, erasing.use_log_aspect, erasing.mode) == (0.25, pytest.approx(1 / 3),
                                                                                  True, "pixel")
    resize = next(op for op in engine.eval_loader.dataset.ops if isinstance(op, ResizeImage))
    assert (resize.resize.interpolation, resize.resize.backend) == ("bicubic", "pil")
    engine.train_loader.set_epoch(1)
    _, labels = next(iter(engine.train_loader))
    assert list(labels.shape) == [8, 10] and str(labels.dtype).endswith("float32")  # mixed soft targets

    lr_steps = record_lr(engine)
    engine.train()
    run = tmp_path / "output" / config["Arch"]["name"]
    rows = list(csv.DictReader(open(run / "metrics.csv", encoding="utf-8")))
    assert [int(r["epoch"]) for r in rows] == [1] and math.isfinite(float(rows[0]["train_loss"]))
    assert (run / "best_model.pdparams").is_file() and (run / "latest.pdstates").is_file()
    lrs = np.array([lr for _, lr in lr_steps])  # the warm-up (5 or 20 epochs) is clamped to the 1-epoch run
    np.testing.assert_allclose(lrs, opt["lr"]["learning_rate"] * np.arange(len(lrs)) / len(lrs), rtol=1e-6,
                               atol=1e-12)
    assert "AMP.use_amp is on but" in "\n".join(log_lines)  # AMP keys read; autocast is off on a CPU
