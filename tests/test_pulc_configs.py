"""PaddleClas's twelve practical-task configs (configs/PULC/, quick_start/professional/MobileNetV1_multilabel.yaml,
multi_scale/MobileNetV1_multi_scale.yaml, copied unchanged) train, evaluate, infer, export and predict here.

Only data paths, batch size, workers, epochs, image sizes and device are overridden (`-o` style, through
get_config). `Arch.pretrained: True` stays: a 127.0.0.1 server stands in for PaddleClas's download host, serving
random ImageNet-shaped weights at its URL paths (the 1000-class fc is skipped, as for a real fine-tune). The data is
generated in each config's list format (space- or tab-separated, multi-label `path<TAB>0,1,...`), in folders and
file names with spaces. Every config: one epoch on 6 images of 48 px, in process. The predictor must give what
tools/infer.py gives, with the exported post-process and with the post-process of PaddleClas's PULC deploy config.
"""
import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest
import yaml

from helpers import REPO_ROOT, read_metrics, subprocess_env
from ppcls_lite.config import get_config
from ppcls_lite.engine import build_engine
from ppcls_lite.export import export_from_config
from ppcls_lite.predict import Predictor

pytestmark = pytest.mark.slow

# config (below configs/) -> (list format, Arch.class_num, Infer post-process or the default, PULC deploy config)
CONFIGS = {
    "PULC/car_exists/MobileNetV3_small_x0_35.yaml": ("space", 2, "ThreshOutput", "car_exists"),
    "PULC/code_exists/MobileNetV3_small_x0_35.yaml": ("space", 2, "ThreshOutput", "code_exists"),
    "PULC/person_exists/MobileNetV3_small_x0_35.yaml": ("space", 2, "ThreshOutput", "person_exists"),
    "PULC/safety_helmet/MobileNetV3_small_x0_35.yaml": ("space", 2, "ThreshOutput", "safety_helmet"),
    "PULC/language_classification/MobileNetV3_small_x0_35.yaml": ("space", 10, "Topk", "language_classification"),
    "PULC/text_image_orientation/MobileNetV3_small_x0_35.yaml": ("space", 4, "Topk", "text_image_orientation"),
    "PULC/textline_orientation/MobileNetV3_small_x0_35.yaml": ("space", 2, "Topk", "textline_orientation"),
    "PULC/traffic_sign/MobileNetV3_samll_x0_35.yaml": ("tab", 232, "Topk", "traffic_sign"),
    "PULC/person_attribute/MobileNetV3_small_x0_35.yaml": ("multilabel", 26, "PersonAttribute", "person_attribute"),
    "PULC/vehicle_attribute/MobileNetV3_small_x0_35.yaml": ("multilabel", 19, "MultiLabelThreshOutput",
                                                            "vehicle_attribute"),
    "quick_start/professional/MobileNetV1_multilabel.yaml": ("multilabel", 33, "MultiLabelThreshOutput", None),
    "multi_scale/MobileNetV1_multi_scale.yaml": ("space", 1000, "Topk", None),
}
# The first Eval metric's main result: what picks best_model and names metrics.csv's column.
EVAL_KEYS = {"TprAtFpr": "tpr", "TopkAcc": "top1", "ATTRMetric": "ma", "AccuracyScore": "AccuracyScore"}
# PULC deploy configs also run through PaddleClas's deploy command line (a subprocess each).
CLI_DEPLOY = ("car_exists", "vehicle_attribute")
SIZES = {"RandCropImage": 32, "CropImage": 32, "RandomCropImage": [32, 40], "Padv2": [36, 44]}


@pytest.fixture(scope="module")
def imagenet_mirror(tmp_path_factory):
    """PaddleClas's download host on 127.0.0.1: random 1000-class weights of the two models the configs name."""
    from helpers import LoopbackServer, Route

    from ppcls_lite.arch import build_model
    from ppcls_lite.arch.pretrained import MODEL_URLS

    served = tmp_path_factory.mktemp("served")
    with LoopbackServer() as server, pytest.MonkeyPatch.context() as patch:
        for name in ("MobileNetV3_small_x0_35", "MobileNetV1"):
            paddle.seed(0)
            paddle.save(build_model({"name": name, "class_num": 1000}).state_dict(), str(served / f"{name}.pdparams"))
            server.routes["/" + MODEL_URLS[name].split("/", 3)[3]] = Route((served / f"{name}.pdparams").read_bytes())
        patch.setenv("PPCLS_LITE_WEIGHTS_MIRROR", server.url)
        patch.setenv("PPCLS_LITE_HOME", str(tmp_path_factory.mktemp("home")))
        yield server


