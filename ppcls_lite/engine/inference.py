"""tools/infer.py's work: classify Infer.infer_imgs with the trained model through the shared image pipeline.

Inputs are one image, a folder searched recursively, or a `path [label]` list file (`ppcls_lite.pipeline`
reads and preprocesses them exactly as the exported predictor does). One JSON line per image goes to stdout;
an input that cannot be read is reported on stderr with its path and reason and the others are still predicted.
"""
import sys
from typing import Any, Callable, List, Optional, Tuple

import numpy as np
import paddle
import paddle.nn.functional as F

from ppcls_lite import pipeline
from ppcls_lite.arch.outputs import logits_of
from ppcls_lite.utils import logger


def collect_infer_inputs(infer_imgs: Optional[str], encoding: Optional[str] = None) -> List[str]:
    """Files for Infer.infer_imgs: one image, a folder (recursive, image extensions, sorted) or a list file
    (`path [label]` per line, paths relative to the list file's folder, read with Infer.encoding)."""
    return pipeline.collect_inputs(infer_imgs, what="Infer.infer_imgs", encoding=encoding,
                                   encoding_key="Infer.encoding")


def write_predictions(results: List[dict], output: str) -> None:
    """Write predictions as CSV (lists joined by spaces) or JSON lines, chosen by the file extension."""
    pipeline.write_results(results, output)


@paddle.no_grad()
def predict_images(model: paddle.nn.Layer, infer_ops: list, postprocess: Callable, infer_imgs: Optional[str],
                   batch_size: int, autocast: Callable[[], Any], output: Optional[str] = None,
                   weights_loaded: bool = True, encoding: Optional[str] = None,
                   features: bool = False) -> Tuple[List[dict], list]:
    """Classify every input; returns (results, failures). Results are {"file_name", "class_ids", "scores"
    (softmax probabilities), "label_names"}; `output` (.csv or .jsonl) gets them too. With `features` (a
    retrieval model) the post-process receives the model's raw `features` output instead of probabilities."""
    if output:
        pipeline.check_output_path(output)
    if not weights_loaded:
        logger.warning("no weights loaded (Global.pretrained_model is not set): predictions are random")
    files = collect_infer_inputs(infer_imgs, encoding)
    model.eval()

    def probabilities(tensors) -> np.ndarray:
        with autocast():
            out = model(paddle.to_tensor(pipeline.stack_batch(tensors)))
        if features:
            return out["features"].astype("float32").numpy()
        return F.softmax(logits_of(out).astype("float32"), axis=-1).numpy()

    loaded = pipeline.load_each(files, lambda p: pipeline.load_file(p, infer_ops, pipeline.to_chw_float32))
    results, failures = pipeline.predict_loaded(
        loaded, probabilities, postprocess, max(int(batch_size or 1), 1),
        on_result=lambda r: print(pipeline.format_line(r), flush=True),
        on_failure=lambda path, reason: print(pipeline.format_failure(path, reason), file=sys.stderr, flush=True))
    if output:
        write_predictions(results, output)
        logger.info(f"wrote {len(results)} predictions to {output}")
    if failures:
        print(pipeline.format_summary(failures, len(files)), file=sys.stderr, flush=True)
    return results, failures
