"""The export of a quantization-aware trained model (`Slim.quant`): int8 Paddle and ONNX files with the scales QAT
learned, in place of the float32 ones.

    inference.pdmodel + .pdiparams   the QAT model converted by paddle.quantization: quantize_linear /
                                     dequantize_linear ops, integer weights (Paddle Inference runs it; saved in
                                     Paddle's older program format, as Paddle 3.3's PIR save cannot hold these ops
                                     with a dynamic batch size)
    model.onnx                       ONNX QuantizeLinear / DequantizeLinear in front of every Conv / MatMul: int8
                                     weights (per output channel or per tensor, as trained) and int8 activations
                                     (the moving-average scales QAT learned, zero point 0)
    model_int8.mnn (--mnn)           MNN's int8-weight file of the same graph without the activation Q/DQ pairs:
                                     QAT's int8 weights, float activations (MNN 3.6 mis-shapes the tensors after
                                     an activation QuantizeLinear: batch and channels swap)

paddle2onnx 2.1 converts quantize_linear only for float8, so the ONNX file is built here: the float graph of the
trained model (the fake-quant layers left out) through the usual paddle2onnx route, then the Q/DQ pairs inserted
in front of the n-th Conv / MatMul for the n-th quantized layer in the order the model runs them (their weight
shapes are checked to match). Both files compute what the QAT model computed during evaluation.
"""
from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any, List, Tuple, Union

import numpy as np
import paddle

from ppcls_lite.slim import convert_for_export
from ppcls_lite.slim.quant import ActivationQuanter, WeightQuanter

from .folder import MNN_FILES, ONNX_FILE, ExportError, read_inference_config, write_inference_config
from .mnn import convert_onnx_to_mnn
from .onnx_tools import clean_onnx_model, export_onnx, import_onnx, save_onnx
from .paddle_model import save_paddle_model

INT8_MAX = 127


def quantized_layers_in_run_order(model: paddle.nn.Layer, input_size: Tuple[int, int]) -> List[paddle.nn.Layer]:
    """The layers holding a WeightQuanter, in the order one eval forward pass runs them."""
    layers = [layer for layer in model.sublayers() if isinstance(getattr(layer, "weight_quanter", None), WeightQuanter)]
    order, hooks = [], [layer.register_forward_pre_hook(lambda layer, _: order.append(layer)) for layer in layers]
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            model(paddle.zeros([1, 3, *input_size], "float32"))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return order


def float_copy(model: paddle.nn.Layer) -> paddle.nn.Layer:
    """A copy of the QAT model with every fake-quant step switched off (the trained float weights)."""
    model = copy.deepcopy(model)
    for layer in model.sublayers():
        if isinstance(getattr(layer, "weight_quanter", None), WeightQuanter):
            layer.weight_quanter = None
        if isinstance(getattr(layer, "activation_quanter", None), ActivationQuanter):
            layer.activation_quanter = None
    return model


def _weight_scales(quanter: WeightQuanter) -> np.ndarray:
    return np.maximum(quanter.scales().numpy().astype(np.float32) / INT8_MAX, 1e-12)


