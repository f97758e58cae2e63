"""Config values are range-checked in get_config, before anything is written: the error names the key path
as `-o` takes it, the value and the valid range."""

import numpy as np
import pytest

from ppcls_lite.arch import MODELS
from ppcls_lite.loss import LOSSES
from ppcls_lite.metric import METRICS
from ppcls_lite.config import ConfigError, get_config
from helpers import REPO_ROOT, run_tool

# A PaddleClas recipe that sets most of the checked keys (eta_min, warm-up, nesterov, L2, ColorJitter, ...).
RECIPE = REPO_ROOT / "tests" / "paddleclas_configs" / "ImageNet" / "MobileNeXt" / "MobileNeXt_x1_0.yaml"

BAD_VALUES = [
    # (override, key path named in the error, text of the valid range)
    ("Optimizer.lr.learning_rate=-1", "Optimizer.lr.learning_rate", "> 0"),
    ("Optimizer.lr.learning_rate=0", "Optimizer.lr.learning_rate", "> 0"),
    ("Optimizer.lr.learning_rate=fast", "Optimizer.lr.learning_rate", "> 0"),
    ("Optimizer.lr.eta_min=-5", "Optimizer.lr.eta_min", ">= 0"),
    ("Optimizer.lr.eta_min=0.5", "Optimizer.lr.eta_min", "in [0, learning_rate] = [0, 0.1]"),
    ("Optimizer.lr.warmup_epoch=-1", "Optimizer.lr.warmup_epoch", ">= 0"),
    ("Optimizer.lr.warmup_start_lr=-1e-4", "Optimizer.lr.warmup_start_lr", ">= 0"),
    ("Optimizer.lr.warmup_start_lr=0.2", "Optimizer.lr.warmup_start_lr", "in [0, learning_rate) = [0, 0.1)"),
    ("Optimizer.lr.gamma=0", "Optimizer.lr.gamma", "> 0"),
    ("Optimizer.lr.values=[0.1, -0.01]", "Optimizer.lr.values.1", ">= 0"),
    ("Optimizer.momentum=-3", "Optimizer.momentum", "in [0, 1)"),
    ("Optimizer.momentum=1.0", "Optimizer.momentum", "in [0, 1)"),
    ("Optimizer.beta1=1.5", "Optimizer.beta1", "in [0, 1)"),
    ("Optimizer.beta2=-0.1", "Optimizer.beta2", "in [0, 1)"),
    ("Optimizer.epsilon=0", "Optimizer.epsilon", "> 0"),
    ("Optimizer.weight_decay=-0.01", "Optimizer.weight_decay", ">= 0"),
    ("Optimizer.regularizer.coeff=-1e-4", "Optimizer.regularizer.coeff", ">= 0"),
    ("Optimizer.clip_norm=0", "Optimizer.clip_norm", "> 0"),
    ("Optimizer.clip_grad=-5", "Optimizer.clip_grad", "> 0"),
    ("Global.epochs=0", "Global.epochs", "a whole number >= 1"),
    ("Global.epochs=2.5", "Global.epochs", "a whole number >= 1"),
    ("Global.save_interval=0", "Global.save_interval", "a whole number >= 1"),
    ("Global.eval_interval=-1", "Global.eval_interval", "a whole number >= 1"),
    ("Global.print_batch_step=0", "Global.print_batch_step", "a whole number >= 1"),
    ("Global.image_shape=[3, 0, 224]", "Global.image_shape", "[channels, height, width]"),
    ("Arch.class_num=0", "Arch.class_num", "a whole number >= 1"),
    ("AMP.scale_loss=0", "AMP.scale_loss", "> 0"),
    ("EMA.decay=1.5", "EMA.decay", "in [0, 1)"),
    ("DataLoader.Train.sampler.batch_size=0", "DataLoader.Train.sampler.batch_size", "a whole number >= 1"),
    ("DataLoader.Eval.sampler.batch_size=-8", "DataLoader.Eval.sampler.batch_size", "a whole number >= 1"),
    ("DataLoader.Train.loader.num_workers=-1", "DataLoader.Train.loader.num_workers", "a whole number >= 0"),
    ("Infer.batch_size=0", "Infer.batch_size", "a whole number >= 1"),
    ("Loss.Train.0.CELoss.epsilon=1.5", "Loss.Train.0.CELoss.epsilon", "in [0, 1)"),
    ("Loss.Train.0.CELoss.weight=-1", "Loss.Train.0.CELoss.weight", ">= 0"),
    ("DataLoader.Train.dataset.transform_ops.1.RandCropImage.size=0",
     "DataLoader.Train.dataset.transform_ops.1.RandCropImage.size", "a whole number from 1 to 16384 (pixels)"),
    ("DataLoader.Train.dataset.transform_ops.1.RandCropImage.scale=[0.9, 0.1]",
     "DataLoader.Train.dataset.transform_ops.1.RandCropImage.scale", "0 < low <= high <= 1"),
    ("DataLoader.Eval.dataset.transform_ops.1.ResizeImage.resize_short=-256",
     "DataLoader.Eval.dataset.transform_ops.1.ResizeImage.resize_short", "a whole number from 1 to 16384 (pixels)"),
    ("DataLoader.Eval.dataset.transform_ops.2.CropImage.size=[224, 0]",
     "DataLoader.Eval.dataset.transform_ops.2.CropImage.size.1", "a whole number from 1 to 16384 (pixels)"),
    ("Infer.transforms.2.CropImage.size=22.5", "Infer.transforms.2.CropImage.size", "a whole number from 1 to 16384"),
    ("Infer.transforms.1.ResizeImage.resize_short=100000", "Infer.transforms.1.ResizeImage.resize_short",
     "a whole number from 1 to 16384 (pixels)"),
    ("DataLoader.Train.dataset.transform_ops.1.RandCropImage.size=[224, 20000]",
     "DataLoader.Train.dataset.transform_ops.1.RandCropImage.size.1", "a whole number from 1 to 16384 (pixels)"),
    ("Global.image_shape=[3, 224, 16385]", "Global.image_shape", "whole numbers from 1 to 16384"),
    ("DataLoader.Train.dataset.batch_transform_ops=[{MixupOperator: {alpha: -0.2}}]",
     "DataLoader.Train.dataset.batch_transform_ops.0.MixupOperator.alpha", "> 0"),
    ("DataLoader.Train.dataset.batch_transform_ops=[{CutmixOperator: {alpha: 0}}]",
     "DataLoader.Train.dataset.batch_transform_ops.0.CutmixOperator.alpha", "> 0"),
    ("DataLoader.Train.dataset.batch_transform_ops=[{OpSampler: {MixupOperator: {alpha: 0.8, prob: 1.5}}}]",
     "DataLoader.Train.dataset.batch_transform_ops.0.OpSampler.MixupOperator.prob", "in [0, 1]"),
    ("DataLoader.Train.dataset.batch_transform_ops=[{OpSampler: {CutmixOperator: {alpha: -1}}}]",
     "DataLoader.Train.dataset.batch_transform_ops.0.OpSampler.CutmixOperator.alpha", "> 0"),
    ("DataLoader.Train.dataset.transform_ops=[{TimmAutoAugment: {prob: 1.5}}]",
     "DataLoader.Train.dataset.transform_ops.0.TimmAutoAugment.prob", "in [0, 1]"),
    ("DataLoader.Train.dataset.transform_ops=[{TimmAutoAugment: {img_size: [224, 0]}}]",
     "DataLoader.Train.dataset.transform_ops.0.TimmAutoAugment.img_size.1", "a whole number from 1 to 16384"),
    ("Metric.Eval.0.TopkAcc.topk=[0, 5]", "Metric.Eval.0.TopkAcc.topk.0", "a whole number >= 1"),
    ("Infer.PostProcess.topk=0", "Infer.PostProcess.topk", "a whole number >= 1"),
]


