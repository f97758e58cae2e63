"""MobileNetV4 deployed: each variant exported through tools/export_model.py with stochastic depth and dropout
configured (both must be off in the export), and the deployed predictor (ppcls_lite.predict, what
deploy/python/predict_cls.py runs) predicting what tools/infer.py predicts.

One conv and one hybrid variant go through every format with --verify: Paddle inference model, ONNX, int8 ONNX,
MNN fp32/fp16/int8, and the predictor on the Paddle, onnxruntime and MNN backends. conv_small has the conv
family's operations (conv, BN, ReLU, residual add); hybrid_large adds what only the hybrids have: Mobile MQA
(reshapes, matmul, softmax), layer scale and GELU (whose MNN form needs care, see mobilenet_v4.GELU). The other
three variants are built from the same blocks: they export to Paddle + ONNX and the predictor on both backends
must match tools/infer.py.

Weights: PaddleClas-parity weights (tests/fixtures/reference) with BatchNorm statistics re-estimated on the test
images (train and val lists, so the images predicted are in the statistics' range and the float32 files stay
within the parity tolerance), so predictions differ from image to image. Conv variants run at 32 px; hybrids at
48 px, where both attention stages see more than one key: 3x3 queries over 2x2 keys, then 2x2 over 2x2 (at 32 px
the keys shrink to one position).
"""
import json
from pathlib import Path

import numpy as np
import paddle
import pytest
import yaml

from helpers import parity_weights_prefix, run_export, run_tool, tiny_export_config
from ppcls_lite import predict
from ppcls_lite.arch import build_model
from ppcls_lite.pipeline import create_operators, transform
from ppcls_lite.utils.save_load import load_pretrained

SIZES = {"MobileNetV4_conv_small": 32, "MobileNetV4_conv_medium": 32, "MobileNetV4_conv_large": 32,
         "MobileNetV4_hybrid_medium": 48, "MobileNetV4_hybrid_large": 48}
FULL_MATRIX = ["MobileNetV4_conv_small", "MobileNetV4_hybrid_large"]
BACKENDS = {"paddle": 1e-4, "onnxruntime": 1e-3, "mnn": 1e-3}  # max |score difference| to tools/infer.py


def _recalibrated_weights(name, reference_dir, tmp_path, files, infer_ops):
    """Parity weights whose BN running statistics are those of `files` (one train-mode pass, momentum 0)."""
    model = build_model({"name": name, "class_num": 10})
    load_pretrained(model, parity_weights_prefix(reference_dir, name, tmp_path))
    ops = create_operators(infer_ops)
    images = paddle.to_tensor(np.stack([transform(open(f, "rb").read(), ops) for f in files]))
    for layer in model.sublayers():
        if isinstance(layer, (paddle.nn.BatchNorm, paddle.nn.BatchNorm2D)):
            layer._momentum = 0.0
    model.train()
    with paddle.no_grad():
        model(images)
    prefix = tmp_path / f"{name}_recalibrated"
    paddle.save(model.state_dict(), f"{prefix}.pdparams")
    return prefix


def _export_config(name, tmp_path, reference_dir):
    """The tiny export config for `name` at its size, with recalibrated parity weights, drop path and dropout."""
    size = SIZES[name]
    config_path, root = tiny_export_config(tmp_path, reference_dir)
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    infer_ops = config["Infer"]["transforms"]
    infer_ops[1]["ResizeImage"]["resize_short"] = size + size // 8
    infer_ops[2]["CropImage"]["size"] = size
    files = [str(root / line.split()[0]) for listing in ("train_list.txt", "val_list.txt")
             for line in (root / listing).read_text().splitlines()]
    weights = _recalibrated_weights(name, reference_dir, tmp_path, files, infer_ops)
    config["Global"].update(pretrained_model=str(weights), image_shape=[3, size, size])
    config["Arch"] = {"name": name, "class_num": 10, "drop_path_rate": 0.3, "drop_rate": 0.3}
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return config_path, root


def _predictor_matches_tools_infer(config_path, val_list, model_dir, tmp_path, backends):
    infer_out = tmp_path / "infer.jsonl"
    proc = run_tool("infer.py", "-c", config_path, "-o", f"Infer.infer_imgs={val_list}", "--output", infer_out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = {str(Path(row["file_name"]).resolve()): row
                for row in map(json.loads, infer_out.read_text(encoding="utf-8").splitlines())}
    assert len(expected) == len(val_list.read_text().splitlines())
    assert len({row["class_ids"][0] for row in expected.values()}) >= 2, "one class for all images: weak check"
    for backend in backends:
        predictor = predict.Predictor(model_dir, backend=backend, batch_size=8, threads=1)
        results = predictor.predict_files(predict.collect_inputs(str(val_list)))
        assert not predictor.failures, backend
        assert sorted(str(Path(r["file_name"]).resolve()) for r in results) == sorted(expected), backend
        for result in results:
            ref = expected[str(Path(result["file_name"]).resolve())]
            assert result["class_ids"][0] == ref["class_ids"][0], f"{backend}: top-1 differs on {result['file_name']}"
            np.testing.assert_allclose(result["scores"], ref["scores"], atol=BACKENDS[backend], err_msg=backend)


@pytest.mark.slow
@pytest.mark.parametrize("name", FULL_MATRIX)
def test_every_format_verifies_and_every_backend_matches_tools_infer(name, tmp_path, reference_dir):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("MNN")
    config_path, root = _export_config(name, tmp_path, reference_dir)
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
    _predictor_matches_tools_infer(config_path, root / "val_list.txt", model_dir, tmp_path, list(BACKENDS))


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in SIZES if name not in FULL_MATRIX])
def test_paddle_and_onnx_exports_match_tools_infer(name, tmp_path, reference_dir):
    pytest.importorskip("onnxruntime")
    config_path, root = _export_config(name, tmp_path, reference_dir)
    proc = run_export(config_path, "--onnx")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    model_dir = tmp_path / "inference"
    assert "bernoulli" not in (model_dir / "inference.json").read_text()
    _predictor_matches_tools_infer(config_path, root / "val_list.txt", model_dir, tmp_path, ["paddle", "onnxruntime"])
