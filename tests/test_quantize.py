"""--quantize int8 / fp16: files written, how they are quantized, inference.yml variants, predictor --precision."""
import subprocess
import sys

import numpy as np
import pytest
import yaml

from helpers import REPO_ROOT, export_tiny, image_files, run_export, tiny_export_config
from ppcls_lite import predict



@pytest.fixture(scope="module")
def quantized_export(tmp_path_factory, reference_dir):
    tmp_path = tmp_path_factory.mktemp("quantize")
    return export_tiny(tmp_path, reference_dir, "--onnx", "--quantize", "int8", "fp16", "--calib_images", "8")


@pytest.mark.slow
def test_int8_and_fp16_files_are_listed_in_inference_yml(quantized_export):
    model_dir, _ = quantized_export
    info = yaml.safe_load((model_dir / "inference.yml").read_text(encoding="utf-8"))["Global"]
    assert info["variants"]["onnxruntime"] == {"fp32": "model.onnx", "int8": "model_int8.onnx",
                                               "fp16": "model_fp16.onnx"}
    assert info["quantization"]["int8"]["calibration_images"] == 8  # of the 12 Train-list images
    for name in info["variants"]["onnxruntime"].values():
        assert (model_dir / name).is_file()
    fp32_size = (model_dir / "model.onnx").stat().st_size
    assert (model_dir / "model_int8.onnx").stat().st_size < fp32_size / 2.5
    assert (model_dir / "model_fp16.onnx").stat().st_size < fp32_size * 0.6


