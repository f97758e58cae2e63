"""The ONNX file of an export: conversion from the Paddle model, clean graphs, a uint8-image-input variant.

paddle2onnx writes weights as `Constant` nodes, leaves constants no node reads (onnxruntime warns about each
one when it loads the model) and many `Identity` nodes, and names the batch axis `DynamicDimension.0`.
`clean_onnx_model` turns constants into initializers (what the quantizer and other tools look for), removes
identities and everything no output depends on, and names the batch axis `batch`.
"""
import os
from pathlib import Path
from typing import Any, Dict, Sequence, Union

import numpy as np

from .folder import ONNX_FILE, PADDLE_PARAMS_FILE, ExportError, uint8_input_file

BATCH_AXIS = "batch"
UINT8_INPUT_FILE = uint8_input_file(ONNX_FILE)
MIN_OPSET = 13  # HardSwish/HardSigmoid and Softmax semantics


def import_onnx() -> Any:
    """The onnx package, or an ExportError saying which extra to install."""
    try:
        import onnx
    except ImportError:
        raise ExportError("ONNX export tools need the onnx package: pip install -e .[deploy]") from None
    return onnx


def save_onnx(model: Any, path: Union[str, Path]) -> Path:
    """Check `model` with onnx.checker and write it to `path` via a temporary name."""
    onnx = import_onnx()
    onnx.checker.check_model(model)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(model.SerializeToString())
    os.replace(tmp, path)
    return path


def _sort_topologically(graph):
    """Order nodes so each comes after the producers of its inputs (some converters append nodes at the end)."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(name in available for name in n.input)]
        if not ready:
            raise ValueError(f"the ONNX graph has a cycle or an undefined input near node {pending[0].name!r}")
        for node in ready:
            available.update(node.output)
        ordered += ready
        ready_ids = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in ready_ids]
    _set_nodes(graph, ordered)


def _set_nodes(graph, nodes) -> None:
    """Replace the graph's node list (protobuf repeated fields cannot be assigned)."""
    del graph.node[:]
    graph.node.extend(nodes)


def _constants_to_initializers(graph):
    onnx = import_onnx()
    kept = []
    for node in graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            tensor = onnx.TensorProto()
            tensor.CopyFrom(node.attribute[0].t)
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
        else:
            kept.append(node)
    _set_nodes(graph, kept)


def _bypass_identities(graph):
    """Remove Identity nodes, feeding their consumers from the Identity's input (graph outputs stay named)."""
    outputs = {o.name for o in graph.output}
    rename = {}
    kept = []
    for node in graph.node:
        node.input[:] = [rename.get(name, name) for name in node.input]
        if node.op_type == "Identity" and node.output[0] not in outputs:
            rename[node.output[0]] = node.input[0]
        else:
            kept.append(node)
    _set_nodes(graph, kept)


def _remove_dead_code(graph):
    """Drop nodes and initializers that no graph output depends on (nodes are in topological order)."""
    needed = {o.name for o in graph.output}
    live = []
    for node in reversed(graph.node):
        if any(name in needed for name in node.output):
            live.append(node)
            needed.update(name for name in node.input if name)
    _set_nodes(graph, reversed(live))
    initializers = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    inputs = [i for i in graph.input if i.name in needed or not _is_initializer_input(graph, i)]
    del graph.input[:]
    graph.input.extend(inputs)
    del graph.value_info[:]  # stale after the rewrites; onnxruntime infers shapes itself


def _is_initializer_input(graph, value):
    return any(t.name == value.name for t in graph.initializer)


def _name_batch_axis(graph):
    initializer_names = {t.name for t in graph.initializer}
    for value in list(graph.input) + list(graph.output):
        if value.name in initializer_names:
            continue
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = BATCH_AXIS


def clean_onnx_model(model: Any) -> Any:
    """The tidied copy of `model` (see the module docstring); the computation is unchanged."""
    onnx = import_onnx()
    cleaned = onnx.ModelProto()
    cleaned.CopyFrom(model)
    graph = cleaned.graph
    _constants_to_initializers(graph)
    _sort_topologically(graph)
    _bypass_identities(graph)
    _remove_dead_code(graph)
    _name_batch_axis(graph)
    return cleaned


def clean_onnx_file(path: Union[str, Path]) -> Path:
    """Clean the ONNX model at `path` in place."""
    onnx = import_onnx()
    return save_onnx(clean_onnx_model(onnx.load(str(path))), path)


