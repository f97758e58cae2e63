"""Export a trained model for deployment: Paddle inference model + self-contained `inference.yml` (+ ONNX).

The exported directory is everything `deploy/python/predict_cls.py` needs; see docs/DEPLOY.md.
"""
from .exporter import (INFERENCE_OPS, ExportError, build_inference_config, export_from_config, export_model,
                       export_onnx, input_size_from_transforms, normalize_transform_ops, run_paddle_inference,
                       verify_onnx, write_checksums)

__all__ = ["INFERENCE_OPS", "ExportError", "build_inference_config", "export_from_config", "export_model",
           "export_onnx", "input_size_from_transforms", "normalize_transform_ops", "run_paddle_inference",
           "verify_onnx", "write_checksums"]
