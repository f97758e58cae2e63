"""The deployed predictor: runs a model exported by tools/export_model.py on images, from the export folder alone.

Imports nothing of ppcls_lite but the image pipeline (numpy, OpenCV, pyyaml and one backend: Paddle Inference,
onnxruntime or MNN), so tools/export_model.py copies this package with `pipeline/` into every export folder and
`predict_cls.py` there runs without paddle (except for its backend) or an installed ppcls_lite.

    settings      PredictorSettings: backend, device, threads, precision, batching (every default, once)
    model_dir     inference.yml, which model file a backend runs at a precision, checksums, preprocessing ops
                  (and PaddleClas's export folders)
    deploy_config PaddleClas's deploy config (-c inference_cls.yaml -o Global.KEY=VALUE) and output lines
    backends      PaddleBackend, OnnxRuntimeBackend, MnnBackend (BACKENDS), open_backend
    postprocess   model outputs -> result dicts (Topk, Embedding; POSTPROCESSES)
    predictor     Predictor: preprocess, batch, infer, post-process, report unreadable inputs
    search        image search with a retrieval export: GalleryIndex (build, save, load, search), search_files
    cli           the command line of deploy/python/predict_cls.py (parse_args, runtime_settings, main, run)
"""
from ..pipeline import EXIT_SOME_FAILED, READ_ERRORS, format_row, softmax, write_results
from .backends import BACKENDS, MnnBackend, OnnxRuntimeBackend, PaddleBackend, open_backend
from .cli import build_parser, main, parse_args, run, runtime_settings
from .model_dir import (INFERENCE_YML, build_preprocess, load_inference_config, model_variant_file,
                        verify_model_files)
from .postprocess import POSTPROCESSES, build_postprocess
from ..pipeline import Topk
from .predictor import ImageReadError, Predictor, collect_inputs
from .search import GalleryIndex, build_index, search_files
from .settings import PRECISIONS, PredictorSettings, default_threads

__all__ = ["BACKENDS", "EXIT_SOME_FAILED", "INFERENCE_YML", "ImageReadError", "MnnBackend", "OnnxRuntimeBackend",
           "POSTPROCESSES", "PRECISIONS", "PaddleBackend", "Predictor", "PredictorSettings", "READ_ERRORS", "Topk",
           "build_parser", "build_postprocess", "build_preprocess", "collect_inputs", "default_threads",
           "format_row", "GalleryIndex", "build_index", "search_files", "load_inference_config", "main", "model_variant_file", "open_backend", "parse_args", "run",
           "runtime_settings", "softmax", "verify_model_files", "write_results"]
