"""tools/export_model.py and ppcls_lite.export: files written, inference.yml content, ONNX equals Paddle."""
import subprocess
import sys

import numpy as np
import paddle
import pytest
import yaml

from helpers import INFER_OPS_32PX as INFER_OPS, REPO_ROOT
from ppcls_lite.export import (ExportError, export_from_config, export_model, normalize_transform_ops,
                               run_paddle_inference)

EXPORT_TOOL = str(REPO_ROOT / "tools" / "export_model.py")



def tiny_config(weights=None, class_num=10, save_dir=None, label_file=None, arch="MobileNetV3_small_x0_35"):
    return {
        "Global": {"pretrained_model": weights, "save_inference_dir": str(save_dir) if save_dir else None,
                   "image_shape": [3, 32, 32]},
        "Arch": {"name": arch, "class_num": class_num},
        "Infer": {"infer_imgs": None, "batch_size": 2, "transforms": INFER_OPS,
                  "PostProcess": {"name": "Topk", "topk": 3, "class_id_map_file": label_file}},
    }


# ---------------------------------------------------------------------------------------------- fast checks


def test_normalize_transform_ops_spells_out_parameters():
    ops = normalize_transform_ops(INFER_OPS)
    assert [next(iter(op)) for op in ops] == ["DecodeImage", "ResizeImage", "CropImage", "NormalizeImage",
                                              "ToCHWImage"]
    assert ops[1]["ResizeImage"] == {"resize_short": 36, "interpolation": "bilinear", "backend": "cv2"}
    assert ops[2]["CropImage"] == {"size": [32, 32]}
    norm = ops[3]["NormalizeImage"]
    assert isinstance(norm["scale"], float) and norm["scale"] == 1.0 / 255.0
    assert norm["order"] == ""
    assert yaml.safe_load(yaml.safe_dump(ops)) == ops  # survives the trip through inference.yml


def test_normalize_transform_ops_appends_to_chw_and_rejects_random_ops():
    ops = normalize_transform_ops(INFER_OPS[:4])
    assert next(iter(ops[-1])) == "ToCHWImage"
    with pytest.raises(ExportError, match="RandFlipImage"):
        normalize_transform_ops(INFER_OPS[:2] + [{"RandFlipImage": {"flip_code": 1}}])
    with pytest.raises(ExportError, match="interpolation"):
        normalize_transform_ops([INFER_OPS[0], {"ResizeImage": {"resize_short": 36, "interpolation": "random"}}])
    with pytest.raises(ExportError, match="DecodeImage"):
        normalize_transform_ops(INFER_OPS[1:])


def test_export_refuses_random_weights(tmp_path):
    with pytest.raises(ExportError, match="--allow-random"):
        export_from_config(tiny_config(save_dir=tmp_path / "out"))
    assert not (tmp_path / "out" / "inference.yml").exists()


# ---------------------------------------------------------------------------------------------- real exports