def insert_qdq(onnx_model: Any, layers: List[paddle.nn.Layer]) -> Any:
    """The float ONNX model with QuantizeLinear / DequantizeLinear pairs of each QAT layer's scales in front of the
    Conv / MatMul it became (the n-th such node for the n-th layer of `layers`)."""
    from onnx import helper, numpy_helper

    graph = onnx_model.graph
    weights = {t.name: t for t in graph.initializer}
    compute = [n for n in graph.node if n.op_type in ("Conv", "MatMul", "Gemm") and len(n.input) > 1
               and n.input[1] in weights]
    if len(compute) != len(layers):
        raise ExportError(f"the QAT export found {len(compute)} Conv/MatMul nodes with weights in the ONNX graph but "
                          f"{len(layers)} quantized layers in the model; cannot place the int8 scales")
    added, new_nodes, plan = [], [], {id(node): layer for node, layer in zip(compute, layers)}
    for node in graph.node:
        layer = plan.get(id(node))
        if layer is not None:
            i = len(added)
            weight = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)
            if list(weight.shape) != list(layer.weight.shape):
                raise ExportError(f"ONNX node {node.name} has a weight of shape {list(weight.shape)} where the "
                                  f"quantized layer {type(layer).__name__} has {list(layer.weight.shape)}")
            quanter, axis = layer.weight_quanter, layer.weight_quanter.quant_axis()
            scale = _weight_scales(quanter)
            shape = [1] * weight.ndim
            if axis is not None:
                shape[axis] = -1
            integer = np.clip(np.round(weight / scale.reshape(shape)), -INT8_MAX, INT8_MAX).astype(np.int8)
            act_scale = np.float32(max(float(layer.activation_quanter.scales().numpy()[0]) / INT8_MAX, 1e-12))
            names = {k: f"qat_{i}_{k}" for k in ("w", "w_scale", "w_zero", "a_scale", "a_zero", "w_dq", "a_q", "a_dq")}
            added += [numpy_helper.from_array(integer, names["w"]),
                      numpy_helper.from_array(scale if axis is not None else scale.reshape([]), names["w_scale"]),
                      numpy_helper.from_array(np.zeros(scale.shape if axis is not None else [], np.int8),
                                              names["w_zero"]),
                      numpy_helper.from_array(np.array(act_scale, np.float32), names["a_scale"]),
                      numpy_helper.from_array(np.array(0, np.int8), names["a_zero"])]
            dq_weight = {"axis": int(axis)} if axis is not None else {}
            new_nodes += [
                helper.make_node("QuantizeLinear", [node.input[0], names["a_scale"], names["a_zero"]], [names["a_q"]],
                                 name=f"qat_{i}_quantize_input"),
                helper.make_node("DequantizeLinear", [names["a_q"], names["a_scale"], names["a_zero"]],
                                 [names["a_dq"]], name=f"qat_{i}_dequantize_input"),
                helper.make_node("DequantizeLinear", [names["w"], names["w_scale"], names["w_zero"]], [names["w_dq"]],
                                 name=f"qat_{i}_dequantize_weight", **dq_weight)]
            node.input[0], node.input[1] = names["a_dq"], names["w_dq"]
        new_nodes.append(node)
    graph.initializer.extend(added)
    del graph.node[:]
    graph.node.extend(new_nodes)
    return clean_onnx_model(onnx_model)  # drops the float weights nothing reads any more


def save_qat_model(model: paddle.nn.Layer, save_dir: Union[str, Path], input_size: Tuple[int, int],
                   output: str = "probabilities", onnx: bool = False, opset: int = 13) -> Tuple[str, str]:
    """Write the int8 Paddle model (and with `onnx` the Q/DQ model.onnx) of the QAT `model`; returns the file names
    (model file, ONNX file or None)."""
    save_dir = Path(save_dir)
    model_file = save_paddle_model(convert_for_export(model), save_dir, input_size, output, program_format=True)
    if not onnx:
        return model_file, None
    layers = quantized_layers_in_run_order(model, input_size)
    with tempfile.TemporaryDirectory(prefix="ppcls_qat_") as tmp:
        float_file = save_paddle_model(float_copy(model), tmp, input_size, output)
        float_onnx = export_onnx(tmp, model_file=float_file, opset=opset)
        target = save_onnx(insert_qdq(import_onnx().load(str(float_onnx)), layers), save_dir / float_onnx.name)
    return model_file, target.name


def weights_only_qdq(onnx_model: Any) -> Any:
    """The Q/DQ model without its activation QuantizeLinear / DequantizeLinear pairs: each Conv / MatMul reads the
    float activation and the dequantized int8 weight."""
    graph = onnx_model.graph
    quantized_from = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "QuantizeLinear"}
    float_of = {n.output[0]: quantized_from[n.input[0]] for n in graph.node
                if n.op_type == "DequantizeLinear" and n.input[0] in quantized_from}
    kept = [n for n in graph.node if n.op_type != "QuantizeLinear" and n.output[0] not in float_of]
    for node in kept:
        for i, name in enumerate(node.input):
            node.input[i] = float_of.get(name, name)
    del graph.node[:]
    graph.node.extend(kept)
    return clean_onnx_model(onnx_model)


def write_qat_mnn(save_dir: Union[str, Path]) -> str:
    """model_int8.mnn of a QAT export (see the module docstring), listed in inference.yml as the `mnn` `int8`
    variant; returns its file name."""
    save_dir = Path(save_dir)
    with tempfile.TemporaryDirectory(prefix="ppcls_qat_mnn_") as tmp:
        source = save_onnx(weights_only_qdq(import_onnx().load(str(save_dir / ONNX_FILE))), Path(tmp) / ONNX_FILE)
        name = convert_onnx_to_mnn(source, save_dir / MNN_FILES["int8"], "int8").name
    inference = read_inference_config(save_dir)
    info = inference["Global"]
    info["variants"] = {"onnxruntime": {"fp32": ONNX_FILE}, "mnn": {"int8": name}}
    info["quantization"]["qat"]["files"].append(name)
    write_inference_config(save_dir, inference)
    return name
