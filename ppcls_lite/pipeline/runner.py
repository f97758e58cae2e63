"""The prediction loop shared by tools/infer.py and the predictor: read and preprocess each input, batch,
run the model, drop non-finite outputs, top-k. A failing input is reported by path and reason; the others
are still predicted."""
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .inputs import read_image_file
from .results import split_finite

# What an unreadable input may raise: missing file, not a regular file, undecodable data or over the pixel limit
# (ValueErrors), cv2 rejecting a degenerate image, memory running out for one image.
READ_ERRORS = (OSError, ValueError, cv2.error, MemoryError)


def load_file(path: str, ops: Sequence[Callable[[Any], Any]], finish: Optional[Callable[[Any], Any]] = None) -> Any:
    """Read one file (a regular file within the pixel limit, see inputs.read_image_file) and run `ops` on its
    bytes (and `finish` on the result, e.g. to CHW float32)."""
    data = read_image_file(path)
    for op in ops:
        data = op(data)
    return finish(data) if finish else data


def load_each(paths: Iterable[str], load: Callable[[str], Any]) -> Iterator[Tuple[str, Any]]:
    """Yield (path, loaded value or the exception that reading it raised), in order."""
    for path in paths:
        try:
            yield path, load(path)
        except READ_ERRORS as exc:
            yield path, exc


def failure_reason(exc: BaseException) -> str:
    """Why an input could not be predicted, in words (a missing file, an OS error, a decode error's message)."""
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if getattr(exc, "reason", None) and isinstance(exc, ValueError):  # NotAFileError: the path is named already
        return exc.reason
    if isinstance(exc, MemoryError):
        return "not enough memory to read and preprocess it"
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot read the file ({exc.strerror})"
    return str(exc) or type(exc).__name__


def format_failure(path: str, reason: str) -> str:
    """The stderr line for one input that could not be predicted."""
    return f"cannot predict {path}: {reason}"


def format_summary(failures: Sequence[Tuple[str, str]], total: int) -> str:
    """The closing stderr line: how many of the inputs could not be predicted."""
    return (f"{len(failures)} of {total} inputs could not be predicted (listed above as 'cannot predict'); "
            f"the others were predicted")


def predict_loaded(loaded: Iterable[Tuple[str, Any]], predict_batch: Callable[[List[np.ndarray]], np.ndarray],
                   postprocess: Callable[[np.ndarray, List[str]], List[Dict[str, Any]]], batch_size: int,
                   on_result: Optional[Callable[[Dict[str, Any]], None]] = None,
                   on_failure: Optional[Callable[[str, str], None]] = None) -> List[Dict[str, Any]]:
    """`loaded` yields (path, tensor or exception); `predict_batch(tensors)` -> probabilities [N, C];
    `postprocess(probs, files)` -> result dicts. Returns (results, failures [(path, reason)])."""
    results, failures = [], []
    tensors, files = [], []

    def fail(path, reason):
        failures.append((str(path), reason))
        if on_failure:
            on_failure(str(path), reason)

    def flush():
        probs, good_files, bad = split_finite(predict_batch(tensors), files)
        for path, reason in bad:
            fail(path, reason)
        batch_results = postprocess(probs, good_files) if good_files else []
        for result in batch_results:
            if on_result:
                on_result(result)
        results.extend(batch_results)

    for path, item in loaded:
        if isinstance(item, BaseException):
            fail(path, failure_reason(item))
            continue
        tensors.append(item)
        files.append(str(path))
        if len(tensors) == batch_size:
            flush()
            tensors, files = [], []
    if tensors:
        flush()
    return results, failures


def stack_batch(tensors: Sequence[np.ndarray], input_shape: Optional[Sequence[int]] = None) -> np.ndarray:
    """CHW tensors -> one contiguous float32 batch (the single copy per image; none for a batch of one that is
    already contiguous float32)."""
    shape = tuple(input_shape) if input_shape else tensors[0].shape
    if len(tensors) == 1:
        single = tensors[0]
        if single.dtype == np.float32 and single.flags.c_contiguous and single.shape == shape:
            return single[None]
    batch = np.empty((len(tensors), *shape), dtype=np.float32)
    for i, tensor in enumerate(tensors):
        batch[i] = tensor
    return batch
