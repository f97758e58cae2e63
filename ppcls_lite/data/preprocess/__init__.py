"""Image transforms built from PaddleClas-style op lists, e.g.
`[{DecodeImage: {to_rgb: True}}, {ResizeImage: {resize_short: 256}}, {CropImage: {size: 224}}, ...]`.

The deterministic ops come from ppcls_lite.pipeline (shared with infer, export and the deploy predictor);
the random training ops are defined here on the same base."""
from ppcls_lite.pipeline import INFERENCE_OPERATORS, create_operators as _create, transform

from .autoaugment import AutoAugment
from .batch_ops import CutmixOperator, MixupOperator, OpSampler, create_batch_operators
from .ops import (ColorJitter, CropImage, DecodeImage, ImageDecodeError, NormalizeImage, RandCropImage,
                  RandFlipImage, RandomErasing, RandomOperator, ResizeImage, ToCHWImage, parse_scale)

OPERATORS = {**INFERENCE_OPERATORS,
             **{cls.__name__: cls for cls in (RandCropImage, RandFlipImage, ColorJitter, AutoAugment, RandomErasing)}}


def create_operators(op_list, what="transform_ops"):
    """List of one-key dicts `{OpName: {param: value}}` (params may be None) -> list of op objects."""
    return _create(op_list, OPERATORS, what)


__all__ = ["OPERATORS", "create_operators", "transform", "create_batch_operators", "ImageDecodeError",
           "parse_scale", "MixupOperator", "CutmixOperator", "OpSampler", "RandomOperator"] + list(OPERATORS)