@pytest.mark.slow
def test_export_model_cli_writes_self_contained_dir(tmp_path, reference_dir):
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"{i} class {i}\n" for i in range(10)))
    config = tiny_config(weights=str(reference_dir / "parity" / "MobileNetV3_small_x0_35"), label_file=str(labels))
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    out = tmp_path / "inference"
    proc = subprocess.run([sys.executable, EXPORT_TOOL, "-c", str(config_path),
                           "-o", f"Global.save_inference_dir={out}"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "inference.pdiparams").is_file()
    assert (out / "inference.json").is_file() or (out / "inference.pdmodel").is_file()
    assert not (out / "model.onnx").exists()  # only with --onnx
    info = yaml.safe_load((out / "inference.yml").read_text())
    assert info["Global"]["input_shape"] == [3, 32, 32]
    assert info["Global"]["class_num"] == 10
    assert info["Global"]["output"] == "probabilities"
    assert (out / info["Global"]["model_file"]).is_file()
    assert info["PreProcess"]["transform_ops"] == normalize_transform_ops(INFER_OPS)
    assert info["PostProcess"]["Topk"]["topk"] == 3
    assert info["PostProcess"]["label_list"] == [f"class {i}" for i in range(10)]  # inline, not a path


@pytest.mark.slow
def test_export_refuses_weights_that_do_not_fit(tmp_path, reference_dir):
    # parity weights have 10 classes; a 7-class model would keep a random fc
    config = tiny_config(weights=str(reference_dir / "parity" / "MobileNetV3_small_x0_35"), class_num=7,
                         save_dir=tmp_path / "out")
    with pytest.raises(ExportError, match="class_num"):
        export_from_config(config)
    export_from_config(config, allow_random=True)
    assert (tmp_path / "out" / "inference.yml").is_file()


def _onnx_and_paddle_logits(tmp_path, reference_dir, name):
    """Export `name` with its parity weights at 128 px (the size of the stored input) and return
    (stored logits, dygraph logits, onnxruntime logits, Paddle Inference logits) on the stored input."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("paddle2onnx")
    from ppcls_lite.arch import build_model
    from ppcls_lite.utils.save_load import load_pretrained

    stored = np.load(reference_dir / "parity" / f"{name}.npz")
    model = build_model({"name": name, "class_num": 10})
    load_pretrained(model, str(reference_dir / "parity" / name))
    model.eval()
    ops = normalize_transform_ops([INFER_OPS[0], {"ResizeImage": {"resize_short": 128}}, {"CropImage": {"size": 128}},
                                   INFER_OPS[3], INFER_OPS[4]])
    out = tmp_path / name
    info = export_model(model, out, (128, 128), ops, class_num=10, onnx=True, output="logits")["Global"]
    x = stored["x"]
    with paddle.no_grad():
        dygraph = model(paddle.to_tensor(x)).numpy()
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(None, {session.get_inputs()[0].name: x})[0]
    inference_logits = run_paddle_inference(out, x, info)
    return stored["logits"], dygraph, onnx_logits, inference_logits, out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["MobileNetV3_small_x0_35", "MobileNetV1_x0_25"])
def test_onnx_and_paddle_inference_match_dygraph(tmp_path, reference_dir, name):
    """MobileNetV3 exercises hard-swish and the SE block's hard-sigmoid (slope 0.2), which ONNX must map exactly."""
    stored, dygraph, onnx_logits, inference_logits, out = _onnx_and_paddle_logits(tmp_path, reference_dir, name)
    np.testing.assert_allclose(dygraph, stored, atol=1e-4)
    np.testing.assert_allclose(inference_logits, dygraph, atol=1e-4)
    np.testing.assert_allclose(onnx_logits, dygraph, atol=1e-4)
    import onnx
    graph = onnx.load(str(out / "model.onnx"))
    assert max(op.version for op in graph.opset_import if op.domain in ("", "ai.onnx")) >= 13
    if name.startswith("MobileNetV3"):
        op_types = {node.op_type for node in graph.graph.node}
        alphas = {round(attr.f, 4) for node in graph.graph.node if node.op_type == "HardSigmoid"
                  for attr in node.attribute if attr.name == "alpha"}
        assert 0.2 in alphas  # the SE gate: hard-sigmoid with PaddleClas's slope 0.2, not ONNX/torch's 1/6
        assert "HardSwish" in op_types or 0.1667 in alphas  # hard-swish = x * hard_sigmoid(x, 1/6, 0.5)


@pytest.mark.slow
def test_export_onnx_cli_with_random_input_check(tmp_path, reference_dir):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("paddle2onnx")
    from ppcls_lite.export import verify_onnx

    config = tiny_config(weights=str(reference_dir / "parity" / "MobileNetV3_small_x0_35"))
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    out = tmp_path / "inference"
    proc = subprocess.run([sys.executable, EXPORT_TOOL, "-c", str(config_path), "--onnx",
                           "-o", f"Global.save_inference_dir={out}"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "model.onnx").is_file()
    assert yaml.safe_load((out / "inference.yml").read_text())["Global"]["onnx_file"] == "model.onnx"
    assert verify_onnx(out, batch_size=3) < 1e-5  # probabilities on a random batch


@pytest.mark.slow
def test_export_without_crop_uses_global_image_shape(tmp_path, reference_dir):
    """The quick start keeps images at their native 28 px: no size in Infer.transforms."""
    config = tiny_config(weights=str(reference_dir / "parity" / "MobileNetV1_x0_25"), arch="MobileNetV1_x0_25",
                         save_dir=tmp_path / "out")
    config["Global"]["image_shape"] = [3, 28, 28]
    config["Infer"]["transforms"] = [INFER_OPS[0], INFER_OPS[3], INFER_OPS[4]]
    info = export_from_config(config)
    assert info["Global"]["input_shape"] == [3, 28, 28]
    assert [next(iter(op)) for op in info["PreProcess"]["transform_ops"]] == ["DecodeImage", "NormalizeImage",
                                                                              "ToCHWImage"]
