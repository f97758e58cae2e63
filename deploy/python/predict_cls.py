"""Standalone image classification with an exported model (tools/export_model.py output).

    python deploy/python/predict_cls.py --model_dir DIR --input IMG|DIR|LIST \
        [--backend paddle|onnxruntime|mnn] [--batch_size N] [--topk K] [--threads N] [--output FILE.csv|FILE.jsonl]

or PaddleClas's command line, as it is (from the repository root or from deploy/; docs/MIGRATING.md):

    cd deploy && python python/predict_cls.py -c configs/inference_cls.yaml \
        -o Global.inference_model_dir=DIR -o Global.infer_imgs=IMG -o Global.use_gpu=False

Needs numpy, opencv-python, pyyaml and one backend (paddlepaddle's Paddle Inference, onnxruntime or MNN);
Pillow only for models exported with `backend: pil` ops. The code is `ppcls_lite.predict` and the image pipeline
it uses (`ppcls_lite.pipeline`), taken from `ppcls_lite/` beside this script (the copy tools/export_model.py puts
into every export folder with this script: `python DIR/predict_cls.py --model_dir DIR ...`), else from the
checkout this script is in, else from an installed ppcls_lite. Nothing else of ppcls_lite, and no paddle unless
the paddle backend runs. See docs/DEPLOY.md.

As a library (with this script's folder on sys.path):

    from predict_cls import Predictor
    predictor = Predictor("inference/", backend="onnxruntime", batch_size=8)
    results = predictor.predict_files(["a.jpg", "b.png"])  # [{"file_name", "class_ids", "scores", "label_names"}]
    predictor.failures                                      # [(file, reason)] of inputs that could not be predicted

Exit status: 0 all inputs predicted, 3 some inputs could not be read (each named on stderr; the others are
predicted and written), 1 a usage or model error (one line on stderr; PPCLS_DEBUG=1 for the traceback).
"""
import os
import sys


def _code_root() -> str:
    """The folder holding the `ppcls_lite/` to run: this script's (an export folder) or its checkout's."""
    here = os.path.dirname(os.path.abspath(__file__))
    for root in (here, os.path.dirname(os.path.dirname(here))):
        if os.path.isfile(os.path.join(root, "ppcls_lite", "predict", "__init__.py")):
            return root
    return ""  # neither: an installed ppcls_lite


_ROOT = _code_root()
if _ROOT and sys.path[:1] != [_ROOT]:
    sys.path.insert(0, _ROOT)  # a script may choose where its code comes from (the library never does)

from ppcls_lite import pipeline  # noqa: E402
from ppcls_lite.predict import (BACKENDS, EXIT_SOME_FAILED, PRECISIONS, READ_ERRORS, ImageReadError,  # noqa: E402
                                MnnBackend, OnnxRuntimeBackend, PaddleBackend, Predictor, PredictorSettings,
                                build_preprocess, collect_inputs, load_inference_config, main, model_variant_file,
                                parse_args, run, runtime_settings, softmax, write_results)

__all__ = ["BACKENDS", "EXIT_SOME_FAILED", "PRECISIONS", "READ_ERRORS", "ImageReadError", "MnnBackend",
           "OnnxRuntimeBackend", "PaddleBackend", "Predictor", "PredictorSettings", "build_preprocess",
           "collect_inputs", "load_inference_config", "main", "model_variant_file", "parse_args", "pipeline", "run",
           "runtime_settings", "softmax", "write_results"]

if __name__ == "__main__":
    sys.exit(run(main))
