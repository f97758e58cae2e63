"""The prediction loop shared by tools/infer.py and the predictor: read and preprocess each input, batch,
run the model, drop non-finite outputs, top-k. A failing input is reported by path and reason; the others
are still predicted."""
import cv2
import numpy as np

from .results import split_finite

# What an unreadable input may raise: missing file, undecodable data, cv2 rejecting a degenerate image.
READ_ERRORS = (OSError, ValueError, cv2.error)


def load_file(path, ops, finish=None):
    """Read one file and run `ops` on its bytes (and `finish` on the result, e.g. to CHW float32)."""
    with open(path, "rb") as f:
        data = f.read()
    for op in ops:
        data = op(data)
    return finish(data) if finish else data


def load_each(paths, load):
    """Yield (path, loaded value or the exception that reading it raised), in order."""
    for path in paths:
        try:
            yield path, load(path)
        except READ_ERRORS as exc:
            yield path, exc


def failure_reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot read the file ({exc.strerror})"
    return str(exc) or type(exc).__name__


def format_failure(path, reason) -> str:
    return f"cannot predict {path}: {reason}"


def format_summary(failures, total) -> str:
    return (f"{len(failures)} of {total} inputs could not be predicted (listed above as 'cannot predict'); "
            f"the others were predicted")


def predict_loaded(loaded, predict_batch, postprocess, batch_size, on_result=None, on_failure=None):
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


def stack_batch(tensors, input_shape=None) -> np.ndarray:
    """CHW tensors -> one contiguous float32 batch (the single copy per image)."""
    shape = tuple(input_shape) if input_shape else tensors[0].shape
    batch = np.empty((len(tensors), *shape), dtype=np.float32)
    for i, tensor in enumerate(tensors):
        batch[i] = tensor
    return batch