# How the value appears in the message when it is not the override text itself (YAML parsed it).
SHOWN = {
    "Optimizer.lr.learning_rate=fast": "'fast'",
    "Optimizer.lr.warmup_start_lr=0.2": "0.2",
    "Optimizer.lr.values=[0.1, -0.01]": "-0.01",
    "Optimizer.lr.warmup_start_lr=-1e-4": "-0.0001",
    "Optimizer.regularizer.coeff=-1e-4": "-0.0001",
    "DataLoader.Eval.dataset.transform_ops.2.CropImage.size=[224, 0]": "0",
    "DataLoader.Train.dataset.transform_ops.1.RandCropImage.size=[224, 20000]": "20000",
    "DataLoader.Train.dataset.batch_transform_ops=[{MixupOperator: {alpha: -0.2}}]": "-0.2",
    "DataLoader.Train.dataset.batch_transform_ops=[{CutmixOperator: {alpha: 0}}]": "0",
    "Metric.Eval.0.TopkAcc.topk=[0, 5]": "0",
    "DataLoader.Train.dataset.transform_ops=[{TimmAutoAugment: {prob: 1.5}}]": "1.5",
    "DataLoader.Train.dataset.transform_ops=[{TimmAutoAugment: {img_size: [224, 0]}}]": "0",
    "DataLoader.Train.dataset.batch_transform_ops=[{OpSampler: {MixupOperator: {alpha: 0.8, prob: 1.5}}}]": "1.5",
    "DataLoader.Train.dataset.batch_transform_ops=[{OpSampler: {CutmixOperator: {alpha: -1}}}]": "-1",
}


