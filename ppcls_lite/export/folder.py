"""The export folder: the names of its files, reading and writing inference.yml, checksums, and ExportError.

The bottom of ppcls_lite/export: every other export module imports this one, it imports none of them.

    inference.json + inference.pdiparams      Paddle inference model (paddle_model.py); older Paddle: .pdmodel
    inference.yml                             all the predictor needs besides the model (inference_yml.py)
    model.onnx                                --onnx (onnx_tools.py)
    model_fp16.onnx, model_int8.onnx          --quantize (quantize.py)
    model.mnn, model_fp16.mnn, model_int8.mnn --mnn (mnn.py)
    model*_uint8_input.onnx / .mnn            --onnx_input uint8 (variants.py)
    export_report.json                        --verify (verify.py)
    predict_cls.py, ppcls_lite/               the standalone predictor and its code (bundle.py)
    model.safetensors                         --safetensors: the weights without pickle
    export_manifest.json                      every file above that this export wrote, with its sha256: what a
                                              later export may replace (ownership.py); written last (staging.py)
"""
import json
import os
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Union

import yaml

from ppcls_lite import __version__
from ppcls_lite.pipeline import model_files, sha256_file
from ppcls_lite.predict import INFERENCE_YML
from ppcls_lite.utils.files import write_text_atomic

INPUT_NAME = "x"
PADDLE_MODEL_FILES = ("inference.json", "inference.pdmodel")  # Paddle 3 (PIR) writes .json, older Paddle .pdmodel
PADDLE_PARAMS_FILE = "inference.pdiparams"
ONNX_FILE = "model.onnx"
FP16_FILE = "model_fp16.onnx"
INT8_FILE = "model_int8.onnx"
MNN_FILES = {"fp32": "model.mnn", "fp16": "model_fp16.mnn", "int8": "model_int8.mnn"}
UINT8_INPUT_SUFFIX = "_uint8_input"
REPORT_FILE = "export_report.json"
PREDICT_SCRIPT = "predict_cls.py"
BUNDLE_DIR = "ppcls_lite"  # the predictor's packages (pipeline, predict), beside PREDICT_SCRIPT
SAFETENSORS_FILE = "model.safetensors"
MANIFEST_FILE = "export_manifest.json"
_MANIFEST_MARK = "tools/export_model.py"  # how a manifest of ours starts its `written_by`


class ExportError(ValueError):
    """The config or weights cannot be exported as asked; the message says what to change."""


def uint8_input_file(name: str) -> str:
    """model.onnx -> model_uint8_input.onnx, model_int8.mnn -> model_int8_uint8_input.mnn."""
    stem, suffix = name.rsplit(".", 1)
    return f"{stem}{UINT8_INPUT_SUFFIX}.{suffix}"


_PHONE_FILES = (FP16_FILE, INT8_FILE, *MNN_FILES.values())
# Written by --quantize / --mnn / --onnx_input uint8 / --verify; a new export removes them with the model.
VARIANT_FILES = (*_PHONE_FILES, *(uint8_input_file(name) for name in (ONNX_FILE, *_PHONE_FILES)), REPORT_FILE)


def read_inference_config(save_dir: Union[str, Path]) -> Dict[str, Any]:
    """save_dir/inference.yml as a dict."""
    return yaml.safe_load((Path(save_dir) / INFERENCE_YML).read_text(encoding="utf-8"))


class _ReadableDumper(yaml.SafeDumper):
    """Short lists of numbers on one line (mean, std, input_shape); long lists (label_list) one item per line."""

    def represent_list(self, data):
        flow = len(data) <= 8 and all(isinstance(v, (int, float)) for v in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_ReadableDumper.add_representer(list, _ReadableDumper.represent_list)


def write_inference_config(save_dir: Union[str, Path], data: Dict[str, Any]) -> None:
    """Write `data` as save_dir/inference.yml (atomically, with a header saying who reads it)."""
    header = ("# Written by tools/export_model.py; read by deploy/python/predict_cls.py (see docs/DEPLOY.md).\n"
              "# PreProcess ops run in order on each image; input_shape is C,H,W of one image.\n")
    text = yaml.dump(data, Dumper=_ReadableDumper, sort_keys=False, allow_unicode=True, width=120)
    write_text_atomic(Path(save_dir) / INFERENCE_YML, header + text)


def model_checksums(save_dir: Union[str, Path]) -> Dict[str, str]:
    """{file name: sha256} of every model file in `save_dir` (inference.json/.pdiparams, *.onnx, *.mnn)."""
    return {name: sha256_file(Path(save_dir) / name) for name in model_files(save_dir)}


def write_checksums(save_dir: Union[str, Path]) -> Dict[str, str]:
    """(Re)hash every model file present in `save_dir` into inference.yml's `Global.sha256`; the predictor checks
    the files its backend loads. Returns the mapping."""
    config = read_inference_config(save_dir)
    config["Global"]["sha256"] = model_checksums(save_dir)
    write_inference_config(save_dir, config)
    record_in_manifest(save_dir, [INFERENCE_YML])  # the rewritten inference.yml stays ours; added model files do not
    return config["Global"]["sha256"]


def _relative_files(folder: Path) -> Iterable[str]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "__pycache__"]  # Python's byte code, not written by the export
        for name in files:
            yield Path(root, name).relative_to(folder).as_posix()


def write_manifest(save_dir: Union[str, Path], leave_out: Iterable[str] = ()) -> Dict[str, str]:
    """List every file in `save_dir` (but `leave_out`, relative POSIX paths) with its sha256 in
    save_dir/export_manifest.json: the files a later export may replace. Returns {path: sha256}."""
    save_dir = Path(save_dir)
    skip = set(leave_out) | {MANIFEST_FILE}
    files = {rel: sha256_file(save_dir / rel) for rel in sorted(_relative_files(save_dir)) if rel not in skip}
    _save_manifest(save_dir, files)
    return files


def _save_manifest(save_dir: Path, files: Dict[str, str]) -> None:
    manifest = {"written_by": f"{_MANIFEST_MARK} (ppcls_lite {__version__})",
                "about": "the files this export wrote, with their sha256; a later export replaces these and "
                         "stops at any other file in the folder (docs/DEPLOY.md)",
                "files": files}
    write_text_atomic(save_dir / MANIFEST_FILE, json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")


def read_manifest(save_dir: Union[str, Path]) -> Optional[Dict[str, str]]:
    """{path: sha256} of save_dir/export_manifest.json; None when there is none (or it is not one of ours)."""
    try:
        manifest = json.loads((Path(save_dir) / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(manifest, dict) and str(manifest.get("written_by", "")).startswith(_MANIFEST_MARK)
            and isinstance(manifest.get("files"), dict)):
        return None
    return {str(k): str(v) for k, v in manifest["files"].items()}


def record_in_manifest(save_dir: Union[str, Path], names: Iterable[str]) -> None:
    """After the export tools rewrote or added `names` in a finished export: record their new sha256 in its
    manifest (nothing to do while an export is being built: its manifest is written last)."""
    files = read_manifest(save_dir)
    if files is None:
        return
    files.update({name: sha256_file(Path(save_dir) / name) for name in names})
    _save_manifest(Path(save_dir), dict(sorted(files.items())))
