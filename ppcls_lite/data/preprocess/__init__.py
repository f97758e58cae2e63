"""Image transforms built from PaddleClas-style op lists, e.g.
`[{DecodeImage: {to_rgb: True}}, {ResizeImage: {resize_short: 256}}, {CropImage: {size: 224}}, ...]`.

The deterministic ops come from ppcls_lite.pipeline (shared with infer, export and the deploy predictor);
the random training ops are defined here on the same base."""
from typing import Optional

from ppcls_lite.pipeline import create_operators as _create, transform

from .autoaugment import AutoAugment
from .batch_ops import CutmixOperator, MixupOperator, OpSampler, create_batch_operators
# OPERATORS: the pipeline's inference ops plus the random training ops registered in ops.py / autoaugment.py.
from .ops import (OPERATORS, ColorJitter, CropImage, DecodeImage, ImageDecodeError, NormalizeImage, RandCropImage,
                  RandFlipImage, RandomErasing, RandomOperator, ResizeImage, ToCHWImage, parse_scale)


def create_operators(op_list: Optional[list], what: str = "transform_ops") -> list:
    """List of one-key dicts `{OpName: {param: value}}` (params may be None) -> list of op objects."""
    return _create(op_list, OPERATORS, what)


__all__ = ["OPERATORS", "create_operators", "transform", "create_batch_operators", "ImageDecodeError",
           "parse_scale", "MixupOperator", "CutmixOperator", "OpSampler", "RandomOperator"] + list(OPERATORS)
