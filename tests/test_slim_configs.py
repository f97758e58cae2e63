"""PaddleClas's distillation and slim configs (configs/NOTICE) end to end: each trains, resumes exactly, evaluates,
infers and exports, with only data paths, class count, image sizes, batch size, workers, epochs, device and the
teacher's weights path overridden. `pretrained: True` downloads PaddleClas's URLs from a 127.0.0.1 mirror.

One module-scoped run per config (2 epochs at 32 px on 24 images, then epoch 2 again from epoch_1 in another
folder), shared by the asserts below."""
import collections
import io
import random
import urllib.parse

import numpy as np
import paddle
import pytest
import yaml

from helpers import REPO_ROOT, LoopbackServer, Route, paddleclas_data_overrides
from ppcls_lite.arch import build_model
from ppcls_lite.arch.pretrained import pretrained_url
from ppcls_lite.config import get_config, load_yaml_with_bases
from ppcls_lite.engine import build_engine
from ppcls_lite.engine.checkpoint import load_checkpoint

DATA = REPO_ROOT / "dataset" / "fashion_mnist_mini"
MV3_DISTILL = "ImageNet/Distillation/mv3_large_x1_0_distill_mv3_small_x1_0.yaml"
R50_DISTILL = "quick_start/professional/R50_vd_distill_MV3_large_x1_0_CIFAR100.yaml"
QUANT = "slim/MobileNetV3_large_x1_0_quantization.yaml"
PRUNE = "slim/MobileNetV3_large_x1_0_prune.yaml"
CONFIGS = (MV3_DISTILL, R50_DISTILL, QUANT, PRUNE)
# What `pretrained: True` downloads in these configs: (model, use_ssld).
DOWNLOADS = {MV3_DISTILL: [("MobileNetV3_large_x1_0", True)], R50_DISTILL: [("MobileNetV3_large_x1_0", False)],
             QUANT: [("MobileNetV3_large_x1_0", False)], PRUNE: [("MobileNetV3_large_x1_0", False)]}

pytestmark = pytest.mark.slow


def test_the_copies_are_paddleclas_files_listed_in_the_notice():
    notice = (REPO_ROOT / "configs" / "NOTICE").read_text()
    assert "Apache License, Version 2.0" in notice
    for name in CONFIGS:
        assert name in notice and (REPO_ROOT / "configs" / name).is_file()


def _overrides(name, root, output_dir):
    raw = load_yaml_with_bases(REPO_ROOT / "configs" / name)
    out = ["Global.device=cpu", "Global.epochs=2", f"Global.output_dir={output_dir}", "Global.print_batch_step=100",
           f"Infer.infer_imgs={root / 'infer_list.txt'}"]
    out += paddleclas_data_overrides(raw, DATA, {split: root / f"{split}_list.txt" for split in ("train", "val")}, 8)
    if raw["Arch"]["name"] == "DistillationModel":
        out += [f"Arch.models.{i}.{next(iter(m))}.class_num=10" for i, m in enumerate(raw["Arch"]["models"])]
        if "class_num" in raw["Arch"]:
            out.append("Arch.class_num=10")
        if name == R50_DISTILL:  # the teacher PaddleClas trained first on CIFAR100 ("./pretrained/best_model")
            out.append(f"Arch.models.0.Teacher.pretrained={root / 'pretrained' / 'best_model'}")
    else:
        out.append("Arch.class_num=10")
    return out


def _serve_weights(server, model_name, use_ssld):
    """PaddleClas's URL of the model's ImageNet weights, served with random weights of the right shapes."""
    paddle.seed(11)
    state = {k: v.numpy() for k, v in build_model({"name": model_name, "class_num": 1000}).state_dict().items()}
    buffer = io.BytesIO()
    paddle.save(state, buffer)
    path = urllib.parse.urlsplit(pretrained_url(model_name, use_ssld)).path
    server.routes[path] = Route(buffer.getvalue())
    return path, state