@pytest.mark.slow
def test_int8_model_is_static_qdq_per_channel_with_a_float_first_layer(quantized_export):
    import onnx
    from onnx import TensorProto, numpy_helper

    model_dir, _ = quantized_export
    model = onnx.load(str(model_dir / "model_int8.onnx"))
    onnx.checker.check_model(model)
    graph = model.graph
    init = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert len(convs) > 10

    def weight_is_quantized(node):
        source = producers.get(node.input[1])
        return source is not None and source.op_type == "DequantizeLinear"

    assert not weight_is_quantized(convs[0]), "the first convolution must stay float32"
    assert init[convs[0].input[1]].data_type == TensorProto.FLOAT
    assert all(weight_is_quantized(n) for n in convs[1:])
    classifier = [n for n in graph.node if n.op_type in ("MatMul", "Gemm")][-1]
    assert weight_is_quantized(classifier)
    # Weights: int8, symmetric (zero point 0), one scale per output channel.
    dq = producers[convs[1].input[1]]
    weight, scale, zero = (init[name] for name in dq.input)
    assert weight.data_type == TensorProto.INT8
    assert numpy_helper.to_array(scale).shape == (weight.dims[0],)
    assert not numpy_helper.to_array(zero).any()
    # Activations: uint8, static (QuantizeLinear with a constant scale, no DynamicQuantizeLinear).
    quants = [n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[1] in init]
    assert quants and init[quants[0].input[2]].data_type == TensorProto.UINT8
    assert not any(n.op_type == "DynamicQuantizeLinear" for n in graph.node)
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.slow
def test_int8_layer_choice_first_conv_and_its_hard_swish_float_every_other_hard_sigmoid_an_int8_conv(
        quantized_export):
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    model_dir, _ = quantized_export
    float_graph = onnx.load(str(model_dir / "model.onnx")).graph
    hard_sigmoids = [n for n in float_graph.node if n.op_type == "HardSigmoid"]
    float_nodes = {n.name: n for n in hard_sigmoids}
    assert len(hard_sigmoids) > 5  # hard-swish and SE gates of MobileNetV3
    info = yaml.safe_load((model_dir / "inference.yml").read_text(encoding="utf-8"))["Global"]["quantization"]
    assert info["int8"]["hard_sigmoids_as_conv"] == len(hard_sigmoids) - 1  # all but the first conv's one
    graph = onnx.load(str(model_dir / "model_int8.onnx")).graph
    op_types = {n.name: n.op_type for n in graph.node}
    assert [op_types[name] for name in info["int8"]["float32_layers"]] == ["Conv", "HardSigmoid", "Mul"]
    init = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    first_conv = next(n for n in graph.node if n.op_type == "Conv")
    # The first conv's output feeds its float hard-swish directly; only the hard-swish's output is quantized.
    assert sorted(n.op_type for n in consumers[first_conv.output[0]]) == ["HardSigmoid", "Mul"]
    swish = next(n for n in consumers[first_conv.output[0]] if n.op_type == "Mul")
    assert [n.op_type for n in consumers[swish.output[0]]] == ["QuantizeLinear"]
    assert [n.name for n in graph.node if n.op_type == "HardSigmoid"] == [
        next(n for n in consumers[first_conv.output[0]] if n.op_type == "HardSigmoid").name]
    # Every other HardSigmoid: int8 depthwise 1x1 Conv (weight alpha: 1/6 in hard-swish, 0.2 in SE; one scale)
    # with bias beta, whose output
    # range is inside [0, 1] (the quantizer folds the Clip into it, so uint8 saturation does the clipping).
    as_convs = [n for n in graph.node if n.op_type == "Conv" and n.name.endswith("_as_conv")]
    assert len(as_convs) == len(hard_sigmoids) - 1 and "Clip" not in op_types.values()
    for conv in as_convs:
        weight_dq = producers[conv.input[1]]
        assert weight_dq.op_type == "DequantizeLinear"
        q_weight, scale, _ = (numpy_helper.to_array(init[name]) for name in weight_dq.input)
        attrs = {a.name: a for a in conv.attribute}
        assert attrs["group"].i == q_weight.shape[0] and list(attrs["kernel_shape"].ints) == [1, 1]
        assert scale.size == 1
        alpha = {a.name: a.f for a in float_nodes[conv.name[:-len("_as_conv")]].attribute}["alpha"]
        assert np.allclose(q_weight.astype(np.float32) * scale, alpha, rtol=1e-3)
        (quantize,) = consumers[conv.output[0]]
        out_scale, out_zero = (numpy_helper.to_array(init[name]) for name in quantize.input[1:])
        assert quantize.op_type == "QuantizeLinear" and int(out_zero) == 0 and 255 * float(out_scale) <= 1 + 1e-6

    # What onnxruntime runs: one QuantizeLinear (after the float first layer), no float HardSigmoid in between.
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(model_dir.parent / "int8_optimized.onnx")
    ort.InferenceSession(str(model_dir / "model_int8.onnx"), options, providers=["CPUExecutionProvider"])
    optimized = [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]
    assert optimized.count("QuantizeLinear") == 1 and "HardSigmoid" not in optimized
    assert optimized.count("QLinearConv") == len([n for n in graph.node if n.op_type == "Conv"]) - 1


