"""Top-k post-processing, per-input failures and result files, shared by tools/infer.py and the predictor.

A result is `{"file_name", "class_ids", "scores", "label_names"}` (PaddleClas's keys). CSV files have the
header `file_name,class_ids,scores,label_names` with lists joined by spaces; JSON lines carry the same keys.
A retrieval model's result is `{"file_name", "features"}` (pipeline/features.py): CSV `file_name,features`.
"""
import csv
import errno
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

RESULT_KEYS = ("file_name", "class_ids", "scores", "label_names")
FEATURE_RESULT_KEYS = ("file_name", "features")
SCORE_DECIMALS = 5
OUTPUT_SUFFIXES = (".csv", ".jsonl", ".json")
# Exit status of tools/infer.py and the predictor when some inputs could not be predicted.
EXIT_SOME_FAILED = 3


class NonFiniteOutputError(ValueError):
    """The model returned NaN or infinite scores."""


class ResultWriteError(OSError, ValueError):
    """The result file could not be written; the message names the path and the reason (a ValueError too, so
    the command-line tools report it as a one-line user error)."""


def softmax(logits: np.ndarray) -> np.ndarray:
    """Logits [N, C] -> probabilities, in float32 (for models exported with `output: logits`)."""
    logits = np.asarray(logits, dtype=np.float32)
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def topk_results(probs: np.ndarray, files: Sequence[str], topk: int = 1,
                 label_names: Optional[Sequence[str]] = None) -> List[Dict[str, Any]]:
    """Probabilities [N, C] and N file names -> result dicts, classes by decreasing score. Ties rank the higher
    class id first, as PaddleClas's Topk does (it reverses an ascending argsort), so the two agree id for id."""
    probs = np.asarray(probs)
    k = min(int(topk), probs.shape[-1])
    results = []
    for file, row in zip(files, probs):
        ids = np.argsort(row, kind="stable")[::-1][:k]
        results.append({
            "file_name": str(file),
            "class_ids": [int(i) for i in ids],
            "scores": [round(float(row[i]), SCORE_DECIMALS) for i in ids],
            "label_names": ([label_names[i] if i < len(label_names) else "" for i in ids] if label_names else []),
        })
    return results


def split_finite(probs: np.ndarray, files: Sequence[str]) -> Tuple[np.ndarray, List[str], List[Tuple[str, str]]]:
    """(finite rows, their files, [(file, reason)] for rows with NaN/inf scores)."""
    probs = np.asarray(probs)
    ok = np.isfinite(probs).all(axis=-1)
    bad = [(str(f), "the model returned non-finite scores (NaN/inf); the model files may be damaged, re-export "
                    "them") for f, good in zip(files, ok) if not good]
    return probs[ok], [f for f, good in zip(files, ok) if good], bad


def _write_error(output, code, detail="") -> "ResultWriteError":
    error = ResultWriteError(f"cannot write {output}: {os.strerror(code)} [{errno.errorcode.get(code, code)}]{detail}")
    error.errno = code
    return error


def check_output_path(output: Union[str, Path]) -> str:
    """The suffix of a result file name (a ValueError saying what to use otherwise); checked before any work is
    done: the nearest existing path above it must be a folder. (Permissions and free space show when writing.)"""
    output = Path(str(output))
    suffix = output.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise ValueError(f"--output {output}: use a .csv or .jsonl file name")
    parent = output.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise _write_error(output, errno.ENOTDIR, f" ({parent} is a file, not a folder)")
    return suffix


def result_keys(result: Dict[str, Any]) -> Tuple[str, ...]:
    """The keys (CSV columns) of a result: a classification's, or an embedding's (`features`)."""
    return FEATURE_RESULT_KEYS if "features" in result else RESULT_KEYS


def format_row(result: Dict[str, Any]) -> Dict[str, str]:
    """A result dict -> CSV cells (lists joined by spaces)."""
    return {key: " ".join(str(v) for v in result[key]) if isinstance(result[key], (list, tuple)) else result[key]
            for key in result_keys(result)}


def format_line(result: Dict[str, Any]) -> str:
    """One line for the terminal: the result as JSON."""
    return json.dumps({key: result[key] for key in result_keys(result)}, ensure_ascii=False)


def write_results(results: Sequence[Dict[str, Any]], output: Union[str, Path]) -> None:
    """Write FILE.csv or FILE.jsonl through a temporary file (an existing file is replaced only when complete).

    Any OS error (unwritable folder, disk full) becomes a ResultWriteError naming the path and the reason."""
    output = Path(str(output))
    suffix = check_output_path(output)
    tmp = output.with_name(output.name + ".tmp")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            if suffix == ".csv":
                writer = csv.DictWriter(f, fieldnames=result_keys(results[0]) if results else RESULT_KEYS)
                writer.writeheader()
                for result in results:
                    writer.writerow(format_row(result))
            else:
                for result in results:
                    f.write(format_line(result) + "\n")
        os.replace(tmp, output)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if not exc.errno:
            raise ResultWriteError(f"cannot write {output}: {exc}") from None
        raise _write_error(output, exc.errno) from None