def uint8_input_model(model: Any, mean: Sequence[float], std: Sequence[float], scale: float = 1.0 / 255.0,
                      input_name: str = "x") -> Any:
    """`model` (float32 NCHW input `input_name`, normalised) -> a model whose input `input_name` is the resized
    and cropped RGB image as uint8 NHWC [batch, H, W, 3]; the graph casts, applies (x * scale - mean) / std
    per channel in float32 (the same arithmetic as NormalizeImage) and transposes to NCHW."""
    onnx = import_onnx()
    from onnx import TensorProto, helper, numpy_helper

    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    old = next((i for i in graph.input if i.name == input_name), None)
    if old is None:
        raise ValueError(f"the ONNX model has no input named {input_name!r}")
    dims = old.type.tensor_type.shape.dim
    if len(dims) != 4 or dims[1].dim_value != 3:
        raise ValueError(f"uint8 input needs a [N, 3, H, W] model input, got {[d.dim_value or d.dim_param for d in dims]}")
    height, width = dims[2].dim_value, dims[3].dim_value
    inner = f"{input_name}_normalized"
    for node in graph.node:
        node.input[:] = [inner if name == input_name else name for name in node.input]
    shape = np.array([1, 1, 1, 3])
    graph.initializer.extend([
        numpy_helper.from_array(np.array(scale, dtype=np.float32), "uint8_input_scale"),
        numpy_helper.from_array(np.asarray(mean, dtype=np.float32).reshape(shape), "uint8_input_mean"),
        numpy_helper.from_array(np.asarray(std, dtype=np.float32).reshape(shape), "uint8_input_std"),
    ])
    prologue = [
        helper.make_node("Cast", [input_name], ["uint8_input_float"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["uint8_input_float", "uint8_input_scale"], ["uint8_input_scaled"]),
        helper.make_node("Sub", ["uint8_input_scaled", "uint8_input_mean"], ["uint8_input_centered"]),
        helper.make_node("Div", ["uint8_input_centered", "uint8_input_std"], ["uint8_input_nhwc"]),
        helper.make_node("Transpose", ["uint8_input_nhwc"], [inner], perm=[0, 3, 1, 2]),
    ]
    _set_nodes(graph, prologue + list(graph.node))
    new_input = helper.make_tensor_value_info(input_name, TensorProto.UINT8, [BATCH_AXIS, height, width, 3])
    inputs = [new_input if i.name == input_name else i for i in graph.input]
    del graph.input[:]
    graph.input.extend(inputs)
    return result


def write_uint8_input_model(save_dir: Union[str, Path], normalize: Dict[str, Any], source: str = "model.onnx",
                            target: str = UINT8_INPUT_FILE, input_name: str = "x") -> Path:
    """Write `save_dir/target`: the uint8-input version of `save_dir/source`. `normalize` is the exported
    NormalizeImage op's parameters (scale, mean, std)."""
    onnx = import_onnx()
    save_dir = Path(save_dir)
    model = uint8_input_model(onnx.load(str(save_dir / source)), normalize["mean"], normalize["std"],
                              normalize.get("scale", 1.0 / 255.0), input_name=input_name)
    return save_onnx(model, save_dir / target)


def export_onnx(save_dir: Union[str, Path], model_file: str = "inference.json", opset: int = MIN_OPSET) -> Path:
    """Convert the Paddle inference model in `save_dir` to `save_dir/model.onnx` with paddle2onnx's Python API,
    then clean it (no unused constants, which make onnxruntime warn; batch axis named 'batch').

    Polygraphy folding is turned off: paddle2onnx would otherwise let it pip-install onnx_graphsurgeon at run
    time, and onnxruntime folds constants itself when it loads the model.
    """
    if opset < MIN_OPSET:
        raise ValueError(f"ONNX opset must be >= {MIN_OPSET} (HardSwish/HardSigmoid and Softmax semantics), "
                         f"got {opset}")
    try:
        import paddle2onnx
    except ImportError:
        raise ExportError("--onnx needs paddle2onnx: pip install -e .[deploy]") from None
    save_dir = Path(save_dir)
    model_bytes = paddle2onnx.export(str(save_dir / model_file), str(save_dir / PADDLE_PARAMS_FILE),
                                     save_file=None, opset_version=opset, auto_upgrade_opset=True,
                                     enable_onnx_checker=True, optimize_tool="none")
    if not model_bytes:  # paddle2onnx logs the error and returns None instead of raising
        raise ExportError(f"paddle2onnx could not convert {save_dir / model_file}; see its error above")
    target = save_dir / ONNX_FILE
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(model_bytes)
    os.replace(tmp, target)
    return clean_onnx_file(target)
