"""MobileNetV4 deployed: each of the five exports through tools/export_model.py (Paddle inference model, ONNX, int8
ONNX, MNN fp32/fp16/int8, --verify) with stochastic depth and dropout configured, which must be off in the export,
and deploy/python/predict_cls.py on the Paddle, onnxruntime and MNN backends predicts what tools/infer.py predicts.

Weights: PaddleClas-parity weights (tests/fixtures/reference) with BatchNorm statistics re-estimated on the test
images, so predictions differ from image to image. Hybrids run at 48 px, where both attention stages see more
than one key: 3x3 queries over 2x2 keys, then 2x2 over 2x2 (at 32 px the keys shrink to one position).
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest
import yaml

from conftest import (PREDICTOR_DIR, parity_weights_prefix, run_export, run_tool, subprocess_env,
                      tiny_export_config)
from ppcls_lite.arch import build_model
from ppcls_lite.pipeline import create_operators, transform
from ppcls_lite.utils.save_load import load_pretrained

SIZES = {"MobileNetV4_conv_small": 32, "MobileNetV4_conv_medium": 32, "MobileNetV4_conv_large": 32,
         "MobileNetV4_hybrid_medium": 48, "MobileNetV4_hybrid_large": 48}
BACKENDS = {"paddle": 1e-4, "onnxruntime": 1e-3, "mnn": 1e-3}  # max |score difference| to tools/infer.py


def _recalibrated_weights(name, reference_dir, tmp_path, files, infer_ops):
    """Parity weights whose BN running statistics are those of `files` (one train-mode pass, momentum 0)."""
    model = build_model({"name": name, "class_num": 10})
    load_pretrained(model, parity_weights_prefix(reference_dir, name, tmp_path))
    ops = create_operators(infer_ops)
    images = paddle.to_tensor(np.stack([transform(open(f, "rb").read(), ops) for f in files]))
    for layer in model.sublayers():
        if isinstance(layer, paddle.nn.BatchNorm2D):
            layer._momentum = 0.0
    model.train()
    with paddle.no_grad():
        model(images)
    prefix = tmp_path / f"{name}_recalibrated"
    paddle.save(model.state_dict(), f"{prefix}.pdparams")
    return prefix


def _read_jsonl(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    return {str(Path(row["file_name"]).resolve()): row for row in map(json.loads, lines)}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SIZES))
def test_export_verify_and_predictor_match_tools_infer(name, tmp_path, reference_dir):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("MNN")
    size = SIZES[name]
    config_path, root = tiny_export_config(tmp_path, reference_dir)
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    infer_ops = config["Infer"]["transforms"]
    infer_ops[1]["ResizeImage"]["resize_short"] = size + size // 8
    infer_ops[2]["CropImage"]["size"] = size
    train_files = [str(root / line.split()[0]) for line in (root / "train_list.txt").read_text().splitlines()]
    weights = _recalibrated_weights(name, reference_dir, tmp_path, train_files, infer_ops)
    config["Global"].update(pretrained_model=str(weights), image_shape=[3, size, size])
    config["Arch"] = {"name": name, "class_num": 10, "drop_path_rate": 0.3, "drop_rate": 0.3}
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")

    proc = run_export(config_path, "--onnx", "--quantize", "int8", "--mnn", "--verify")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    model_dir = tmp_path / "inference"
    report = json.loads((model_dir / "export_report.json").read_text())
    assert report["passed"] and report["weights_loaded"] and report["model_name"] == name
    variants = {(v["backend"], v["precision"]): v for v in report["variants"]}
    assert set(variants) >= {("paddle", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8"),
                             ("mnn", "fp32"), ("mnn", "fp16"), ("mnn", "int8")}
    for backend, tolerance in BACKENDS.items():  # random drop path or dropout would break these
        assert variants[(backend, "fp32")]["max_prob_diff"] <= tolerance, backend
    # drop path's random mask is not in the graph (Paddle keeps dropout as an is_test op, checked by the diffs)
    assert "bernoulli" not in (model_dir / "inference.json").read_text()

    val_list = root / "val_list.txt"
    infer_out = tmp_path / "infer.jsonl"
    proc = run_tool("infer.py", "-c", config_path, "-o", f"Infer.infer_imgs={val_list}", "--output", infer_out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = _read_jsonl(infer_out)
    assert len(expected) == len(val_list.read_text().splitlines())
    assert len({row["class_ids"][0] for row in expected.values()}) >= 2, "one class for all images: weak check"
    for backend, tolerance in BACKENDS.items():
        out = tmp_path / f"predict_{backend}.jsonl"
        proc = subprocess.run([sys.executable, str(PREDICTOR_DIR / "predict_cls.py"), "--model_dir", str(model_dir),
                               "--input", str(val_list), "--backend", backend, "--output", str(out), "--quiet"],
                              env=subprocess_env(), capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{backend}: {proc.stderr[-3000:]}"
        got = _read_jsonl(out)
        assert sorted(got) == sorted(expected), backend
        for file_name, row in got.items():
            ref = expected[file_name]
            assert row["class_ids"][0] == ref["class_ids"][0], f"{backend}: top-1 differs on {file_name}"
            np.testing.assert_allclose(row["scores"], ref["scores"], atol=tolerance, err_msg=backend)
