"""Image transforms built from PaddleClas-style op lists, e.g.
`[{DecodeImage: {to_rgb: True}}, {ResizeImage: {resize_short: 256}}, {CropImage: {size: 224}}, ...]`.

The deterministic ops come from ppcls_lite.pipeline (shared with infer, export and the deploy predictor);
the random training ops are defined here on the same base."""
from typing import Optional

from ppcls_lite.pipeline import create_operators as _create, transform
from ppcls_lite.utils.config_rules import (POSITIVE, PROBABILITY, SIZE, check_each, check_keys_of, check_size, is_real,
                                           to_number)

from .autoaugment import AutoAugment
from .batch_ops import CutmixOperator, MixupOperator, OpSampler, create_batch_operators
# OPERATORS: the pipeline's inference ops plus the random training ops registered in ops.py, autoaugment.py
# and randaugment.py.
from .ops import (OPERATORS, ColorJitter, CropImage, DecodeImage, ImageDecodeError, NormalizeImage, RandCropImage,
                  RandFlipImage, RandomErasing, RandomOperator, ResizeImage, ToCHWImage, parse_scale)
from .randaugment import TimmAutoAugment


def create_operators(op_list: Optional[list], what: str = "transform_ops") -> list:
    """List of one-key dicts `{OpName: {param: value}}` (params may be None) -> list of op objects."""
    return _create(op_list, OPERATORS, what)


# {op name: {param: rule}} for transform and batch ops (checked when the config loads).
OP_VALUE_RULES = {
    "RandCropImage": {"size": SIZE},
    "RandomResizedCrop": {"size": SIZE},
    "CropImage": {"size": SIZE},
    "ResizeImage": {"size": SIZE, "resize_short": SIZE},
    "MixupOperator": {"alpha": POSITIVE},
    "CutmixOperator": {"alpha": POSITIVE},
    "RandomErasing": {"EPSILON": PROBABILITY},
    "TimmAutoAugment": {"img_size": SIZE, "prob": PROBABILITY},
}


def check_range_pair(problems: list, params: dict, key: str, where: str, upper: Optional[float]) -> None:
    """RandCropImage scale/ratio: [low, high] with 0 < low <= high (<= upper when given)."""
    value = params.get(key)
    if value is None:
        return
    pair = [to_number(v) for v in value] if isinstance(value, (list, tuple)) else []
    if not (len(pair) == 2 and all(is_real(v) for v in pair) and 0 < pair[0] <= pair[1]
            and (upper is None or pair[1] <= upper)):
        bound = f" <= {upper}" if upper is not None else ""
        problems.append(f"{where}.{key} must be a list [low, high] with 0 < low <= high{bound}, got {value!r}")


def check_normalize(problems: list, params: dict, where: str) -> None:
    """NormalizeImage mean/std: three numbers each (one per RGB channel), every std > 0 (a 0 divides by zero)."""
    for key in ("mean", "std"):
        values = params.get(key)
        if values is None:
            continue
        if not (isinstance(values, (list, tuple)) and len(values) == 3):
            problems.append(f"{where}.{key} must be a list of 3 numbers (one per channel), got {values!r}")
        elif key == "std":
            check_each(problems, values, POSITIVE, f"{where}.std")
        else:
            check_each(problems, values, (is_real, "a number"), f"{where}.mean")


def check_op_item(problems: list, name: str, params: dict, where: str) -> None:
    """Append a message for each parameter of one op (an item of an op list, at `where`) out of its range."""
    if name == "OpSampler":  # {OpSampler: {MixupOperator: {alpha, prob}, ...}}: check each inner op
        for inner, inner_params in params.items():
            rules = {**OP_VALUE_RULES.get(inner, {}), "prob": PROBABILITY}
            check_keys_of(problems, inner_params, rules, f"{where}.{inner}")
        return
    for key, rule in OP_VALUE_RULES.get(name, {}).items():
        if rule is SIZE:
            check_size(problems, params.get(key), f"{where}.{key}")
        else:
            check_keys_of(problems, params, {key: rule}, where)
    if name in ("RandCropImage", "RandomResizedCrop"):
        check_range_pair(problems, params, "scale", where, upper=1)
        check_range_pair(problems, params, "ratio", where, upper=None)
    if name == "NormalizeImage":
        check_normalize(problems, params, where)


__all__ = ["OPERATORS", "create_operators", "transform", "create_batch_operators", "ImageDecodeError",
           "parse_scale", "check_op_item", "MixupOperator", "CutmixOperator", "OpSampler", "RandomOperator"] + list(OPERATORS)
