"""The extra model files of an export, written beside model.onnx and listed in inference.yml:

    model_fp16.onnx / model_int8.onnx   --quantize fp16 / int8 (ppcls_lite/export/quantize.py)
    model.mnn, model_fp16.mnn, model_int8.mnn   --mnn (ppcls_lite/export/mnn.py)
    model[_fp16|_int8]_uint8_input.onnx (+ .mnn)   --onnx_input uint8: each of the above taking the
                                        resized/cropped uint8 HWC image (normalisation in the graph)

inference.yml gets `Global.variants` ({backend: {precision: file}}, what the predictor's --precision picks
from) and, for the uint8-input models, `Global.uint8_input` (files per backend and precision, input shape
and layout).

Images for INT8 calibration go through the predictor's own preprocessing, read from the exported inference.yml
(samples.py), so they are exactly what the deployed model will be fed.
"""
from pathlib import Path
from typing import Any, Dict, Sequence, Union

import numpy as np

from ppcls_lite.utils import logger

from .folder import (FP16_FILE, INPUT_NAME, INT8_FILE, MNN_FILES, ONNX_FILE, ExportError, read_inference_config,
                     uint8_input_file, write_inference_config)
from .mnn import convert_onnx_to_mnn
from .onnx_tools import import_onnx, write_uint8_input_model
from .quantize import PRECISIONS, convert_fp16, quantize_int8
from .samples import dataset_samples, preprocess_files


def _normalize_params(transform_ops):
    for op in transform_ops:
        if "NormalizeImage" in op:
            return op["NormalizeImage"]
    raise ExportError("--onnx_input uint8 needs a NormalizeImage op in Infer.transforms (its mean/std go "
                      "into the graph)")


def _onnx_output_name(path):
    return import_onnx().load(str(path), load_external_data=False).graph.output[0].name


def write_variants(save_dir: Union[str, Path], config: Dict[str, Any], quantize: Sequence[str] = (), mnn: bool = False,
                   onnx_input: str = "float32", calib_images: int = 256) -> dict:
    """Write the variants asked for beside `save_dir/model.onnx` and list them in inference.yml.

    `config` is the export's config (the Train list supplies INT8 calibration images). Returns
    inference.yml's updated `Global` section.
    """
    save_dir = Path(save_dir)
    unknown = sorted(set(quantize) - set(PRECISIONS))
    if unknown:
        raise ExportError(f"--quantize {unknown[0]}: choose from {list(PRECISIONS)}")
    if onnx_input not in ("float32", "uint8"):
        raise ExportError(f"--onnx_input {onnx_input}: choose float32 or uint8")
    if not (save_dir / ONNX_FILE).is_file():
        raise ExportError(f"{save_dir / ONNX_FILE} not found: --quantize, --mnn and --onnx_input need --onnx")
    inference = read_inference_config(save_dir)
    info = inference["Global"]
    onnx_variants = {"fp32": ONNX_FILE}
    quantization = {}
    if "int8" in quantize:
        if int(calib_images) < 1:
            raise ExportError(f"--calib_images must be >= 1, got {calib_images}")
        samples = dataset_samples(config, "Train", info.get("class_num"), limit=calib_images,
                                  purpose="--quantize int8 (calibration)")
        logger.info(f"INT8 calibration on {len(samples)} images of the Train list (inference preprocessing)")
        images = preprocess_files(save_dir, [path for path, _ in samples]).astype(np.float32)
        quantization["int8"] = quantize_int8(save_dir / ONNX_FILE, save_dir / INT8_FILE, images, INPUT_NAME)
        onnx_variants["int8"] = INT8_FILE
    if "fp16" in quantize:
        quantization["fp16"] = convert_fp16(save_dir / ONNX_FILE, save_dir / FP16_FILE)
        onnx_variants["fp16"] = FP16_FILE
    variants = {"onnxruntime": onnx_variants}
    if mnn:
        # fp16 and int8 MNN files store reduced-precision weights of the float32 graph (MNN's own compression).
        variants["mnn"] = {precision: convert_onnx_to_mnn(save_dir / ONNX_FILE, save_dir / name, precision).name
                           for precision, name in MNN_FILES.items()}
    if onnx_input == "uint8":
        # The same prologue in front of every ONNX precision; MNN files converted from the fp32 one, as above.
        normalize = _normalize_params(inference["PreProcess"]["transform_ops"])
        files = {"onnxruntime": {}}
        for precision, name in onnx_variants.items():
            files["onnxruntime"][precision] = write_uint8_input_model(
                save_dir, normalize, source=name, target=uint8_input_file(name), input_name=INPUT_NAME).name
        if mnn:
            source = save_dir / files["onnxruntime"]["fp32"]
            files["mnn"] = {precision: convert_onnx_to_mnn(source, save_dir / uint8_input_file(name), precision).name
                            for precision, name in MNN_FILES.items()}
        _, height, width = info["input_shape"]
        info["uint8_input"] = {
            "files": files, "input_name": INPUT_NAME, "dtype": "uint8", "layout": "NHWC",
            "input_shape": [int(height), int(width), 3],
            "preprocess": "the PreProcess ops before NormalizeImage except ToCHWImage (decode, resize, crop); "
                          "normalisation and the HWC->CHW transpose are in the graph",
        }
    info["variants"] = variants
    info["output_name"] = _onnx_output_name(save_dir / ONNX_FILE)  # what an app's runtime asks for by name
    if quantization:
        info["quantization"] = quantization
    write_inference_config(save_dir, inference)
    return info
