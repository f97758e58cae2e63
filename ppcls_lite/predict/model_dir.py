"""Reading an export folder: inference.yml, which model file a backend runs at a precision, the recorded
checksums, and the preprocessing ops.

Besides tools/export_model.py's folders, PaddleClas's export folders run too: `inference.json` (or `.pdmodel`)
+ `inference.pdiparams` without inference.yml, whose preprocessing and post-processing then come from a
PaddleClas deploy config (`-c`, deploy_config.py), and `Global.export_for_fd` folders, whose inference.yml has
only PreProcess (no DecodeImage) and PostProcess (`Topk: {topk, label_list}`).
"""
import logging
import math
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Union

import yaml

from .. import pipeline
from .settings import PRECISIONS

INFERENCE_YML = "inference.yml"
_logger = logging.getLogger("ppcls_lite.predict")
# Where tools/export_model.py keeps the previous export for the moment of the switch where the platform cannot swap
# two folders in one step (ppcls_lite/export/staging.py); the next export puts it back if it was interrupted there.
PREVIOUS_EXPORT_SUFFIX = ".export-old"
# How to export the files a backend runs at each precision, for the error when they are missing.
_EXPORT_FLAGS = {"onnxruntime": "--onnx", "mnn": "--onnx --mnn"}


def previous_export_path(model_dir: Union[str, Path]) -> Path:
    """`.<name>.export-old` beside `model_dir`: the previous export while an export switches folders."""
    model_dir = Path(model_dir)
    return model_dir.parent / f".{model_dir.name}{PREVIOUS_EXPORT_SUFFIX}"


