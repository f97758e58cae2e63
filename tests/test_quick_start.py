"""The quick-start configs: self-contained, valid, and they train through tools/train.py (on a subset here;
the full run, ~5 minutes on 2 CPU cores, is documented in README, not run in tests)."""
import csv
import random

import pytest
import yaml

from ppcls_lite.engine import build_settings
from ppcls_lite.config import get_config
from helpers import REPO_ROOT, run_tool

QUICK_START = REPO_ROOT / "configs" / "quick_start" / "MobileNetV3_small_fashion_mnist.yaml"
FINETUNE = REPO_ROOT / "configs" / "quick_start" / "MobileNetV3_small_fashion_mnist_finetune.yaml"
MOBILENET_V4 = REPO_ROOT / "configs" / "quick_start" / "MobileNetV4_conv_small_fashion_mnist.yaml"
DATA = REPO_ROOT / "dataset" / "fashion_mnist_mini"


@pytest.mark.parametrize("path", [QUICK_START, FINETUNE, MOBILENET_V4], ids=lambda p: p.name)
def test_quick_start_configs_are_self_contained_and_valid(path):
    raw = yaml.safe_load(path.read_text())
    assert "_BASE_" not in raw
    config = get_config(str(path))
    settings = build_settings(config, "train")
    assert settings.Global.device == "cpu" and settings.class_num == 10
    for mode in ("Train", "Eval"):
        dataset = config["DataLoader"][mode]["dataset"]
        assert dataset["image_root"].rstrip("/").endswith("dataset/fashion_mnist_mini")
    assert config["Infer"]["PostProcess"]["class_id_map_file"].endswith("fashion_mnist_mini/label_list.txt")


def test_finetune_config_starts_from_the_quick_start_best_model():
    quick, fine = get_config(str(QUICK_START)), get_config(str(FINETUNE))
    expected = f"{quick['Global']['output_dir'].rstrip('/')}/{quick['Arch']['name']}/best_model"
    assert fine["Global"]["pretrained_model"] == expected
    assert fine["Arch"]["name"] == quick["Arch"]["name"] and fine["Arch"].get("freeze_befor")
    assert fine["Global"]["output_dir"] != quick["Global"]["output_dir"]  # never overwrites the source run


def _subset_lists(tmp_path, n_train=80, n_val=40):
    """Small train/val lists over the shipped images (paths stay relative to the shipped image_root)."""
    if not (DATA / "train_list.txt").is_file():
        pytest.skip(f"shipped quick-start data not found at {DATA}")
    rng = random.Random(0)
    out = {}
    for split, n in (("train", n_train), ("val", n_val)):
        lines = [l for l in (DATA / f"{split}_list.txt").read_text().splitlines() if l.strip()]
        path = tmp_path / f"{split}_subset.txt"
        path.write_text("\n".join(rng.sample(lines, min(n, len(lines)))) + "\n")
        out[split] = path
    return out


@pytest.mark.slow
def test_quick_start_and_finetune_train_on_a_subset(tmp_path):
    lists = _subset_lists(tmp_path)
    common = ["-o", f"DataLoader.Train.dataset.cls_label_path={lists['train']}",
              "-o", f"DataLoader.Eval.dataset.cls_label_path={lists['val']}",
              "-o", "Global.epochs=2", "-o", "DataLoader.Train.sampler.batch_size=16",
              "-o", "DataLoader.Train.loader.num_workers=0"]
    out = tmp_path / "qs"
    proc = run_tool("train.py", "-c", QUICK_START, "-o", f"Global.output_dir={out}", *common)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    arch = get_config(str(QUICK_START))["Arch"]["name"]
    run = out / arch
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert len(rows) == 2 and 0.0 <= float(rows[-1]["eval_top1"]) <= 1.0
    assert (run / "best_model.pdparams").is_file()

    proc = run_tool("train.py", "-c", FINETUNE, "-o", f"Global.output_dir={tmp_path / 'ft'}",
                    "-o", f"Global.pretrained_model={run / 'best_model'}", *common)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"loaded" in proc.stdout and "frozen (not given to the optimizer)" in proc.stdout
    assert (tmp_path / "ft" / arch / "metrics.csv").is_file()


@pytest.mark.slow
def test_mobilenetv4_quick_start_trains_on_a_subset(tmp_path):
    lists = _subset_lists(tmp_path, n_train=64, n_val=32)
    out = tmp_path / "qs"
    proc = run_tool("train.py", "-c", MOBILENET_V4, "-o", f"Global.output_dir={out}",
                    "-o", f"DataLoader.Train.dataset.cls_label_path={lists['train']}",
                    "-o", f"DataLoader.Eval.dataset.cls_label_path={lists['val']}", "-o", "Global.epochs=1",
                    "-o", "DataLoader.Train.sampler.batch_size=16", "-o", "DataLoader.Train.loader.num_workers=0")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = out / "MobileNetV4_conv_small"
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert len(rows) == 1 and 0.0 <= float(rows[0]["eval_top1"]) <= 1.0
    assert (run / "best_model.pdparams").is_file()
