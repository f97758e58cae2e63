"""`portable_save`: write what `paddle.save` writes, readable by plain `paddle.load` under numpy 1.x and 2.x.

`paddle.save` pickles numpy arrays with numpy's own reduction, which names the module that rebuilds them:
`numpy._core.multiarray._reconstruct` under numpy 2, a module numpy 1.x does not have, so a checkpoint written
under numpy 2 cannot be read where numpy 1.x is installed (PaddleClas pins numpy 1.24.4). Here every array is
pickled as `numpy.ndarray(shape, dtype string, bytearray of its bytes)`, which every numpy version rebuilds the
same (and which `ppcls_lite.utils.safe_load` allows); numpy scalars become Python numbers. Everything else is
paddle.save's format, so `paddle.load` returns the same objects:

- a state dict (every value a tensor, or a dict holding no tensor: `.pdparams`, `.pdopt`) is saved as
  {key: array, ...} plus paddle's "StructuredToParameterName@@" table of the tensors' names;
- in any other object (`.pdstates`) each tensor is saved as the pair (name, array), as paddle does.
"""
from __future__ import annotations

import os
import pickle
from typing import Any

import numpy as np
import paddle

NAME_TABLE = "StructuredToParameterName@@"  # paddle.save's {key: tensor name} entry of a state dict
PROTOCOL = 4  # paddle.save's default


def _is_tensor(value: Any) -> bool:
    return isinstance(value, paddle.Tensor)


def _holds_tensor(value: Any) -> bool:
    if _is_tensor(value):
        return True
    if isinstance(value, dict):
        return any(_holds_tensor(v) for v in value.values())
    if isinstance(value, (list, tuple, set)):
        return any(_holds_tensor(v) for v in value)
    return False


def is_state_dict(obj: Any) -> bool:
    """paddle.save's rule: a dict whose values are tensors, or dicts that hold no tensor."""
    return isinstance(obj, dict) and all(
        _is_tensor(v) or (isinstance(v, dict) and not _holds_tensor(v)) for v in obj.values())


def _rebuild_args(array: np.ndarray) -> tuple:
    if array.dtype.hasobject:
        raise TypeError(f"cannot save a numpy array of dtype {array.dtype} (only numbers and booleans)")
    return array.shape, array.dtype.str, bytearray(array.tobytes(order="C"))


class PortablePickler(pickle.Pickler):
    """Pickles arrays as `numpy.ndarray(shape, dtype, bytes)`, numpy scalars as Python numbers, tensors as paddle
    does ((name, array)); refuses layers, as paddle.save does."""

    def reducer_override(self, obj: Any) -> Any:
        """The reduction of arrays, numpy scalars, tensors and layers; NotImplemented for the rest."""
        if isinstance(obj, np.ndarray):
            return np.ndarray, _rebuild_args(obj)
        if isinstance(obj, np.generic):
            value = obj.item()
            return type(value), (value,)
        if _is_tensor(obj):
            return tuple, ((obj.name, obj.numpy()),)
        if isinstance(obj, paddle.nn.Layer):
            raise TypeError("a paddle.nn.Layer cannot be saved; save its state_dict()")
        return NotImplemented


def portable_save(obj: Any, path: str | os.PathLike) -> None:
    """Write `obj` to `path` in paddle.save's format, with arrays every numpy version reads (see module doc)."""
    if is_state_dict(obj):
        names = {key: value.name for key, value in obj.items() if _is_tensor(value)}
        obj = {key: value.numpy() if _is_tensor(value) else value for key, value in obj.items()}
        obj[NAME_TABLE] = names
    with open(path, "wb") as f:
        PortablePickler(f, protocol=PROTOCOL).dump(obj)
