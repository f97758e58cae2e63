"""The one reader of `.pdparams` / `.pdopt` / `.pdstates` files: a restricted unpickler that cannot run code.

`paddle.save` writes a pickle (protocol 4 by default, 2 in older Paddle versions). Unpickling a pickle may call
any importable function, so `paddle.load` on a file from a stranger, a mirror or a tampered download runs
whatever that file asks for. `restricted_load` reads the same files, allowing only the globals a Paddle state
dict, optimizer state or our `.pdstates` is made of, and refuses every other global *before* it is looked up
or called, with an error naming the file and the refused `module.name`:

- numpy array / dtype / scalar reconstruction (`numpy[._]core.multiarray._reconstruct`, `numpy.ndarray`,
  `numpy.dtype`, `numpy[._]core.multiarray.scalar`, `numpy[._]core.numeric._frombuffer`);
- builtin containers and scalars (dict, list, tuple, set, frozenset, int, float, complex, bool, str, bytes,
  bytearray) and `collections.OrderedDict`;
- `_codecs.encode` with the latin-1 codec only (protocol-2 pickles store bytes that way).

One narrow allowance for old checkpoints: `.pdstates` written by earlier ppcls_lite versions hold Paddle's RNG
`GeneratorState` objects. `paddle.base.libpaddle.GeneratorState` (and its older `paddle.fluid.core_avx` /
`paddle.fluid.libpaddle` names) is mapped to `LegacyGeneratorState`, an inert record of the four plain values
the object pickles (device, seed, offset, engine state as a list of byte values); no Paddle code runs while
loading, and `ppcls_lite.utils.seeding.set_rng_state` turns the record into an RNG state afterwards.

The result is what `paddle.load(path, return_numpy=...)` returns for the same file: ndarrays (or paddle
Tensors when `return_numpy=False`), Paddle 2.1-style `(name, ndarray)` tuples turned into arrays/tensors,
big parameters that protocol 2/3 split into slices joined again, and the "StructuredToParameterName@@"
name table handled as `paddle.load` does.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
from typing import Any

import numpy as np

BIG_PARAM_INFO = "UnpackBigParamInfor@@"  # key Paddle uses for parameters split into slices (protocol 2/3)
NAME_TABLE = "StructuredToParameterName@@"

_ALLOWED_BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool", "str",
                     "bytes", "bytearray"}
_NUMPY_FUNCTIONS = {("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer")}
_LEGACY_GENERATOR_STATE = {("paddle.base.libpaddle", "GeneratorState"),
                           ("paddle.fluid.libpaddle", "GeneratorState"),
                           ("paddle.fluid.core_avx", "GeneratorState")}


class WeightsFileError(ValueError):
    """A weights/checkpoint file that cannot be used; the message names the file and what to do."""


class UnsafeWeightsFileError(WeightsFileError):
    """The file asks for a global outside the allowed list: it was refused before anything ran."""


class LegacyGeneratorState:
    """Inert stand-in for Paddle's pickled `GeneratorState`: keeps the pickled values, runs nothing."""

    def __init__(self) -> None:
        self.values: tuple = ()

    def __setstate__(self, state) -> None:
        if not (isinstance(state, tuple) and len(state) == 4 and all(isinstance(v, int) for v in state[:3])
                and isinstance(state[3], list) and all(isinstance(b, int) for b in state[3])):
            raise pickle.UnpicklingError("GeneratorState with an unexpected layout")
        self.values = state


def _latin1_encode(text, encoding="latin1"):
    # Protocol-2 pickles written by Python 3 encode bytes as _codecs.encode(text, "latin1").
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with codec {encoding!r}")
    return text.encode("latin1")


def _allowed_global(module: str, name: str):
    """The object `module.name` stands for, or None when it is not allowed."""
    if module == "builtins" and name in _ALLOWED_BUILTINS:
        return getattr(__import__("builtins"), name)
    if module == "collections" and name == "OrderedDict":
        return collections.OrderedDict
    if module == "_codecs" and name == "encode":
        return _latin1_encode
    if module == "numpy" and name in ("ndarray", "dtype"):
        return getattr(np, name)
    core, _, submodule = module.rpartition(".")
    if core in ("numpy.core", "numpy._core") and (submodule, name) in _NUMPY_FUNCTIONS:
        import importlib

        for candidate in ("numpy._core", "numpy.core"):  # numpy 1.x writes numpy.core, 2.x numpy._core
            try:
                return getattr(importlib.import_module(f"{candidate}.{submodule}"), name)
            except (ImportError, AttributeError):
                continue
    if (module, name) in _LEGACY_GENERATOR_STATE:
        return LegacyGeneratorState
    return None