@pytest.mark.parametrize("override, key, valid", BAD_VALUES, ids=[o for o, _, _ in BAD_VALUES])
def test_out_of_range_value_names_key_value_and_range(override, key, valid):
    with pytest.raises(ConfigError) as info:
        get_config(RECIPE, [override])
    message = str(info.value)
    assert f"{key} must be" in message and valid in message, message
    assert f"got {SHOWN.get(override, override.split('=', 1)[1])}" in message, message


def test_every_bad_value_is_listed_at_once():
    with pytest.raises(ConfigError) as info:
        get_config(RECIPE, ["Optimizer.lr.eta_min=-5", "Optimizer.momentum=-3", "Global.epochs=0"])
    message = str(info.value)
    assert "3 values are out of range" in message
    assert all(k in message for k in ("Optimizer.lr.eta_min", "Optimizer.momentum", "Global.epochs"))


def test_schedule_shape_is_checked_at_load_time(tmp_path):
    piecewise = ["Optimizer.lr.name=Piecewise", "Optimizer.lr.decay_epochs=[30, 60]",
                 "Optimizer.lr.values=[0.1, 0.01]", "Optimizer.lr.warmup_epoch=0"]
    with pytest.raises(ConfigError, match=r"Optimizer.lr.values.*decay_epochs.*\b2\b.*\b2\b"):  # keys, counts
        get_config(RECIPE, piecewise)
    with pytest.raises(ConfigError, match=r"warmup_start_lr.*\[0, 0\.1\)"):  # the key and its allowed range
        get_config(RECIPE, piecewise[:2] + ["Optimizer.lr.values=[0.1, 0.01, 0.001]",
                                            "Optimizer.lr.warmup_epoch=1", "Optimizer.lr.warmup_start_lr=0.5"])
    # no warm-up: warmup_start_lr is not used, so it is not compared
    assert get_config(RECIPE, ["Optimizer.lr.warmup_epoch=0", "Optimizer.lr.warmup_start_lr=0.5"])


def test_paddleclas_values_and_edges_pass():
    # PaddleClas writes 1e-5 (a YAML string) and 1.0/255.0; edges of each range are valid
    config = get_config(RECIPE, ["Optimizer.lr.eta_min=0", "Optimizer.momentum=0", "Optimizer.lr.warmup_epoch=0",
                                 "Loss.Train.0.CELoss.epsilon=0", "DataLoader.Train.loader.num_workers=0",
                                 "DataLoader.Eval.dataset.transform_ops.2.CropImage.size=[32, 24]"])
    assert config["Optimizer"]["lr"]["warmup_start_lr"] == 1e-4
    assert get_config(RECIPE, ["Optimizer.lr.eta_min=0.1"])["Optimizer"]["lr"]["eta_min"] == 0.1  # == learning_rate