def load_inference_config(model_dir: Union[str, Path]) -> Dict[str, Any]:
    """model_dir/inference.yml as a dict; a clear error when the folder is not an export."""
    path = Path(model_dir) / INFERENCE_YML
    previous = previous_export_path(Path(model_dir).resolve())
    if not Path(model_dir).exists() and (previous / INFERENCE_YML).is_file():
        raise FileNotFoundError(f"{model_dir} does not exist: an export into it was stopped while it switched "
                                f"folders; the previous export is complete in {previous}. Run the export again "
                                f"(it puts the previous one back first) or rename {previous} to {model_dir}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: --model_dir must be a directory written by "
                                f"tools/export_model.py (python tools/export_model.py -c CONFIG "
                                f"-o Global.pretrained_model=PREFIX -o Global.save_inference_dir={model_dir}); "
                                f"for a PaddleClas export folder (no inference.yml) give its preprocessing with "
                                f"-c deploy/configs/inference_cls.yaml (PaddleClas's deploy config)")
    with open(path, "r", encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def found_model_files(model_dir: Union[str, Path]) -> Dict[str, Any]:
    """inference.yml's `Global` for a folder without one (PaddleClas's export): its model files, found by name as
    PaddleClas's predictor finds them (`inference_int8.*` first), the input shape unknown, softmax outputs."""
    model_dir = Path(model_dir)
    prefix = "inference_int8" if (model_dir / "inference_int8.pdiparams").is_file() else "inference"
    model_file = next((f"{prefix}{suffix}" for suffix in (".json", ".pdmodel") if (model_dir / f"{prefix}{suffix}")
                       .is_file()), None)
    onnx_file = next((name for name in ("inference.onnx", "model.onnx") if (model_dir / name).is_file()), None)
    if model_file is None and onnx_file is None:
        raise FileNotFoundError(f"{model_dir} holds no model: neither inference.yml (tools/export_model.py) nor "
                                f"PaddleClas's inference.json/inference.pdmodel + inference.pdiparams")
    return {"model_file": model_file, "params_file": f"{prefix}.pdiparams", "onnx_file": onnx_file,
            "input_shape": None, "output": "probabilities"}


def _close(a: Any, b: Any) -> bool:
    """Equal values, numbers within a relative 1e-6 (0.00392157 is PaddleClas's way to write 1/255)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-6)
    return a == b


def _described(transform_ops: List[Any]) -> List[Any]:
    """The ops with every parameter spelled out (what they do, however they were written; as build_preprocess
    reads them, so a deploy list without `reduced_decode` differs from an export that decodes reduced)."""
    return pipeline.describe_operators(pipeline.create_operators(_full_decode_unless_said(with_decode(transform_ops)),
                                                                 what="PreProcess.transform_ops"))


def with_decode(transform_ops: List[Any]) -> List[Any]:
    """PaddleClas's predictor decodes images (to RGB) before its ops: a list without DecodeImage gets one."""
    ops = list(transform_ops or [])
    first = ops[0] if ops else None
    name = next(iter(first)) if isinstance(first, dict) and first else first
    return ops if name == "DecodeImage" else [{"DecodeImage": {"to_rgb": True}}] + ops


def model_config(model_dir: Union[str, Path], deploy: Optional[Dict[str, Any]] = None,
                 where: str = "-c") -> Dict[str, Any]:
    """What the predictor runs, in inference.yml's layout: the export's inference.yml (or, without one, the model
    files found by name), with a PaddleClas deploy config's PreProcess and PostProcess in place of the export's
    when `deploy` has them, as PaddleClas's predictor does (a warning when they differ from the export's)."""
    model_dir = Path(model_dir)
    deploy = deploy or {}
    # Without inference.yml the deploy config must give the preprocessing (else the error says so).
    needs_yml = (model_dir / INFERENCE_YML).is_file() or not (deploy.get("PreProcess") or {}).get("transform_ops")
    exported = load_inference_config(model_dir) if needs_yml else {}
    info = dict(exported.get("Global") or found_model_files(model_dir))
    config = {"Global": info, "PreProcess": exported.get("PreProcess"), "PostProcess": exported.get("PostProcess")}
    for section in ("PreProcess", "PostProcess"):
        if not deploy.get(section):
            continue
        if config[section] and section == "PreProcess" and not _close(
                _described(config[section].get("transform_ops")), _described(deploy[section].get("transform_ops"))):
            _logger.warning(f"{where} PreProcess differs from {model_dir / INFERENCE_YML}'s (the preprocessing the "
                            f"model was exported with); using {where}'s, as PaddleClas's predictor does")
        config[section] = deploy[section]
    if not (config["PreProcess"] or {}).get("transform_ops"):
        raise ValueError(f"{model_dir / INFERENCE_YML} has no PreProcess.transform_ops; re-export the model")
    return config


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
        if not info.get("model_file"):
            raise FileNotFoundError(f"{model_dir} has no Paddle model (inference.json or inference.pdmodel); "
                                    f"use --backend onnxruntime")
        return model_dir / info["model_file"]
    variants = dict((info.get("variants") or {}).get(backend) or {})
    if backend == "onnxruntime" and info.get("onnx_file"):
        variants.setdefault("fp32", info["onnx_file"])
    name = variants.get(precision)
    if name and not (model_dir / name).is_file():
        raise _missing(model_dir, name)
    if not name:
        how = _EXPORT_FLAGS.get(backend, "") + ("" if precision == "fp32" else f" --quantize {precision}")
        listed = ", ".join(f"{p}: {f}" for p, f in sorted(variants.items())) or "none"
        raise FileNotFoundError(f"{model_dir} has no {precision} model for --backend {backend} (exported: {listed}); "
                                f"export with python tools/export_model.py ... {how}")
    return model_dir / name


def verify_model_files(model_dir: Union[str, Path], paths: Iterable[Union[str, Path]],
                       recorded: Dict[str, str]) -> None:
    """Check the files a backend loads against the sha256 recorded in inference.yml (`recorded`, Global.sha256):
    a changed file is an error naming it, a missing one too; exports without checksums are accepted."""
    for path in paths:
        if not Path(path).is_file():
            raise _missing(model_dir, Path(path).name)
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


def _missing(model_dir: Path, name: str) -> FileNotFoundError:
    return FileNotFoundError(f"{Path(model_dir) / name} is missing: inference.yml names it, but the export folder "
                             f"does not have it (copied or uploaded in part?). Copy the whole folder again, or "
                             f"re-export with python tools/export_model.py -c CONFIG -o Global.pretrained_model=PREFIX "
                             f"-o Global.save_inference_dir={model_dir}")


def build_preprocess(transform_ops: List[Any]) -> List[Any]:
    """`PreProcess.transform_ops` of inference.yml -> list of op objects (the shared pipeline's ops; NormalizeImage
    + ToCHWImage run as one bit-identical pass). A list without DecodeImage (PaddleClas's) decodes to RGB first; a
    DecodeImage without `reduced_decode` decodes at full size, as the code that wrote it did."""
    try:
        return pipeline.fuse_operators(pipeline.create_operators(
            _full_decode_unless_said(with_decode(transform_ops)), what="PreProcess.transform_ops"))
    except ValueError as exc:
        raise ValueError(f"{exc} (fix the -c deploy config's PreProcess, or re-export the model with "
                         f"tools/export_model.py)") from None
