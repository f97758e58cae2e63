"""Image transforms built from PaddleClas-style op lists, e.g.
`[{DecodeImage: {to_rgb: True}}, {ResizeImage: {resize_short: 256}}, {CropImage: {size: 224}}, ...]`."""
from .autoaugment import AutoAugment
from .batch_ops import CutmixOperator, MixupOperator, OpSampler, create_batch_operators
from .ops import (ColorJitter, CropImage, DecodeImage, ImageDecodeError, NormalizeImage, RandCropImage,
                  RandFlipImage, RandomErasing, ResizeImage, ToCHWImage, parse_scale)

OPERATORS = {
    cls.__name__: cls
    for cls in (DecodeImage, ResizeImage, CropImage, RandCropImage, RandFlipImage, NormalizeImage, ToCHWImage,
                ColorJitter, AutoAugment, RandomErasing)
}


def create_operators(op_list):
    """List of one-key dicts `{OpName: {param: value}}` (params may be None) -> list of callables."""
    if op_list is None:
        return []
    if not isinstance(op_list, (list, tuple)):
        raise ValueError(f"transform_ops must be a list of {{OpName: params}} entries, got {type(op_list).__name__}")
    ops = []
    for i, entry in enumerate(op_list):
        if isinstance(entry, str):  # `- ToCHWImage` written without a colon
            entry = {entry: None}
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ValueError(f"transform op #{i} must be a one-key dict like {{ResizeImage: {{resize_short: 256}}}}, "
                             f"got {entry!r}")
        (name, params), = entry.items()
        if name not in OPERATORS:
            raise ValueError(f"unknown transform op {name!r} (entry #{i}); valid ops: {sorted(OPERATORS)}")
        try:
            ops.append(OPERATORS[name](**dict(params or {})))
        except TypeError as exc:
            raise ValueError(f"bad parameters for transform op {name} (entry #{i}): {exc}") from None
    return ops


def transform(data, ops):
    """Apply ops in order."""
    for op in ops or []:
        data = op(data)
    return data


__all__ = ["OPERATORS", "create_operators", "transform", "create_batch_operators", "ImageDecodeError",
           "parse_scale", "MixupOperator", "CutmixOperator", "OpSampler"] + list(OPERATORS)
