"""The content of inference.yml: the inference ops with every parameter spelled out, input shape, top-k, labels.

The predictor reads only this file (and the model) to preprocess images exactly as training's Infer.transforms did.
"""
import copy
from typing import Any, Dict, List, Optional, Sequence, Tuple

import paddle

from ppcls_lite import __version__ as ppcls_lite_version
from ppcls_lite.pipeline import INFERENCE_OPERATORS, describe_operators
from ppcls_lite.utils import logger

from .folder import INPUT_NAME, PADDLE_PARAMS_FILE, ExportError

# The predictor runs the shared pipeline's ops; random training ops cannot be exported.
INFERENCE_OPS = tuple(INFERENCE_OPERATORS)


def normalize_transform_ops(op_list: List[Any]) -> List[Dict[str, Dict[str, Any]]]:
    """`Infer.transforms` -> list of `{OpName: {every parameter spelled out}}` that the predictor applies as is.

    The ops are built with the training code's registry and then describe themselves (`inference_params()`),
    so defaults are written explicitly and the exported directory does not depend on the defaults of the
    code that reads it. A missing final ToCHWImage is appended (the dataset transposes HWC output the same way).
    """
    from ppcls_lite.data.preprocess import create_operators

    if not op_list:
        raise ExportError("Infer.transforms is empty; the export needs the inference preprocessing, e.g. "
                          "DecodeImage, ResizeImage(resize_short), CropImage(size), NormalizeImage, ToCHWImage")
    try:
        ops = describe_operators(create_operators(op_list, what="Infer.transforms"))
    except ValueError as exc:
        raise ExportError(f"Infer.transforms: {exc}") from None
    for op in ops:
        (name, params), = op.items()
        if params.get("interpolation") == "random":
            raise ExportError(f"Infer.transforms {name}.interpolation='random' cannot be exported (prediction must "
                              f"be deterministic); use one of nearest, bilinear, area, bicubic, lanczos")
        if params.get("channel_first"):
            raise ExportError("Infer.transforms DecodeImage.channel_first=True is not supported for export; use "
                              "channel_first: False and a final ToCHWImage")
        if params.get("output_fp16") or params.get("channel_num", 3) != 3:
            raise ExportError("Infer.transforms NormalizeImage: output_fp16 / channel_num 4 cannot be exported "
                              "(the model takes 3-channel float32 input)")
    if "DecodeImage" not in ops[0]:
        raise ExportError("Infer.transforms must start with DecodeImage (the predictor reads image files)")
    if not any("ToCHWImage" in op for op in ops):
        ops.append({"ToCHWImage": {}})
    return ops


def input_size_from_transforms(ops: List[Dict[str, Any]]) -> Optional[Tuple[int, int]]:
    """(height, width) the preprocessing produces, or None when it depends on the image (resize_short only)."""
    size = None
    for op in ops:
        (name, params), = op.items()
        if name == "CropImage":
            size = params["size"]
        elif name == "ResizeImage":
            size = params.get("size")
    return None if size is None else (int(size[1]), int(size[0]))


def read_label_list(class_id_map_file: Optional[str], class_num: Optional[int]) -> Optional[List[str]]:
    """Names indexed by class id (the same file tools/infer.py reads), or None without a map file."""
    if not class_id_map_file:
        return None
    from ppcls_lite.pipeline import read_class_id_map, resolve_class_id_map_file
    path = resolve_class_id_map_file(class_id_map_file)
    mapping = read_class_id_map(path)
    if class_num and len(mapping) != class_num:
        logger.warning(f"Infer.PostProcess.class_id_map_file {path} has {len(mapping)} names but the model has "
                       f"{class_num} classes; ids without a name get ''")
    count = class_num or (max(mapping) + 1 if mapping else 0)
    return [mapping.get(i, "") for i in range(count)]


def build_inference_config(transform_ops: List[Dict[str, Any]], input_shape: Sequence[int], class_num: Optional[int],
                           topk: int = 1, label_list: Optional[List[str]] = None, model_name: Optional[str] = None,
                           output: str = "probabilities", model_file: str = "inference.json",
                           params_file: str = PADDLE_PARAMS_FILE, onnx_file: Optional[str] = None,
                           weights: Optional[str] = None,
                           postprocess: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The content of inference.yml (a plain dict). `postprocess` ({name: params}) replaces the Topk one
    (a retrieval model's `{Embedding: {normalize, binarize}}`)."""
    versions = {"paddle": paddle.__version__, "ppcls_lite": ppcls_lite_version}
    return {
        "Global": {
            "model_name": model_name,
            "class_num": int(class_num) if class_num else None,
            "input_shape": [int(v) for v in input_shape],  # C, H, W; the batch dimension is dynamic
            "input_name": INPUT_NAME,
            "output": output,  # 'probabilities' (softmax in the graph), 'logits' or 'features' (an embedding)
            "model_file": model_file,
            "params_file": params_file,
            "onnx_file": onnx_file,
            "weights": weights,
            "exported_with": versions,
        },
        "PreProcess": {"transform_ops": copy.deepcopy(transform_ops)},
        "PostProcess": {**(postprocess or {"Topk": {"topk": int(topk)}}), "label_list": label_list},
    }
