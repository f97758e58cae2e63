"""Reduced-precision ONNX variants of an export: INT8 (static QDQ quantization) and FP16.

INT8 — onnxruntime's static post-training quantization in QDQ format:
  * weights int8, symmetric, per output channel; activations uint8, asymmetric (the u8s8 pair that x86
    VNNI and ARM dot-product kernels run fastest), ranges calibrated (min/max) on real images fed through
    the export's own inference preprocessing;
  * the first convolution and its hard-swish stay float32: it sees the raw normalised image with only 3 input
    channels, so it loses the most accuracy when quantized, and onnxruntime fuses conv + hard-swish into one
    float kernel, so the int8 part of the graph starts with a single QuantizeLinear. The classifier is
    quantized like the rest: it holds a quarter of MobileNetV3_large's weights (1280 x 1000);
  * every other HardSigmoid (hard-swish and the SE blocks' gate) that reads a convolution's output is rewritten,
    before calibration, as the same function in a form onnxruntime runs in int8: a depthwise 1x1 convolution
    (weight alpha, bias beta) followed by Clip(0, 1). onnxruntime has no int8 HardSigmoid, so otherwise each one
    runs as DequantizeLinear -> float HardSigmoid -> QuantizeLinear, three memory passes that took ~4 ms of
    MobileNetV3_large's ~27 ms (224 px, batch 8) and do not speed up with a second thread (docs/DEPLOY.md §6).
    The multiplies of hard-swish and SE stay int8 (QLinearMul).
  BatchNorm is folded into the convolutions first (quant_pre_process), so each folded weight gets its own
  per-channel scale.
FP16 — every float32 weight and activation in float16, the model input and output kept float32 (the
  predictor and apps feed float32 as before); onnxruntime's own float16 converter.
"""
from pathlib import Path
import tempfile
from typing import Union

import numpy as np

from ppcls_lite.utils import logger

from .folder import ExportError
from .onnx_tools import clean_onnx_model, import_onnx, save_onnx

PRECISIONS = ("fp16", "int8")


def _float_layers(model, keep_last=False):
    """Names of the nodes kept float32: the first Conv and the hard-swish reading its output (HardSigmoid and
    Mul), and with `keep_last` the last Conv/MatMul/Gemm."""
    compute = [n for n in model.graph.node if n.op_type in ("Conv", "MatMul", "Gemm")]
    if not compute:
        return []
    first = compute[0]
    activation = [n for n in model.graph.node if n.op_type in ("HardSigmoid", "Mul") and first.output[0] in n.input]
    chosen = [first] + activation + ([compute[-1]] if keep_last and len(compute) > 1 else [])
    return [node.name for node in chosen]


def _hard_sigmoids_as_convs(model, keep_float=()):
    """Rewrite each HardSigmoid(x) = clip(alpha * x + beta, 0, 1) whose x is a Conv output (and whose name is not
    in `keep_float`) as a depthwise 1x1 Conv (weight alpha, bias beta, one group per channel) + Clip(0, 1), which
    onnxruntime's QDQ fusion turns into one int8 QLinearConv (the Clip folds into its output range).
    Returns the names of the new weights (all equal per tensor, so they need only one scale)."""
    from onnx import helper, numpy_helper

    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    clip_min, clip_max = "hard_sigmoid_as_conv_min", "hard_sigmoid_as_conv_max"
    nodes, new_weights = [], []
    for node in graph.node:
        source = producers.get(node.input[0]) if node.op_type == "HardSigmoid" else None
        if (source is None or source.op_type != "Conv" or source.input[1] not in weights
                or node.name in keep_float):
            nodes.append(node)
            continue
        attrs = {a.name: a.f for a in node.attribute}
        alpha, beta = attrs.get("alpha", 0.2), attrs.get("beta", 0.5)  # the ONNX defaults
        channels = weights[source.input[1]].dims[0]
        weight, bias = f"{node.name}_as_conv_w", f"{node.name}_as_conv_b"
        graph.initializer.extend([numpy_helper.from_array(np.full((channels, 1, 1, 1), alpha, np.float32), weight),
                                  numpy_helper.from_array(np.full((channels,), beta, np.float32), bias)])
        linear = f"{node.output[0]}_linear"
        nodes.append(helper.make_node("Conv", [node.input[0], weight, bias], [linear], name=f"{node.name}_as_conv",
                                      group=channels, kernel_shape=[1, 1]))
        nodes.append(helper.make_node("Clip", [linear, clip_min, clip_max], list(node.output),
                                      name=f"{node.name}_as_clip"))
        new_weights.append(weight)
    if new_weights:
        graph.initializer.extend([numpy_helper.from_array(np.array(0.0, np.float32), clip_min),
                                  numpy_helper.from_array(np.array(1.0, np.float32), clip_max)])
        del graph.node[:]
        graph.node.extend(nodes)
    return new_weights