def _train(config):
    engine = build_engine(config, "train")
    engine.train()
    return engine


@pytest.fixture(scope="module", params=CONFIGS)
def run(request, tmp_path_factory):
    """Train 2 epochs; resume epoch 2 from epoch_1 elsewhere; evaluate, infer and export best_model."""
    name = request.param
    root = tmp_path_factory.mktemp("slim_data")
    rng = random.Random(0)
    for split, n in (("train", 24), ("val", 12)):
        lines = [line for line in (DATA / f"{split}_list.txt").read_text().splitlines() if line.strip()]
        (root / f"{split}_list.txt").write_text("\n".join(rng.sample(lines, n)) + "\n")
    infer = [str(DATA / line.split()[0]) for line in (root / "val_list.txt").read_text().splitlines()]
    (root / "infer_list.txt").write_text("\n".join(infer) + "\n")
    (root / "pretrained").mkdir()
    paddle.seed(12)
    teacher = build_model({"name": "ResNet50_vd", "class_num": 10})
    paddle.save(teacher.state_dict(), str(root / "pretrained" / "best_model.pdparams"))
    with pytest.MonkeyPatch.context() as mp, LoopbackServer() as server:
        mp.setenv("PPCLS_LITE_HOME", str(root / "cache"))
        mp.setenv("PPCLS_LITE_WEIGHTS_MIRROR", server.url)
        served = {m: _serve_weights(server, m, ssld) for m, ssld in DOWNLOADS[name]}
        config = get_config(REPO_ROOT / "configs" / name, _overrides(name, root, root / "out"))
        engine = _train(config)
        resumed_config = get_config(REPO_ROOT / "configs" / name, _overrides(name, root, root / "resumed") + [
            f"Global.checkpoints={root / 'out' / config['Arch']['name'] / 'epoch_1'}"])
        _train(resumed_config)
        best = root / "out" / config["Arch"]["name"] / "best_model"
        eval_config = get_config(REPO_ROOT / "configs" / name, _overrides(name, root, root / "out") + [
            f"Global.pretrained_model={best}"])
        evaluation = build_engine(eval_config, "eval").evaluate()
        predictions = build_engine(eval_config, "infer").infer()
        from ppcls_lite.export import export_from_config

        export_dir = root / "inference"
        export_from_config(eval_config, str(export_dir), onnx=True, verify_report=True, mnn=name == QUANT)
        requests = list(server.requests)
    yield {"name": name, "root": root, "config": config, "engine": engine, "served": served, "requests": requests,
           "run_dir": root / "out" / config["Arch"]["name"], "resumed_dir": root / "resumed" / config["Arch"]["name"],
           "evaluation": evaluation, "predictions": predictions, "export_dir": export_dir}


def _params(prefix):
    state, _, _ = load_checkpoint(str(prefix))
    return {k: np.asarray(v) for k, v in state.items()}


def test_trains_and_resumes_exactly(run):
    straight, resumed = _params(run["run_dir"] / "latest"), _params(run["resumed_dir"] / "latest")
    assert straight.keys() == resumed.keys()
    for key in straight:  # QAT: the quanters' scales, accumulators and PACT alphas too
        np.testing.assert_array_equal(straight[key], resumed[key], err_msg=key)
    if run["name"] == QUANT:
        assert any(k.endswith("activation_quanter.alpha") for k in straight)