def test_hard_sigmoid_rewrite_computes_the_same_function(tmp_path):
    """The depthwise-conv + Clip form of HardSigmoid is exact in float32 (alpha/beta of hard-swish and ONNX's
    defaults), on a Conv -> HardSigmoid -> Mul graph; a HardSigmoid not after a Conv is left alone."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from ppcls_lite.export.quantize import _hard_sigmoids_as_convs

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(size=(6, 3, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("HardSigmoid", ["c"], ["h"], name="swish_gate", alpha=1 / 6, beta=0.5),
             helper.make_node("Mul", ["c", "h"], ["s"], name="swish"),
             helper.make_node("HardSigmoid", ["s"], ["h2"], name="not_after_conv"),
             helper.make_node("Conv", ["h2", "w2"], ["c2"], name="conv2"),
             helper.make_node("HardSigmoid", ["c2"], ["y"], name="default_gate")]
    weight2 = numpy_helper.from_array(rng.normal(size=(4, 6, 1, 1)).astype(np.float32), "w2")
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4, 8, 8])],
                              initializer=[weight, weight2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    x = (4 * rng.normal(size=(2, 3, 8, 8))).astype(np.float32)  # spans both clipped ends

    def run(m):
        session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, {"x": x})[0]

    reference = run(model)
    rewritten = onnx.load_from_string(model.SerializeToString())
    new_weights = _hard_sigmoids_as_convs(rewritten)
    onnx.checker.check_model(rewritten)
    assert len(new_weights) == 2
    assert [n.op_type for n in rewritten.graph.node] == ["Conv", "Conv", "Clip", "Mul", "HardSigmoid", "Conv",
                                                         "Conv", "Clip"]
    np.testing.assert_allclose(run(rewritten), reference, atol=1e-6)
    kept = onnx.load_from_string(model.SerializeToString())
    assert len(_hard_sigmoids_as_convs(kept, keep_float=["swish_gate", "default_gate"])) == 0
    assert [n.op_type for n in kept.graph.node] == [n.op_type for n in model.graph.node]


@pytest.mark.slow
def test_fp16_model_keeps_float32_input_and_output(quantized_export):
    import onnx
    from onnx import TensorProto

    model_dir, _ = quantized_export
    model = onnx.load(str(model_dir / "model_fp16.onnx"))
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    conv_weights = {n.input[1] for n in model.graph.node if n.op_type == "Conv"}
    types = {t.data_type for t in model.graph.initializer if t.name in conv_weights}
    assert types == {TensorProto.FLOAT16}


@pytest.mark.slow
@pytest.mark.parametrize("precision, tolerance", [("fp16", 5e-3), ("int8", 0.1)])
def test_predictor_precision_picks_the_variant_and_stays_close_to_fp32(quantized_export, precision, tolerance):
    model_dir, root = quantized_export
    files = image_files(root)
    fp32 = predict.Predictor(model_dir, backend="onnxruntime", batch_size=4, threads=1)
    reduced = predict.Predictor(model_dir, backend="onnxruntime", batch_size=4, threads=1, precision=precision)
    assert reduced.model_file.name == f"model_{precision}.onnx"
    batch = np.stack([fp32.load_file(f) for f in files])
    reference, probs = fp32.infer(batch), reduced.infer(batch)
    assert probs.shape == reference.shape
    assert np.abs(probs - reference).max() < tolerance
    assert not np.array_equal(probs, reference)  # really another model
    assert np.allclose(probs.sum(-1), 1.0, atol=1e-2)


@pytest.mark.slow
def test_predictor_cli_precision_int8(quantized_export, tmp_path):
    model_dir, root = quantized_export
    out = tmp_path / "int8.csv"
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "deploy" / "python" / "predict_cls.py"),
                           "--model_dir", str(model_dir), "--input", str(root / "val_list.txt"),
                           "--backend", "onnxruntime", "--precision", "int8", "--output", str(out), "--quiet"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1 + 12


@pytest.mark.slow
def test_missing_variant_and_paddle_int8_are_clear_errors(tmp_path, reference_dir):
    config_path, _ = tiny_export_config(tmp_path, reference_dir)
    assert run_export(config_path, "--onnx").returncode == 0
    model_dir = tmp_path / "inference"
    with pytest.raises(FileNotFoundError, match="--quantize int8"):
        predict.Predictor(model_dir, backend="onnxruntime", precision="int8")
    with pytest.raises(ValueError, match="--backend onnxruntime or mnn"):
        predict.Predictor(model_dir, backend="paddle", precision="int8")


@pytest.mark.slow
def test_calibration_image_that_cannot_be_read_names_the_file(tmp_path, reference_dir):
    config_path, root = tiny_export_config(tmp_path, reference_dir)
    bad = root / "circle" / "0.png"  # in the Train list
    bad.write_bytes(b"not a png")
    proc = run_export(config_path, "--quantize", "int8", "--calib_images", "100")
    assert proc.returncode == 1
    assert "0.png" in proc.stderr and "error:" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_int8_without_a_train_list_says_which_section_is_missing(tmp_path, reference_dir):
    config_path, _ = tiny_export_config(tmp_path, reference_dir)
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    del config["DataLoader"]["Train"]
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    proc = run_export(config_path, "--quantize", "int8")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "--quantize int8 (calibration)" in proc.stderr and "DataLoader.Train.dataset" in proc.stderr
    assert not (tmp_path / "inference").exists()  # the export as asked failed: nothing half-done is switched in