def _named_nodes(model):
    """Give every node a unique name (the quantizer's include/exclude lists are by name)."""
    seen = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}"
        seen.add(node.name)
    return model


class _BatchReader:
    """onnxruntime CalibrationDataReader over a float32 [N, C, H, W] array, in batches."""

    def __init__(self, images, input_name, batch_size=16):
        self.batches = iter([images[i:i + batch_size] for i in range(0, len(images), batch_size)])
        self.input_name = input_name

    def get_next(self):
        batch = next(self.batches, None)
        return None if batch is None else {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}


def quantize_int8(source: Union[str, Path], target: Union[str, Path], calibration_images: np.ndarray,
                  input_name: str = "x", float_first: bool = True, float_last: bool = False,
                  per_channel: bool = True) -> dict:
    """Write the INT8 (QDQ) model of the float32 ONNX model `source` to `target`.

    `calibration_images`: float32 [N, C, H, W], already preprocessed like the predictor's input. `per_channel`
    False gives one weight scale per tensor (docs/SLIM.md compares it with QAT).
    Returns a summary (calibration image count, layers kept float32).
    """
    onnx = import_onnx()
    try:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise ExportError(f"--quantize int8 needs onnxruntime with its quantization tools and onnx "
                          f"(pip install -e .[deploy]): {exc}") from None
    if len(calibration_images) == 0:
        raise ValueError("INT8 quantization needs at least one calibration image")
    target = Path(target)
    with tempfile.TemporaryDirectory(prefix="ppcls_quant_") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Shape inference + onnxruntime's basic graph optimisations (BatchNorm folded into Conv).
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        model = _named_nodes(onnx.load(str(prepared)))
        excluded = _float_layers(model, keep_last=float_last) if float_first else []
        as_conv = _hard_sigmoids_as_convs(model, keep_float=excluded)
        save_onnx(model, prepared)
        quantized = Path(tmp) / "quantized.onnx"
        # A per-tensor scale for the rewritten HardSigmoid weights: all their values are alpha (exact in int8).
        # onnxruntime raises a weight scale when its bias (beta) would overflow int32, which only happens for an
        # input range below ~1e-4, where alpha * x is negligible anyway.
        overrides = {name: [{"symmetric": True}] for name in as_conv}
        quantize_static(str(prepared), str(quantized), _BatchReader(calibration_images, input_name),
                        quant_format=QuantFormat.QDQ, per_channel=per_channel, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_exclude=excluded,
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"WeightSymmetric": True, "ActivationSymmetric": False,
                                       "TensorQuantOverrides": overrides})
        save_onnx(clean_onnx_model(onnx.load(str(quantized))), target)
    logger.info(f"INT8 model {target} ({target.stat().st_size / 1e6:.2f} MB): calibrated on "
                f"{len(calibration_images)} images, kept float32: {excluded}, {len(as_conv)} HardSigmoid "
                f"run as int8 convolutions")
    return {"file": target.name, "calibration_images": int(len(calibration_images)), "float32_layers": excluded,
            "hard_sigmoids_as_conv": len(as_conv)}


def convert_fp16(source: Union[str, Path], target: Union[str, Path]) -> dict:
    """Write the FP16 model of the float32 ONNX model `source` to `target` (input/output stay float32)."""
    onnx = import_onnx()
    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as exc:
        raise ExportError(f"--quantize fp16 needs onnxruntime's float16 converter (onnxruntime.transformers) "
                          f"and onnx: pip install -e .[deploy] ({exc})") from None
    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    target = Path(target)
    save_onnx(clean_onnx_model(model), target)
    logger.info(f"FP16 model {target} ({target.stat().st_size / 1e6:.2f} MB)")
    return {"file": target.name}