def write_data(root, kind, class_num, count=6):
    """`count` 48x56 JPEGs in `root/photo dir/` plus train/val lists in the config's format; returns the val files."""
    rng = np.random.default_rng(class_num)
    (root / "photo dir").mkdir(parents=True)
    files, lines = [], []
    for i in range(count):
        files.append(f"photo dir/image {i}.jpg")
        cv2.imwrite(str(root / files[-1]), rng.integers(0, 256, (48, 56, 3), dtype=np.uint8))
        label = ",".join(map(str, rng.integers(0, 2, class_num))) if kind == "multilabel" else str(i % class_num)
        lines.append(files[-1] + (" " if kind == "space" else "\t") + label)
    (root / "train list.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "val list.txt").write_text("\n".join(lines[:4]) + "\n", encoding="utf-8")
    return [str(root / f) for f in files[:4]]


def size_overrides(ops, prefix):
    """-o overrides shrinking every size of an op list (resize_short 36, crops 32, [w, h] sizes 32x40)."""
    out = []
    for i, item in enumerate(ops or []):
        name, params = next(iter(item.items()))
        for key, value in (params or {}).items():
            if key == "size" and name in SIZES:
                out.append(f"{prefix}.{i}.{name}.size={SIZES[name]}")
            elif name == "ResizeImage" and key in ("resize_short", "size"):
                out.append(f"{prefix}.{i}.{name}.{key}={36 if key == 'resize_short' else [32, 40]}")
    return out


def overrides_for(path, root, out):
    raw = yaml.safe_load(path.read_text())
    result = ["Global.device=cpu", "Global.epochs=1", f"Global.output_dir={out / 'output'}",
              f"Global.save_inference_dir={out / 'inference'}", f"Infer.infer_imgs={root / 'val list.txt'}"]
    for mode, split in (("Train", "train"), ("Eval", "val")):
        where = f"DataLoader.{mode}"
        result += [f"{where}.dataset.image_root={root}", f"{where}.dataset.cls_label_path={root / f'{split} list.txt'}",
                   f"{where}.loader.num_workers=0"]
        sampler = raw["DataLoader"][mode]["sampler"]
        result += ([f"{where}.sampler.first_bs=3", f"{where}.sampler.scales=[32, 64]"] if "first_bs" in sampler
                   else [f"{where}.sampler.batch_size=3"])
        result += size_overrides(raw["DataLoader"][mode]["dataset"]["transform_ops"], f"{where}.dataset.transform_ops")
    return result + size_overrides((raw.get("Infer") or {}).get("transforms"), "Infer.transforms")


def deploy_command_line(task, model_dir, images, tmp_path):
    """deploy/python/predict_cls.py -c deploy/configs/PULC/<task>/inference_<task>.yaml -o ... (PaddleClas's command,
    its PreProcess sizes shrunk as the training config's); returns the results it writes."""
    deploy_yaml = REPO_ROOT / f"deploy/configs/PULC/{task}/inference_{task}.yaml"
    ops = yaml.safe_load(deploy_yaml.read_text())["PreProcess"]["transform_ops"]
    overrides = [f"Global.inference_model_dir={model_dir}", f"Global.infer_imgs={images}", "Global.use_gpu=False",
                 "Global.cpu_num_threads=1", *size_overrides(ops, "PreProcess.transform_ops")]
    out = tmp_path / "deploy_cli.jsonl"
    command = [sys.executable, str(REPO_ROOT / "deploy/python/predict_cls.py"), "-c", str(deploy_yaml),
               *[arg for o in overrides for arg in ("-o", o)], "--output", str(out)]
    proc = subprocess.run(command, cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "pre_label").exists()  # SavePreLabel is not run, as in PaddleClas's predict_cls.py
    return [json.loads(line) for line in out.read_text().splitlines()]


def assert_same_results(got, expected):
    """Predictor results == tools/infer.py results: ids, names, 0/1 outputs exactly, scores to 1e-4."""
    assert [r["file_name"] for r in got] == [r["file_name"] for r in expected]
    for a, b in zip(got, expected):
        assert set(a) == set(b)
        for key in set(a) - {"scores", "attributes"}:
            assert a[key] == b[key], key
        if "scores" in a:
            np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-4)
        if "attributes" in a:  # VehicleAttribute writes probabilities into its text
            numbers = re.compile(r"prob: ([0-9.]+)")
            assert numbers.sub("", str(a["attributes"])) == numbers.sub("", str(b["attributes"]))
            np.testing.assert_allclose([float(v) for v in numbers.findall(str(a["attributes"]))],
                                       [float(v) for v in numbers.findall(str(b["attributes"]))], atol=1e-4)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_paddleclas_task_config_trains_evaluates_infers_exports_predicts(name, tmp_path, imagenet_mirror):
    kind, class_num, post_name, deploy = CONFIGS[name]
    path = REPO_ROOT / "configs" / name
    root = tmp_path / "data set"
    val_files = write_data(root, kind, class_num)
    overrides = overrides_for(path, root, tmp_path)
    config = get_config(path, overrides)
    assert config["Arch"]["class_num"] == class_num  # unchanged, as Arch.pretrained (True in the PULC configs)

    engine = build_engine(config, "train")
    engine.train()
    run = tmp_path / "output" / config["Arch"]["name"]
    assert all((run / f"{prefix}.pdparams").is_file() for prefix in ("latest", "best_model"))
    first_metric = next(iter(config["Metric"]["Eval"][0]))
    assert read_metrics(run)[0][f"eval_{EVAL_KEYS[first_metric]}"] != ""

    config = get_config(path, overrides + [f"Global.pretrained_model={run / 'best_model'}"])
    result = build_engine(config, "eval").evaluate_report(report=True)
    report = Path(result["report_dir"])
    if first_metric == "TprAtFpr":  # yes/no: the threshold to copy into ThreshOutput, and the curves
        assert 0 <= result["threshold"] <= 1 and 0 <= result["tpr"] <= 1
        assert (report / "roc_curve.png").stat().st_size > 0 and (report / "pr_curve.png").stat().st_size > 0
    if kind == "multilabel":  # one row per label
        assert len(list(csv.DictReader(open(report / "report.csv")))) == class_num

    infer_engine = build_engine(config, "infer")
    expected = infer_engine.infer(output=str(tmp_path / "infer.jsonl"))
    assert type(infer_engine.postprocess).__name__ == post_name
    assert [r["file_name"] for r in expected] == val_files

    info = export_from_config(config)
    assert list(info["PostProcess"])[0] == post_name
    assert info["Global"]["activation"] == ("sigmoid" if kind == "multilabel" else "softmax")
    predictor = Predictor(tmp_path / "inference")
    assert_same_results(predictor.predict_files(val_files), expected)

    if deploy:  # PaddleClas's PULC deploy config's post-process on the same export
        section = yaml.safe_load((REPO_ROOT / f"deploy/configs/PULC/{deploy}/inference_{deploy}.yaml").read_text())
        section = section["PostProcess"]
        results = Predictor(tmp_path / "inference", deploy={"PostProcess": section}).predict_files(val_files)
        if section["main_indicator"] == "ThreshOutput":  # its label_0 / label_1 (code_exists: other names)
            names = [section["ThreshOutput"]["label_0"], section["ThreshOutput"]["label_1"]]
            assert [r["label_names"] for r in results] == [[names[r["class_ids"][0]]] for r in expected]
            np.testing.assert_allclose([r["scores"] for r in results], [r["scores"] for r in expected], atol=1e-4)
        elif section["main_indicator"] == post_name:  # the deploy config repeats the training config's
            assert_same_results(results, expected)
        elif section["main_indicator"] == "VehicleAttribute":
            assert set(results[0]) == {"file_name", "attributes", "output"} and len(results[0]["output"]) == 19
        if deploy in CLI_DEPLOY:  # end to end: PaddleClas's deploy command line with that config, PreProcess too
            assert_same_results(deploy_command_line(deploy, tmp_path / "inference", root / "val list.txt", tmp_path),
                                results)


def test_multi_scale_training_resumes_exactly(tmp_path, imagenet_mirror):
    """2 epochs straight == 1 epoch, then a resume (`Global.checkpoints=auto`), batches at two resolutions."""
    path = REPO_ROOT / "configs/multi_scale/MobileNetV1_multi_scale.yaml"
    root = tmp_path / "data"
    write_data(root, "space", 1000, count=8)

    def train(out, epochs, *extra):
        config = get_config(path, overrides_for(path, root, tmp_path / out) + [f"Global.epochs={epochs}", *extra])
        engine = build_engine(config, "train")
        engine.train()
        return engine

    straight = train("straight", 2)
    shapes = set()
    for epoch in (1, 2):
        straight.train_loader.set_epoch(epoch)
        shapes |= {(tuple(images.shape[2:]), images.shape[0]) for images, _ in straight.train_loader}
    assert shapes == {((32, 32), 3), ((64, 64), 1)}  # PaddleClas's rule: 64 px batches hold 3 * 32^2 / 64^2 -> 1
    train("resumed", 1)
    resumed = train("resumed", 2, "Global.checkpoints=auto")
    assert resumed.start_epoch == 2
    a = straight.model.state_dict()
    b = resumed.model.state_dict()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
