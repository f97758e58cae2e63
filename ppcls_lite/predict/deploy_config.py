"""PaddleClas's deploy config for the predictor: `-c deploy/configs/inference_cls.yaml -o Global.KEY=VALUE ...`.

The layout is PaddleClas's `deploy/configs/inference_cls.yaml`:

    Global:      inference_model_dir, infer_imgs, batch_size, use_gpu, enable_mkldnn, cpu_num_threads, use_fp16,
                 use_tensorrt, gpu_mem, ir_optim, enable_benchmark, enable_profile, benchmark, ...
    PreProcess:  transform_ops (the pipeline's ops; PaddleClas's predictor decodes the image itself, so a list
                 without DecodeImage gets one in front)
    PostProcess: main_indicator: Topk, then one mapping per post-process (Topk: {topk, class_id_map_file}, ...)

As in PaddleClas, `-o` changes the file's values (dotted keys, list indices, new keys allowed), and the file's
PreProcess and PostProcess are what runs, also on an export folder whose inference.yml says otherwise (a warning
names the difference). The file may also hold ppcls_lite's own `Runtime` section (PredictorSettings names).
Settings: defaults < Runtime < the Global keys < command-line flags.
"""
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from .settings import PredictorSettings

PADDLECLAS_SECTIONS = ("Global", "PreProcess", "PostProcess")
# Global keys -> the PredictorSettings they set.
GLOBAL_SETTINGS = {"batch_size": "batch_size", "use_gpu": "use_gpu", "enable_mkldnn": "enable_mkldnn",
                   "cpu_num_threads": "threads", "use_tensorrt": "use_tensorrt", "gpu_mem": "gpu_mem",
                   "gpu_id": "gpu_id"}
# Global keys that choose the model and the inputs (the --model_dir and --input flags win).
GLOBAL_PATHS = ("inference_model_dir", "infer_imgs")
# Global keys that choose the precision or the backend (settings_from_global).
GLOBAL_CHOICES = ("use_fp16", "use_int8", "use_onnx")
# Global keys that change nothing here, and why, when set to anything but the value given.
NO_EFFECT = {
    "ir_optim": (True, "Paddle Inference's IR optimisation is always on"),
    "benchmark": (False, "PaddleClas's auto_log timing is not available; measure with tools/benchmark.py"),
    "enable_profile": (False, "profiling is not available; measure with tools/benchmark.py"),
}
# Global keys PaddleClas's predict_cls.py itself reads only with `benchmark` or not at all: no note.
UNUSED_BY_PADDLECLAS = ("enable_benchmark", "save_log_path", "model_name", "enable_mkldnn_bfloat16")
KNOWN = (*GLOBAL_SETTINGS, *GLOBAL_PATHS, *GLOBAL_CHOICES, *NO_EFFECT, *UNUSED_BY_PADDLECLAS)
_logger = logging.getLogger("ppcls_lite.predict")


def _yaml_value(text: str) -> Any:
    """A -o value as PaddleClas reads it (a Python literal): numbers, True/False/None, lists; else the text."""
    if text.strip() == "None":
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(config: Dict[str, Any], overrides: Sequence[str], where: str) -> Dict[str, Any]:
    """`config` with each `KEY.SUB.0.LEAF=VALUE` set (PaddleClas's `-o`; a missing last key is added)."""
    for item in overrides or []:
        key, sep, text = str(item).partition("=")
        if not sep or not key:
            raise ValueError(f"-o {item!r}: write KEY=VALUE, e.g. -o Global.batch_size=8")
        node: Any = config
        parts = key.split(".")
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise KeyError(f"-o {key}: {'.'.join(parts[:depth]) or where} is a list of {len(node)} "
                                   f"items; {part!r} is not an index into it")
                part = int(part)
            elif not isinstance(node, dict):
                raise KeyError(f"-o {key}: {'.'.join(parts[:depth])} in {where} is a value, not a section")
            elif not last and part not in node:
                node[part] = {}
            if last:
                node[part] = _yaml_value(text)
            else:
                node = node[part]
    return config


def read_deploy_config(path: str, overrides: Sequence[str] = ()) -> Dict[str, Any]:
    """The YAML file `path` (PaddleClas's deploy layout and/or a `Runtime` section) with `-o` overrides applied."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"-c {path}: no such file (e.g. deploy/configs/inference_cls.yaml)")
    with open(file, "r", encoding="utf-8") as f:
        config = yaml.safe_load(f) or {}
    if not isinstance(config, dict):
        raise ValueError(f"-c {path}: expected a mapping with Global / PreProcess / PostProcess (PaddleClas's "
                         f"deploy layout) or Runtime, got {type(config).__name__}")
    return apply_overrides(config, overrides, str(path))


def is_paddleclas_layout(config: Optional[Dict[str, Any]]) -> bool:
    """Whether a deploy config has PaddleClas's sections (Global, PreProcess, PostProcess)."""
    return bool(config) and any(section in config for section in PADDLECLAS_SECTIONS)


def settings_from_global(global_section: Dict[str, Any], settings: PredictorSettings,
                         where: str) -> PredictorSettings:
    """`settings` with what PaddleClas's Global keys ask for; one warning for keys that change nothing here."""
    changes = {GLOBAL_SETTINGS[k]: v for k, v in global_section.items() if k in GLOBAL_SETTINGS and v is not None}
    if global_section.get("use_onnx"):
        changes["backend"] = "onnxruntime"
    if global_section.get("use_int8"):
        changes["precision"] = "int8"
    elif global_section.get("use_fp16"):
        changes["precision"] = "fp16"  # Paddle Inference: through TensorRT only, as in PaddleClas
    ignored = [f"{k}={v!r} ({NO_EFFECT[k][1]})" for k, v in global_section.items()
               if k in NO_EFFECT and v is not None and v != NO_EFFECT[k][0]]
    unknown = [k for k in global_section if k not in KNOWN]
    if ignored or unknown:
        _logger.warning(f"{where} Global: " + "; ".join(
            ignored + ([f"{', '.join(unknown)}: not a deploy setting here, ignored"] if unknown else [])))
    return settings.replace(where=f"{where} Global", **changes)


def model_and_inputs(config: Dict[str, Any], model_dir: Optional[str], inputs: Optional[str],
                     where: str) -> Tuple[str, str]:
    """The model folder and inputs: the flags, else the deploy config's Global.inference_model_dir/infer_imgs."""
    global_section = (config or {}).get("Global") or {}
    model_dir = model_dir or global_section.get("inference_model_dir")
    inputs = inputs or global_section.get("infer_imgs")
    missing = [what for what, value in (("--model_dir (or Global.inference_model_dir)", model_dir),
                                        ("--input (or Global.infer_imgs)", inputs)) if not value]
    if missing:
        raise ValueError(f"give {' and '.join(missing)}" + (f"; {where} has none" if where else ""))
    return str(model_dir), str(inputs)


def paddleclas_line(result: Dict[str, Any]) -> str:
    """One result as PaddleClas's predict_cls.py prints it (file name, ids, scores with 2 decimals, names)."""
    name = Path(str(result.get("file_name", ""))).name
    if "class_ids" not in result or "label_names" not in result:
        if "scores" not in result:
            return f"{name}:\t {result}"
        return f"{name}:\tscore(s): {_scores(result['scores'])}"
    return (f"{name}:\tclass id(s): {list(result['class_ids'])}, score(s): {_scores(result['scores'])}, "
            f"label_name(s): {list(result['label_names'])}")


def _scores(scores: List[float]) -> str:
    return "[" + ", ".join(f"{float(s):.2f}" for s in scores) + "]"
