"""Reading an export folder (tools/export_model.py output): inference.yml, which model file a backend runs at a
precision, the recorded checksums, and the preprocessing ops."""
from pathlib import Path
from typing import Any, Dict, Iterable, List, Union

import yaml

from .. import pipeline
from .settings import PRECISIONS

INFERENCE_YML = "inference.yml"
# How to export the files a backend runs at each precision, for the error when they are missing.
_EXPORT_FLAGS = {"onnxruntime": "--onnx", "mnn": "--onnx --mnn"}


def load_inference_config(model_dir: Union[str, Path]) -> Dict[str, Any]:
    """model_dir/inference.yml as a dict; a clear error when the folder is not an export."""
    path = Path(model_dir) / INFERENCE_YML
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: --model_dir must be a directory written by "
                                f"tools/export_model.py (python tools/export_model.py -c CONFIG "
                                f"-o Global.pretrained_model=PREFIX -o Global.save_inference_dir={model_dir})")
    with open(path, "r", encoding="utf-8") as f:
        return yaml.safe_load(f)


def model_variant_file(model_dir: Union[str, Path], info: Dict[str, Any], backend: str, precision: str = "fp32",
                       use_tensorrt: bool = False) -> Path:
    """The model file (a Path) the backend runs at `precision`, from inference.yml's `Global` section `info`.

    `Global.variants` lists the exported files per backend and precision (tools/export_model.py --quantize,
    --mnn); exports without it have the float32 files only."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    model_dir = Path(model_dir)
    if backend == "paddle":
        if precision == "int8" or (precision == "fp16" and not use_tensorrt):
            raise ValueError(f"--backend paddle runs the float32 Paddle model (fp16 only through TensorRT on GPU); "
                             f"for {precision} use --backend onnxruntime or mnn with a model exported with "
                             f"--quantize {precision}")
        return model_dir / info["model_file"]
    variants = dict((info.get("variants") or {}).get(backend) or {})
    if backend == "onnxruntime" and info.get("onnx_file"):
        variants.setdefault("fp32", info["onnx_file"])
    name = variants.get(precision)
    if not name or not (model_dir / name).is_file():
        how = _EXPORT_FLAGS.get(backend, "") + ("" if precision == "fp32" else f" --quantize {precision}")
        listed = ", ".join(f"{p}: {f}" for p, f in sorted(variants.items())) or "none"
        raise FileNotFoundError(f"{model_dir} has no {precision} model for --backend {backend} (exported: {listed}); "
                                f"export with python tools/export_model.py ... {how}")
    return model_dir / name


def verify_model_files(model_dir: Union[str, Path], paths: Iterable[Union[str, Path]],
                       recorded: Dict[str, str]) -> None:
    """Check the files a backend loads against the sha256 recorded in inference.yml (`recorded`, Global.sha256):
    a changed file is an error naming it; exports without checksums are accepted."""
    pipeline.verify_checksums(model_dir, [Path(p).name for p in paths], recorded or {})


def _full_decode_unless_said(transform_ops: List[Any]) -> List[Any]:
    """An export whose DecodeImage does not say `reduced_decode` was made by code that always decoded at full
    size (PaddleClas, earlier ppcls_lite): keep doing so, as its training and infer did."""
    ops = list(transform_ops or [])
    if ops and isinstance(ops[0], dict) and list(ops[0]) == ["DecodeImage"]:
        params = dict(ops[0]["DecodeImage"] or {})
        params.setdefault("reduced_decode", False)
        ops[0] = {"DecodeImage": params}
    return ops


def build_preprocess(transform_ops: List[Any]) -> List[Any]:
    """`PreProcess.transform_ops` of inference.yml -> list of op objects (the shared pipeline's ops; NormalizeImage
    + ToCHWImage run as one bit-identical pass; a DecodeImage without `reduced_decode` decodes at full size)."""
    try:
        return pipeline.fuse_operators(pipeline.create_operators(
            _full_decode_unless_said(transform_ops), what="inference.yml PreProcess.transform_ops"))
    except ValueError as exc:
        raise ValueError(f"{exc}; re-export the model with tools/export_model.py") from None