class RestrictedUnpickler(pickle.Unpickler):
    """A pickle.Unpickler whose `find_class` only resolves the globals listed in this module's docstring."""

    def __init__(self, file: Any, path: str = "<memory>") -> None:
        super().__init__(file, encoding="latin1")  # latin1: what paddle.load uses for Python 2 era files
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        """The allowed global `module.name`; UnsafeWeightsFileError for anything else."""
        found = _allowed_global(module, name)
        if found is None:
            raise UnsafeWeightsFileError(
                f"refused to load {self.path}: it asks for {module}.{name}, which no Paddle weights, optimizer "
                f"or ppcls_lite checkpoint file needs; unpickling it could run code on this machine. Nothing "
                f"from the file was executed. Get the file again from a source you trust, or ask its author "
                f"for a .safetensors copy (tools/export_model.py --safetensors).")
        return found

    def persistent_load(self, pid: Any) -> Any:
        """Always refused: Paddle files never use persistent ids."""
        raise UnsafeWeightsFileError(f"refused to load {self.path}: it uses pickle persistent ids ({pid!r}), "
                                     f"which Paddle files never do")


def restricted_unpickle(data: bytes | io.BufferedIOBase, path: str = "<memory>") -> Any:
    """Unpickle `data` (bytes or a binary file) with `RestrictedUnpickler`; raw result, no Paddle conversion."""
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    return RestrictedUnpickler(stream, path).load()


def restricted_load(path: str | os.PathLike, return_numpy: bool = True) -> Any:
    """Read a `paddle.save` file safely; returns what `paddle.load(path, return_numpy=return_numpy)` would.

    Raises FileNotFoundError, UnsafeWeightsFileError (a refused global; nothing ran) or WeightsFileError (a
    truncated, corrupt or non-pickle file), each naming `path`.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist")
    try:
        with open(path, "rb") as f:
            obj = restricted_unpickle(f, path)
    except UnsafeWeightsFileError:
        raise
    except Exception as err:  # EOFError, UnpicklingError, ValueError, ... from a truncated or foreign file
        raise WeightsFileError(f"cannot read {path} ({type(err).__name__}: {err}); it is truncated, corrupt or "
                               f"not a file written by paddle.save - re-download or re-save it") from err
    return _as_paddle_load_returns(obj, return_numpy)


def _as_paddle_load_returns(obj, return_numpy):
    """Apply paddle.load's post-processing of an unpickled object (see the module docstring)."""
    if isinstance(obj, dict):
        obj = _join_big_params(obj)
        if NAME_TABLE in obj:  # paddle 2.0 state dicts: only the named entries become tensors
            for key in obj[NAME_TABLE]:
                if isinstance(obj.get(key), np.ndarray):
                    obj[key] = _convert_array(obj[key], return_numpy)
            del obj[NAME_TABLE]
            return obj
    if _contains(obj, _is_named_array):
        return _walk(obj, _is_named_array, lambda pair: _convert_array(pair[1], return_numpy))
    if return_numpy:
        return obj
    return _walk(obj, lambda x: isinstance(x, np.ndarray), lambda a: _convert_array(a, False))


def _join_big_params(state):
    info = state.get(BIG_PARAM_INFO)
    if not isinstance(info, dict):
        return state
    for key, parts in info.items():
        state[key] = np.concatenate([state.pop(part) for part in parts["slices"]]).reshape(parts["OriginShape"])
    del state[BIG_PARAM_INFO]
    return state


def _is_named_array(obj):
    return isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], str) and isinstance(obj[1], np.ndarray)


def _contains(obj, predicate):
    if predicate(obj):
        return True
    if isinstance(obj, dict):
        return any(_contains(v, predicate) for v in obj.values())
    if isinstance(obj, (list, tuple, set)):
        return any(_contains(v, predicate) for v in obj)
    return False


def _walk(obj, predicate, convert):
    if predicate(obj):
        return convert(obj)
    if type(obj) in (dict, collections.OrderedDict):
        for key in list(obj):
            obj[key] = _walk(obj[key], predicate, convert)
        return obj
    if type(obj) in (list, tuple, set):
        return type(obj)(_walk(v, predicate, convert) for v in obj)
    return obj


def _convert_array(array, return_numpy):
    if return_numpy:
        return array
    import paddle

    return paddle.to_tensor(array)
