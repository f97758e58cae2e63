"""Clean ONNX export (no unused initializers, named batch axis, checker) and the uint8-input model."""
import subprocess
import sys

import numpy as np
import pytest
import yaml

from ppcls_lite import predict
from ppcls_lite.export.onnx_tools import clean_onnx_model, uint8_input_model
from helpers import REPO_ROOT, export_tiny, image_files, uint8_crops


onnx = pytest.importorskip("onnx", reason="the [deploy] extra (onnx) is not installed")

SESSION_SNIPPET = ("import sys, onnxruntime as ort; "
                   "ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider']); print('loaded')")


def _session_stderr(path):
    """What onnxruntime prints while loading `path` with its default log level (in a fresh process)."""
    proc = subprocess.run([sys.executable, "-c", SESSION_SNIPPET, str(path)], capture_output=True, text=True)
    assert proc.returncode == 0 and "loaded" in proc.stdout, proc.stderr[-2000:]
    return proc.stderr


@pytest.fixture(scope="module")
def uint8_export(tmp_path_factory, reference_dir):
    tmp_path = tmp_path_factory.mktemp("onnx_clean")
    return export_tiny(tmp_path, reference_dir, "--onnx", "--onnx_input", "uint8", "--quantize", "int8",
                       "--calib_images", "6")


def test_clean_removes_unused_constants_and_identities_and_names_the_batch_axis():
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["DynamicDimension.0", 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["DynamicDimension.0", 2])
    nodes = [
        helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(np.full(2, 3, np.float32), "w")),
        helper.make_node("Constant", [], ["unused"], value=numpy_helper.from_array(np.ones(4, np.float32))),
        helper.make_node("Identity", ["x"], ["x_copy"]),
        helper.make_node("Mul", ["x_copy", "w"], ["y"]),
        helper.make_node("Relu", ["x"], ["dead_end"]),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=[numpy_helper.from_array(np.ones(3, np.float32),
                                                                                         "stale")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    cleaned = clean_onnx_model(model)
    onnx.checker.check_model(cleaned)
    assert [n.op_type for n in cleaned.graph.node] == ["Mul"]
    assert [t.name for t in cleaned.graph.initializer] == ["w"]
    assert cleaned.graph.node[0].input[0] == "x"
    for value in (cleaned.graph.input[0], cleaned.graph.output[0]):
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
    import onnxruntime as ort
    session = ort.InferenceSession(cleaned.SerializeToString(), providers=["CPUExecutionProvider"])
    data = np.array([[1.0, -2.0]], np.float32)
    np.testing.assert_array_equal(session.run(None, {"x": data})[0], data * 3)


@pytest.mark.slow
def test_exported_onnx_loads_without_warnings_and_passes_the_checker(uint8_export):
    model_dir, _ = uint8_export
    for name in ("model.onnx", "model_uint8_input.onnx", "model_int8.onnx", "model_int8_uint8_input.onnx"):
        model = onnx.load(str(model_dir / name))
        onnx.checker.check_model(model, full_check=True)
        used = {i for node in model.graph.node for i in node.input}
        assert [t.name for t in model.graph.initializer if t.name not in used] == []
        assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
        assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
        stderr = _session_stderr(model_dir / name)
        assert "CleanUnusedInitializers" not in stderr and "[W:" not in stderr, stderr[-2000:]


@pytest.mark.slow
def test_predictor_quiets_onnxruntime_warnings_on_an_uncleaned_model(uint8_export, tmp_path):
    """A model straight from paddle2onnx makes onnxruntime warn; the predictor's session does not print it."""
    import paddle2onnx

    model_dir, root = uint8_export
    raw = paddle2onnx.export(str(model_dir / "inference.json"), str(model_dir / "inference.pdiparams"),
                             save_file=None, opset_version=13, enable_onnx_checker=True, optimize_tool="none")
    raw_path = tmp_path / "raw.onnx"
    raw_path.write_bytes(raw)
    assert "CleanUnusedInitializers" in _session_stderr(raw_path)  # the warning exists without the predictor
    snippet = (f"import sys; sys.path.insert(0, {str(REPO_ROOT / 'deploy' / 'python')!r}); import predict_cls; "
               f"predict_cls.OnnxRuntimeBackend(sys.argv[1], threads=1); print('loaded')")
    proc = subprocess.run([sys.executable, "-c", snippet, str(raw_path)], capture_output=True, text=True)
    assert proc.returncode == 0 and "loaded" in proc.stdout, proc.stderr[-2000:]
    assert "[W:" not in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("precision, tolerance", [("fp32", 1e-5), ("int8", 1e-6)])
def test_uint8_input_model_matches_the_float_model(uint8_export, precision, tolerance):
    """Feeding the resized/cropped uint8 image gives the same probabilities as the predictor's float input
    to the model of the same precision (the INT8 one sees bit-identical normalised values)."""
    import onnxruntime as ort

    model_dir, root = uint8_export
    info = yaml.safe_load((model_dir / "inference.yml").read_text(encoding="utf-8"))["Global"]
    spec = info["uint8_input"]
    assert spec["files"] == {"onnxruntime": {"fp32": "model_uint8_input.onnx", "int8": "model_int8_uint8_input.onnx"}}
    assert spec["layout"] == "NHWC" and spec["input_shape"] == [32, 32, 3]
    files = image_files(root)
    predictor = predict.Predictor(model_dir, backend="onnxruntime", batch_size=len(files), threads=1,
                                      precision=precision)
    reference = predictor.infer(np.stack([predictor.load_file(f) for f in files]))
    crops = uint8_crops(predictor, files)  # the app's part of the preprocessing
    assert crops.dtype == np.uint8 and crops.shape == (len(files), 32, 32, 3)
    session = ort.InferenceSession(str(model_dir / spec["files"]["onnxruntime"][precision]),
                                   providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(uint8)"
    probs = session.run(None, {spec["input_name"]: crops})[0]
    np.testing.assert_allclose(probs, reference, atol=tolerance)
    assert (probs.argmax(-1) == reference.argmax(-1)).all()


def test_uint8_input_needs_an_nchw_three_channel_input():
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]))
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        uint8_input_model(model, [0.5] * 3, [0.5] * 3)
    with pytest.raises(ValueError, match="no input named 'image'"):
        uint8_input_model(model, [0.5] * 3, [0.5] * 3, input_name="image")


@pytest.mark.slow
def test_predictor_thread_settings(uint8_export):
    """--threads sizes onnxruntime's intra-op pool (inter-op 1); OpenCV's own pool is set to --opencv_threads."""
    import cv2

    model_dir, _ = uint8_export
    before = cv2.getNumThreads()
    try:
        predictor = predict.Predictor(model_dir, backend="onnxruntime", threads=2, opencv_threads=1)
        options = predictor.backend.session.get_session_options()
        assert options.intra_op_num_threads == 2 and options.inter_op_num_threads == 1
        assert cv2.getNumThreads() == 1
        predict.Predictor(model_dir, backend="onnxruntime", threads=1, opencv_threads=None)
        assert cv2.getNumThreads() == 1  # None leaves OpenCV as it is
    finally:
        cv2.setNumThreads(before)
    settings = predict.runtime_settings(predict.parse_args(
        ["--model_dir", str(model_dir), "--input", "x.jpg", "--opencv_threads", "2", "--precision", "int8"]))
    assert settings.opencv_threads == 2 and settings.precision == "int8"
