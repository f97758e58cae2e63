"""Loading PaddleClas-format weights (`.pdparams`) into a model, non-strictly."""
import os
import warnings

import numpy as np
import paddle

from ppcls_lite.utils import logger


def _resolve_weights_path(path):
    path = os.fspath(path)
    for candidate in (path, path + ".pdparams"):
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(f"pretrained weights not found: neither {path!r} nor {path + '.pdparams'!r} exists "
                            f"(give the checkpoint prefix, e.g. output/MobileNetV3_large_x1_0/best_model)")


def _read_state_dict(path):
    try:
        state = paddle.load(path, return_numpy=True)
    except Exception as err:  # pickle/EOF/unicode errors from a truncated or foreign file
        raise ValueError(f"cannot read weights file {path!r} ({type(err).__name__}: {err}); it is truncated, "
                         f"corrupt or not a Paddle .pdparams file - re-download or re-save it") from err
    if isinstance(state, dict):
        state.pop("StructuredToParameterName@@", None)  # name map stored by old Paddle versions
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, np.ndarray) for k, v in state.items()):
        raise ValueError(f"weights file {path!r} is not a Paddle state dict (expected a mapping of parameter "
                         f"names to arrays, got {type(state).__name__}); for a .pdopt/.pdstates give the .pdparams")
    return state


def load_pretrained(model, path):
    """Load `path` or `path.pdparams` into `model`, skipping what does not fit, and report every skipped key.

    Returns {"loaded": [keys], "missing": [model keys absent from the file], "unexpected": [file keys the model
    lacks], "mismatched": [(key, file_shape, model_shape)]} - e.g. a 1000-class fc into a 10-class model.
    """
    path = _resolve_weights_path(path)
    state = _read_state_dict(path)
    model_state = model.state_dict()
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
