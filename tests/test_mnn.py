"""--mnn: MNN files from the ONNX export and the predictor's `mnn` backend (parity with onnxruntime fp32)."""
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from helpers import REPO_ROOT, export_tiny, image_files, run_export, tiny_export_config, uint8_crops
from ppcls_lite import predict


pytest.importorskip("MNN", reason="the [mobile] extra (MNN) is not installed: pip install -e .[mobile]")


@pytest.fixture(scope="module")
def mnn_export(tmp_path_factory, reference_dir):
    tmp_path = tmp_path_factory.mktemp("mnn")
    return export_tiny(tmp_path, reference_dir, "--mnn", "--onnx_input", "uint8")  # --mnn implies --onnx


@pytest.mark.slow
def test_mnn_files_are_written_and_listed(mnn_export):
    model_dir, _ = mnn_export
    info = yaml.safe_load((model_dir / "inference.yml").read_text(encoding="utf-8"))["Global"]
    assert info["variants"]["mnn"] == {"fp32": "model.mnn", "fp16": "model_fp16.mnn", "int8": "model_int8.mnn"}
    assert info["uint8_input"]["files"]["mnn"] == {"fp32": "model_uint8_input.mnn", "fp16": "model_fp16_uint8_input.mnn",
                                                   "int8": "model_int8_uint8_input.mnn"}
    import MNN.nn
    names = MNN.nn.load_module_from_file(str(model_dir / "model.mnn"), [], []).get_info()
    assert names["inputNames"] == ["x"] and names["outputNames"] == [info["output_name"]]  # what an app asks for
    sizes = {p: (model_dir / f).stat().st_size for p, f in info["variants"]["mnn"].items()}
    assert sizes["fp16"] < 0.6 * sizes["fp32"]
    assert sizes["int8"] < 0.4 * sizes["fp32"]


@pytest.mark.slow
def test_mnn_backend_top1_matches_onnxruntime_on_parity_images(tmp_path, reference_dir):
    """The reference weights exported at the stored parity input's size: MNN gives the stored logits."""
    import paddle

    from ppcls_lite.arch import build_model
    from ppcls_lite.export import export_model, normalize_transform_ops
    from ppcls_lite.export.mnn import convert_onnx_to_mnn
    from ppcls_lite.utils.save_load import load_pretrained
    from helpers import INFER_OPS_32PX

    parity = np.load(reference_dir / "parity" / "MobileNetV3_small_x0_35.npz")
    x = np.ascontiguousarray(parity["x"], dtype=np.float32)
    model = build_model({"name": "MobileNetV3_small_x0_35", "class_num": 10})
    load_pretrained(model, str(reference_dir / "parity" / "MobileNetV3_small_x0_35"))
    model.eval()
    paddle.set_device("cpu")
    export_model(model, tmp_path, tuple(x.shape[2:]), normalize_transform_ops(INFER_OPS_32PX), class_num=10,
                 onnx=True, output="logits")
    convert_onnx_to_mnn(tmp_path / "model.onnx", tmp_path / "model.mnn")
    by_ort = predict.OnnxRuntimeBackend(tmp_path / "model.onnx", threads=1).run(x)
    by_mnn = predict.MnnBackend(tmp_path / "model.mnn", threads=1).run(x)
    assert (by_mnn.argmax(-1) == by_ort.argmax(-1)).all()
    np.testing.assert_allclose(by_mnn, parity["logits"], atol=1e-4)
    np.testing.assert_allclose(by_ort, parity["logits"], atol=1e-4)


@pytest.mark.slow
def test_mnn_predictor_matches_onnxruntime_predictor_on_image_files(mnn_export):
    model_dir, root = mnn_export
    files = image_files(root)
    by_ort = predict.Predictor(model_dir, backend="onnxruntime", batch_size=5, threads=1).predict_files(files)
    by_mnn = predict.Predictor(model_dir, backend="mnn", batch_size=5, threads=1).predict_files(files)
    assert [r["class_ids"] for r in by_mnn] == [r["class_ids"] for r in by_ort]
    np.testing.assert_allclose([r["scores"] for r in by_mnn], [r["scores"] for r in by_ort], atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_reduced_precision_mnn_files_run_and_stay_close(mnn_export, precision):
    model_dir, root = mnn_export
    files = image_files(root)
    fp32 = predict.Predictor(model_dir, backend="mnn", batch_size=4, threads=1)
    reduced = predict.Predictor(model_dir, backend="mnn", batch_size=4, threads=1, precision=precision)
    batch = np.stack([fp32.load_file(f) for f in files])
    reference, probs = fp32.infer(batch), reduced.infer(batch)
    assert np.abs(probs - reference).max() < 0.05
    assert not np.array_equal(probs, reference)


@pytest.mark.slow
def test_mnn_uint8_input_model_matches_float_model(mnn_export):
    model_dir, root = mnn_export
    files = image_files(root)[:6]
    predictor = predict.Predictor(model_dir, backend="mnn", batch_size=6, threads=1)
    reference = predictor.infer(np.stack([predictor.load_file(f) for f in files]))
    probs = predict.MnnBackend(model_dir / "model_uint8_input.mnn", threads=1).run(uint8_crops(predictor, files))
    np.testing.assert_allclose(probs, reference, atol=1e-4)


@pytest.mark.slow
def test_predictor_cli_mnn_backend(mnn_export, tmp_path):
    model_dir, root = mnn_export
    out = tmp_path / "mnn.jsonl"
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "deploy" / "python" / "predict_cls.py"),
                           "--model_dir", str(model_dir), "--input", str(root), "--backend", "mnn",
                           "--output", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(out.read_text(encoding="utf-8").splitlines()) == len(image_files(root))
    # stdout carries only the predictions: MNN's own banner lines go to stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(image_files(root)) and all(json.loads(line)["class_ids"] for line in lines)


@pytest.mark.slow
def test_mnn_backend_without_mnn_file_says_how_to_export(tmp_path, reference_dir):
    config_path, _ = tiny_export_config(tmp_path, reference_dir)
    assert run_export(config_path, "--onnx").returncode == 0
    with pytest.raises(FileNotFoundError, match="--mnn"):
        predict.Predictor(tmp_path / "inference", backend="mnn")


def test_conversion_error_carries_the_converter_output(tmp_path):
    from ppcls_lite.export.mnn import MNNConvertError, convert_onnx_to_mnn

    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not an onnx model")
    with pytest.raises(MNNConvertError, match="broken.onnx"):
        convert_onnx_to_mnn(bad, tmp_path / "broken.mnn")
    assert not (tmp_path / "broken.mnn").exists() and not (tmp_path / "broken.mnn.tmp").exists()
