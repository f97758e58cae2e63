"""Loading PaddleClas-format weights (`.pdparams` or `.safetensors`) into a model, non-strictly.

Every `.pdparams` is read through the restricted loader (`ppcls_lite.utils.safe_load`): a file that asks for
anything beyond arrays and plain containers is refused before any of it runs.
"""
from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from ppcls_lite.utils import logger
from ppcls_lite.utils.download import download_weights, is_url
from ppcls_lite.utils.safe_load import WeightsFileError, restricted_load

WEIGHT_SUFFIXES = (".pdparams", ".safetensors")


def resolve_weights_path(path: str | os.PathLike) -> str:
    """`path` itself, or `path.pdparams` / `path.safetensors` (a prefix as PaddleClas writes it)."""
    path = os.fspath(path)
    candidates = [path] + [path + suffix for suffix in WEIGHT_SUFFIXES]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(f"pretrained weights not found: none of {', '.join(repr(c) for c in candidates)} "
                            f"exists (give the checkpoint prefix, e.g. output/MobileNetV3_large_x1_0/best_model)")


def _read_safetensors(path):
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return dict(load_file(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsFileError(f"cannot read weights file {path!r} ({type(err).__name__}: {err}); it is truncated "
                               f"or not a .safetensors file - re-download or re-export it") from err


def _looks_like_safetensors(path) -> bool:
    """safetensors files start with an 8-byte little-endian header size, then the JSON header."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < os.path.getsize(path)


def read_state_dict(path: str | os.PathLike) -> dict:
    """{parameter name: numpy array} from a `.pdparams` (restricted unpickler) or `.safetensors` file.

    Raises UnsafeWeightsFileError for a file that asks to run code, ValueError (WeightsFileError) for one that
    is truncated, corrupt or holds no state dict; each names the file.
    """
    path = os.fspath(path)
    if path.endswith(".safetensors") or _looks_like_safetensors(path):  # a download's .part has no suffix
        state = _read_safetensors(path)
    else:
        state = restricted_load(path, return_numpy=True)  # its errors name the file and what to do
    if isinstance(state, dict):
        state.pop("StructuredToParameterName@@", None)  # name map stored by old Paddle versions
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, np.ndarray) for k, v in state.items()):
        raise WeightsFileError(f"weights file {path!r} is not a Paddle state dict (expected a mapping of parameter "
                               f"names to arrays, got {type(state).__name__}); for a .pdopt/.pdstates give the "
                               f".pdparams")
    return state


def match_state_dict(model_state: dict, state: dict) -> dict:
    """Compare a file's {name: array} with a model's state dict: which keys load, which are skipped and why."""
    loadable, report = {}, {"loaded": [], "missing": [], "unexpected": [], "mismatched": []}
    for key, target in model_state.items():
        if key not in state:
            report["missing"].append(key)
            continue
        value, model_shape = state[key], list(target.shape)
        if list(value.shape) != model_shape:
            report["mismatched"].append((key, list(value.shape), model_shape))
            continue
        loadable[key] = value.astype(str(target.dtype).replace("paddle.", ""), copy=False)
        report["loaded"].append(key)
    report["unexpected"] = [key for key in state if key not in model_state]
    return {"loadable": loadable, **report}


def student_weights(state: dict, model_state: dict, prefix: str = "Student.") -> dict:
    """A DistillationModel's weights for its student alone: `state` with `prefix` stripped when none of the model's
    keys is in `state` but the prefixed ones are (PaddleClas's `_extract_student_weights`); else `state`."""
    if any(key in state for key in model_state) or not any(key.startswith(prefix) for key in state):
        return state
    return {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}


def check_weights_fit(model: Any, path: str | os.PathLike) -> None:
    """Raise WeightsFileError unless `path` holds weights for `model`: every parameter present with the model's
    shape, except the classifier, whose class count may differ (it is then skipped, as PaddleClas does)."""
    model_state = model.state_dict()
    report = match_state_dict(model_state, read_state_dict(path))
    # A classifier of another class count differs only in the last dimension of the final layer's tensors.
    last_layer = list(model_state)[-1].rsplit(".", 1)[0]
    other = [(k, f, m) for k, f, m in report["mismatched"] if not (f[:-1] == m[:-1] and
                                                                   k.rsplit(".", 1)[0] == last_layer)]
    if report["missing"] or other:
        raise WeightsFileError(f"{path} does not hold weights for this model: {len(report['missing'])} parameters "
                               f"missing (e.g. {report['missing'][:3]}), {len(other)} of another shape (e.g. "
                               f"{other[:3]}); it is probably the file of another model")


def load_pretrained(model: Any, path: str | os.PathLike) -> dict:
    """Load `path`, `path.pdparams` or `path.safetensors` into `model`, skipping what does not fit, and report
    every skipped key. `path` may also be an http(s) URL: the file is downloaded into the weights cache and must
    fit the model (`check_weights_fit`) before it is used.

    Returns {"loaded": [keys], "missing": [model keys absent from the file], "unexpected": [file keys the model
    lacks], "mismatched": [(key, file_shape, model_shape)]} - e.g. a 1000-class fc into a 10-class model.
    """
    if is_url(path):
        path = download_weights(str(path).strip(), validate=lambda file: check_weights_fit(model, file))
    path = resolve_weights_path(path)
    model_state = model.state_dict()
    state = read_state_dict(path)
    student = student_weights(state, model_state)
    if student is not state:
        logger.info(f"pretrained {path}: a DistillationModel checkpoint; loading its Student.* weights")
    report = match_state_dict(model_state, student)
    loadable = report.pop("loadable")
    with warnings.catch_warnings():
        # Paddle warns once per key it does not find; the report below names each skipped key and why.
        warnings.simplefilter("ignore", UserWarning)
        model.set_state_dict(loadable)

    for key in report["missing"]:
        logger.warning(f"pretrained {path}: skipped {key}: missing from the file (keeps its initial value)")
    for key in report["unexpected"]:
        logger.warning(f"pretrained {path}: skipped {key}: unexpected, the model has no such parameter")
    for key, file_shape, model_shape in report["mismatched"]:
        logger.warning(f"pretrained {path}: skipped {key}: shape mismatch, file {file_shape} vs model {model_shape}")
    logger.info(f"pretrained {path}: loaded {len(report['loaded'])}/{len(model_state)} tensors")
    return report


def save_safetensors(state: dict, path: str | os.PathLike) -> str:
    """Write {name: array or Tensor} to `path` as `.safetensors` (safetensors' Paddle API; no pickle inside),
    through a temp file and a rename. Returns the path."""
    import paddle
    from safetensors.paddle import save_file

    path = os.fspath(path)
    tensors = {k: v if isinstance(v, paddle.Tensor) else paddle.to_tensor(np.ascontiguousarray(v))
               for k, v in state.items()}
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        save_file(tensors, tmp, metadata={"format": "paddle", "producer": "ppcls_lite"})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
