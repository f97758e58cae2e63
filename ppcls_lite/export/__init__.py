"""Export a trained model for deployment: Paddle inference model + self-contained `inference.yml` (+ ONNX,
reduced-precision and MNN variants, --verify). The exported folder is everything
deploy/python/predict_cls.py needs; see docs/DEPLOY.md.

Modules, each importing only those before it:
    folder (file names, inference.yml, checksums, ExportError)
    <- inference_yml, paddle_model, onnx_tools, mnn (format writers), bundle (the predictor's code),
       samples (calibration / verification images)
    <- ownership (which files of a folder are ours) <- staging (lock, build beside, switch in whole)
    <- quantize <- variants (fp16/int8, MNN, uint8-input files) <- verify (ONNX check, --verify)
    <- exporter (export_model, export_from_config: the command tools/export_model.py runs).
"""
from .exporter import export_from_config, export_model
from .folder import ExportError, read_inference_config, write_checksums
from .staging import ExportRejected, ForeignFilesError, StagedExport
from .inference_yml import INFERENCE_OPS, build_inference_config, input_size_from_transforms, normalize_transform_ops
from .onnx_tools import export_onnx
from .paddle_model import run_paddle_inference
from .verify import verify_onnx

__all__ = ["INFERENCE_OPS", "ExportError", "ExportRejected", "ForeignFilesError", "StagedExport",
           "build_inference_config", "export_from_config", "export_model",
           "export_onnx", "input_size_from_transforms", "normalize_transform_ops", "read_inference_config",
           "run_paddle_inference", "verify_onnx", "write_checksums"]
