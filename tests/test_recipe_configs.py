"""configs/<Model>.yaml: each loads, validates and carries PaddleClas's ImageNet recipe from recipes.tsv."""
import ast
import csv
import re

import pytest

from helpers import REPO_ROOT as REPO
from ppcls_lite.arch import build_model, list_models
from ppcls_lite.optimizer import build_lr_scheduler
from ppcls_lite.config import get_config

CONFIG_DIR = REPO / "configs"
MODEL_NAMES = (
    ["MobileNetV1_x0_25", "MobileNetV1_x0_5", "MobileNetV1_x0_75", "MobileNetV1"]
    + ["MobileNetV2_x0_25", "MobileNetV2_x0_5", "MobileNetV2_x0_75", "MobileNetV2", "MobileNetV2_x1_5",
       "MobileNetV2_x2_0"]
    + [f"MobileNetV3_{size}_x{w}" for size in ("small", "large") for w in ("0_35", "0_5", "0_75", "1_0", "1_25")]
    + [f"MobileNeXt_x{w}" for w in ("0_35", "0_5", "0_75", "1_0", "1_4")]
)
# Distillation teachers: their configs are PaddleClas's distillation configs, not one per model.
TEACHER_NAMES = [f"ResNet{depth}_vd" for depth in (18, 34, 50, 101, 152, 200)]
# Widths PaddleClas has no recipe for use the family recipe of the nearest published width.
RECIPE_FALLBACK = {"MobileNeXt_x0_35": "MobileNeXt_x1_0", "MobileNeXt_x0_5": "MobileNeXt_x1_0",
                   "MobileNeXt_x0_75": "MobileNeXt_x1_0", "MobileNeXt_x1_4": "MobileNeXt_x1_0"}


def parse_call(text):
    """'Cosine(learning_rate=0.1,eta_min=1e-5)' -> ('Cosine', {'learning_rate': 0.1, 'eta_min': 1e-05})."""
    name, _, args = text.partition("(")
    kwargs = {}
    for key, value in re.findall(r"(\w+)=(\[[^\]]*\]|[^,)]+)", args):
        kwargs[key] = None if value == "-" else ast.literal_eval(value)
    return name, kwargs


@pytest.fixture(scope="module")
def recipes(reference_dir):
    with open(reference_dir / "recipes.tsv", newline="") as f:
        return {row["config"]: row for row in csv.DictReader(f, delimiter="\t")}


# Families whose recipe is PaddleClas's own config, copied unchanged to configs/ImageNet/<family>/.
PADDLECLAS_RECIPES = {f"MobileNetV4_{v}": "MobileNetV4"
                      for v in ("conv_small", "conv_medium", "conv_large", "hybrid_medium", "hybrid_large")}


def test_every_registered_model_has_a_config():
    assert sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")) == sorted(MODEL_NAMES)
    assert sorted(list_models()) == sorted(MODEL_NAMES + TEACHER_NAMES + list(PADDLECLAS_RECIPES))