BAD_NAMES = [
    # (override, what the error must say: the path, the valid names, the closest one)
    ("Optimizer.name=Momentun", r"unknown optimizer 'Momentun' in Optimizer.name\. Valid optimizers: Momentum, SGD"
                                r".*Did you mean 'Momentum'"),
    ("Optimizer.lr.name=Cosin", r"unknown LR schedule 'Cosin' in Optimizer.lr.name.*Did you mean 'Cosine'"),
    ("Optimizer.regularizer.name=L3", r"unknown regularizer 'L3' in Optimizer.regularizer.name\. Valid regularizers: L2, L1"),
    ("Loss.Train.0={CELos: {weight: 1.0}}", r"unknown loss 'CELos' in Loss.Train.0\. Valid losses: CELoss"
                                            r".*Did you mean 'CELoss'"),
    ("Metric.Eval.0={TopKAcc: {topk: [1]}}", r"unknown metric 'TopKAcc' in Metric.Eval.0.*Did you mean 'TopkAcc'"),
    ("DataLoader.Train.dataset.transform_ops.1={RandCrop: {size: 32}}",
     r"unknown transform op 'RandCrop' in DataLoader.Train.dataset.transform_ops.1\. Valid transform ops: "
     r"DecodeImage.*Did you mean 'RandCropImage'"),
    ("Infer.transforms.1={ResizeImg: {resize_short: 36}}", r"unknown transform op 'ResizeImg' in Infer.transforms.1"
                                                           r".*Did you mean 'ResizeImage'"),
    ("DataLoader.Train.dataset.name=ImageNetDatset", r"unknown dataset 'ImageNetDatset' in "
                                                     r"DataLoader.Train.dataset.name.*Did you mean 'ImageNetDataset'"),
    ("DataLoader.Eval.sampler.name=BatchSamplr", r"unknown sampler 'BatchSamplr' in DataLoader.Eval.sampler.name"
                                                 r".*Did you mean 'BatchSampler'"),
    ("Arch.name=MobileNeXt_x1", r"unknown model 'MobileNeXt_x1' in Arch.name\. Valid models: MobileNetV1_x0_25"),
    ("Infer.PostProcess.name=TopK", r"unknown post-process 'TopK' in Infer.PostProcess.name.*Did you mean 'Topk'"),
]


@pytest.mark.parametrize("override, match", BAD_NAMES, ids=[o.split("=")[0] for o, _ in BAD_NAMES])
def test_unknown_names_are_rejected_when_the_config_loads(override, match):
    with pytest.raises(ConfigError, match=match):
        get_config(RECIPE, [override])


def test_older_names_the_builders_accept_pass_the_name_check():
    # PaddleClas's older metric name and model names; a schedule that is rejected later with its reason
    config = get_config(RECIPE, ["Metric.Eval.0={Topk: {k: [1, 5]}}", "Arch.name=MobileNeXt_100"])
    assert config["Arch"]["name"] == "MobileNeXt_100" and "MobileNeXt_100" in MODELS
    assert get_config(RECIPE, ["Optimizer.lr.name=ReduceOnPlateau"])["Optimizer"]["lr"]["name"] == "ReduceOnPlateau"
    assert "CELoss" in LOSSES and "TopkAcc" in METRICS


@pytest.mark.slow
@pytest.mark.parametrize("override, expected", [
    ("Optimizer.lr.name=Cosin", ["unknown LR schedule 'Cosin' in Optimizer.lr.name", "Did you mean 'Cosine'"]),
    ("Optimizer.lr.learning_rate=-1", ["Optimizer.lr.learning_rate must be > 0, got -1"]),
])
def test_train_tool_rejects_a_bad_config_before_making_the_run_folder(tmp_path, override, expected):
    out = tmp_path / "out dir"
    proc = run_tool("train.py", "-c", RECIPE, "-o", f"Global.output_dir={out}", "-o", "Global.device=cpu",
                    "-o", override)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert all(part in text for part in expected), text[-2000:]
    assert "Traceback" not in text
    assert not out.exists()  # nothing was written


def test_data_section_typos_are_rejected_with_a_suggestion(tmp_path):
    from ppcls_lite.data import build_dataloader

    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "list.txt").write_text("a.png 0\n")
    dataset = {"name": "ImageNetDataset", "image_root": str(tmp_path), "cls_label_path": str(tmp_path / "list.txt")}
    cases = [({"dataset": {**dataset, "delimter": " "}}, r"unknown key\(s\) \['delimter'\] in DataLoader.Train.dataset.*Did you mean 'delimiter'"),
             ({"dataset": {**dataset, "name": "ImageNetDatset"}}, "Did you mean 'ImageNetDataset'"),
             ({"dataset": dataset, "sampler": {"batch_size": 2, "drop_lst": True}}, "Did you mean 'drop_last'"),
             ({"dataset": dataset, "sampler": {"name": "BatchSampler", "batch_size": 2, "rank": 0}},
              r"unknown key\(s\) \['rank'\] in DataLoader.Train.sampler \(BatchSampler\)"),
             ({"dataset": dataset, "loader": {"num_worker": 2}}, "Did you mean 'num_workers'")]
    for section, match in cases:
        with pytest.raises(ValueError, match=match):
            build_dataloader({"Train": section}, "Train", class_num=1)