def test_downloads_come_through_the_mirror_and_frozen_teachers_do_not_change(run):
    assert sorted({path for path, _ in run["requests"]}) == sorted(p for p, _ in run["served"].values())
    if run["name"] == MV3_DISTILL:
        # the frozen teacher keeps the downloaded weights (BN statistics too: it stays in eval mode)
        teacher = {k[len("Teacher."):]: v for k, v in _params(run["run_dir"] / "latest").items()
                   if k.startswith("Teacher.")}
        _, downloaded = run["served"]["MobileNetV3_large_x1_0"]
        for key, value in teacher.items():
            if not key.startswith("fc."):  # 1000 classes in the file, 10 here: kept fresh
                np.testing.assert_array_equal(value, downloaded[key], err_msg=key)
        _, opt_state, _ = load_checkpoint(str(run["run_dir"] / "latest"))
        names = opt_state["param_names"]
        teacher_params = {unique for structured, unique in names.items() if structured.startswith("Teacher.")}
        assert not [k for k in opt_state if any(k.startswith(p + "_") for p in teacher_params)]


def test_evaluates_and_infers(run):
    assert 0.0 <= run["evaluation"]["top1"] <= 1.0 and np.isfinite(run["evaluation"]["loss"])
    assert len(run["predictions"]) == 12 and all(len(p["class_ids"]) == 5 for p in run["predictions"])
    if run["name"] == R50_DISTILL:  # no Arch.class_num: the sub-models' 10 classes, not 1000
        assert run["engine"].settings.class_num == 10
        assert all(max(p["class_ids"]) < 10 for p in run["predictions"])


def test_export_holds_what_deploys(run):
    import onnx

    from ppcls_lite.predict import Predictor

    export_dir = run["export_dir"]
    info = yaml.safe_load((export_dir / "inference.yml").read_text())["Global"]
    report = yaml.safe_load((export_dir / "export_report.json").read_text())
    assert report["passed"]
    graph = onnx.load(str(export_dir / "model.onnx")).graph
    onnx_weights = sum(int(np.prod(t.dims)) for t in graph.initializer if len(t.dims) >= 2)  # conv / fc weights
    ops = collections.Counter(node.op_type for node in graph.node)
    paddle.seed(0)
    if run["name"] in (MV3_DISTILL, R50_DISTILL):
        student_name = "MobileNetV3_small_x1_0" if run["name"] == MV3_DISTILL else "MobileNetV3_large_x1_0"
        assert info["model_name"] == student_name
        student = build_model({"name": student_name, "class_num": 10})
        student_weights = sum(int(np.prod(p.shape)) for p in student.parameters() if len(p.shape) >= 2)
        assert onnx_weights == student_weights  # exactly the student's conv and fc weights; no teacher
    if run["name"] == QUANT:
        assert ops["QuantizeLinear"] > 50 and ops["DequantizeLinear"] == 2 * ops["QuantizeLinear"]
        assert b"quantize_linear" in (export_dir / info["model_file"]).read_bytes()
    if run["name"] == PRUNE:
        full = build_model({"name": "MobileNetV3_large_x1_0", "class_num": 10})
        full_weights = sum(int(np.prod(p.shape)) for p in full.parameters() if len(p.shape) >= 2)
        assert onnx_weights < 0.6 * full_weights  # physically smaller: 30% fewer channels on both sides of each conv
    files = sorted(str(p) for p in (DATA / "val").rglob("*.png"))[:4]
    for backend in ("paddle", "onnxruntime") + (("mnn",) if run["name"] == QUANT else ()):
        results = Predictor(export_dir, backend=backend, precision="int8" if backend == "mnn" else "fp32"
                            ).predict_files(files)
        assert [r["file_name"] for r in results] == files
    by_backend = {e["backend"]: e for e in report["variants"]}
    if run["name"] == QUANT:  # int8 files: within one int8 rounding step of the QAT model (QAT_TOLERANCE)
        assert by_backend["paddle"]["precision"] == by_backend["onnxruntime"]["precision"] == "int8-qat"
        assert by_backend["mnn"]["file"] == "model_int8.mnn" and by_backend["mnn"]["precision"] == "int8"
        assert "model_int8.mnn" in info["quantization"]["qat"]["files"]
    else:
        assert by_backend["onnxruntime"]["top1_agreement"] == 1.0 and by_backend["paddle"]["top1_agreement"] == 1.0