@pytest.mark.parametrize("name", list(PADDLECLAS_RECIPES))
def test_paddleclas_recipe_copies_are_unchanged_and_load(name):
    path = CONFIG_DIR / "ImageNet" / PADDLECLAS_RECIPES[name] / f"{name}.yaml"
    test_copy = REPO / "tests" / "paddleclas_configs" / "ImageNet" / PADDLECLAS_RECIPES[name] / f"{name}.yaml"
    assert path.read_bytes() == test_copy.read_bytes()  # both are PaddleClas's file (see the NOTICE files)
    assert name in (path.parent / "NOTICE").read_text()
    config = get_config(path)
    assert config["Arch"]["name"] == name and config["Optimizer"]["name"] == "AdamW"
    assert config["DataLoader"]["Train"]["dataset"]["image_root"] == "./dataset/ILSVRC2012/"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_config_matches_recipe(name, recipes):
    recipe = recipes[RECIPE_FALLBACK.get(name, name)]
    config = get_config(CONFIG_DIR / f"{name}.yaml")
    assert config["Arch"]["name"] == name and config["Arch"]["class_num"] == 1000
    assert config["Global"]["epochs"] == int(recipe["epochs"])

    opt = config["Optimizer"]
    opt_name, opt_args = parse_call(recipe["optimizer"])
    assert opt["name"] == opt_name.split("+")[0]
    assert opt["momentum"] == opt_args["m"]
    assert bool(opt.get("use_nesterov", False)) == ("+nesterov" in opt_name)

    lr = opt["lr"]
    lr_name, lr_args = parse_call(recipe["lr"])
    assert lr["name"] == lr_name
    for key, value in lr_args.items():
        assert lr[key] == pytest.approx(value), key
    assert float(lr.get("warmup_epoch", 0)) == float(recipe["warmup_epoch"])

    reg_name, coeff = recipe["regularizer"].split(":")
    assert opt["regularizer"]["name"] == reg_name and opt["regularizer"]["coeff"] == pytest.approx(float(coeff))
    if recipe["no_wd"] == "-":
        assert not opt.get("no_weight_decay_name") and not opt.get("one_dim_param_no_weight_decay")
    else:
        no_wd_name, one_dim = recipe["no_wd"].split(",")
        assert opt["no_weight_decay_name"] == no_wd_name
        assert opt["one_dim_param_no_weight_decay"] == (one_dim == "True")

    train = config["DataLoader"]["Train"]
    assert train["sampler"]["batch_size"] == int(recipe["train_batch_per_device"])
    _, loss_args = parse_call(recipe["loss"])
    assert config["Loss"]["Train"][0]["CELoss"].get("epsilon") == loss_args["eps"]
    ops = [next(iter(op)) for op in train["dataset"]["transform_ops"]]
    assert ops == recipe["train_ops"].split(",")
    assert "batch_transform_ops" not in train["dataset"] and recipe["batch_ops"] == "-"
    assert ("EMA" in config) == (recipe["ema"] == "True")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_config_paths_and_schedule_build(name):
    config = get_config(CONFIG_DIR / f"{name}.yaml")
    label_file = config["Infer"]["PostProcess"]["class_id_map_file"]
    assert (REPO / label_file).is_file(), label_file
    assert config["DataLoader"]["Train"]["dataset"]["image_root"] == "./dataset/ILSVRC2012/"
    assert config["DataLoader"]["Eval"]["dataset"]["cls_label_path"] == "./dataset/ILSVRC2012/val_list.txt"
    scheduler = build_lr_scheduler(config["Optimizer"]["lr"], config["Global"]["epochs"], steps_per_epoch=10)
    lr = config["Optimizer"]["lr"]
    warmup = float(lr.get("warmup_epoch", 0))
    assert scheduler() == pytest.approx(float(lr.get("warmup_start_lr", 0.0)) if warmup else
                                        lr.get("values", [lr.get("learning_rate")])[0])


def test_model_files_are_short_and_reuse_bases():
    for name in MODEL_NAMES:
        text = (CONFIG_DIR / f"{name}.yaml").read_text()
        assert "_BASE_: _base_/" in text
        assert len(text.splitlines()) < 45, name
    fallback = (CONFIG_DIR / "MobileNeXt_x1_4.yaml").read_text()
    assert "MobileNeXt_x1_0 recipe" in fallback  # the file says where its recipe comes from


def test_recipe_optimizer_builds_on_the_real_model():
    from ppcls_lite.optimizer import build_optimizer, split_decay_params

    config = get_config(CONFIG_DIR / "MobileNeXt_x0_35.yaml", ["Arch.class_num=10"])
    model = build_model(config["Arch"])
    opt_cfg = config["Optimizer"]
    optimizer, scheduler = build_optimizer(opt_cfg, config["Global"]["epochs"], 5, model)
    assert scheduler.by_epoch is True and scheduler() == pytest.approx(1e-4)
    decay, no_decay = split_decay_params(model, opt_cfg["no_weight_decay_name"],
                                         opt_cfg["one_dim_param_no_weight_decay"])
    assert decay and all(len(p.shape) > 1 and not n.endswith(".bias") for n, p in decay)
    assert any(n.endswith(".bias") for n, _ in no_decay)
    assert any(n.endswith(".weight") and len(p.shape) == 1 for n, p in no_decay)  # BN scales
    n_trainable = sum(1 for p in model.parameters() if not p.stop_gradient)
    assert sum(len(g["params"]) for g in optimizer._param_groups) == n_trainable
