"""The deterministic (inference) image ops with PaddleClas names and parameters, and the base they share with
the random training ops of ppcls_lite.data.preprocess.

Convention: every op takes and returns a numpy array. Until NormalizeImage the array is HWC uint8 (RGB when
DecodeImage has `to_rgb: True`); NormalizeImage returns float32 in the same layout; ToCHWImage transposes.
`backend: pil` chooses Pillow for decoding/resampling (PaddleClas's PIL-based recipes); the array
convention stays the same so ops can be mixed freely.

Each op describes itself for inference.yml with `inference_params()`: every parameter spelled out, so an
exported directory does not depend on the defaults of the code that reads it.
"""
import io
import logging
import numbers
import random
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .decode import DECODE_BACKENDS, check_pixel_limit, decode_image, import_pil, to_rgb3, to_uint8
from .gpu_decode import DEVICES, decode_jpeg_gpu
from .registry import Registry

# Interpolation names accepted by ResizeImage / RandCropImage ('random' picks one of the real ones each call).
# PaddleClas's PIL names 'box' and 'hamming' are accepted too ('box' is what 'area' means for Pillow).
CV2_INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "bicubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
}
PIL_INTERPOLATIONS = {"nearest": "NEAREST", "bilinear": "BILINEAR", "area": "BOX", "box": "BOX",
                      "bicubic": "BICUBIC", "lanczos": "LANCZOS", "hamming": "HAMMING"}
INTERPOLATIONS = tuple(CV2_INTERPOLATIONS)

_logger = logging.getLogger("ppcls_lite.pipeline")


def no_effect_warning(op: str, key: str, value: Any) -> None:
    """One line for a PaddleClas parameter that is accepted but changes nothing here."""
    # A child of the project's "ppcls_lite" logger: its handlers show the line when it is set up; the standalone
    # predictor gets Python's default warning output.
    _logger.warning(f"{op}: {key}={value!r} has no effect here (accepted for PaddleClas configs)")


def check_choice(op: str, key: str, value: Any, choices: Iterable[Any]) -> None:
    """A ValueError naming the op, the key and the valid choices unless `value` is one of them."""
    if value not in choices:
        raise ValueError(f"{op}: {key}={value!r} is not valid; use one of {sorted(choices)}")


def size_pair(op: str, key: str, size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    """An int gives a square (w, h); a list/tuple is taken as [w, h] like PaddleClas."""
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        return int(size), int(size)
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise ValueError(f"{op}: {key} must be an int or [width, height], got {size!r}")


def parse_scale(scale: Union[None, str, float]) -> float:
    """`1.0/255.0`, `0.00392` or a number -> float, without evaluating arbitrary code."""
    if scale is None:
        return 1.0 / 255.0
    if isinstance(scale, numbers.Number):
        return float(scale)
    if isinstance(scale, str):
        parts = scale.replace(" ", "").split("/")
        try:
            if len(parts) == 1:
                return float(parts[0])
            if len(parts) == 2:
                return float(parts[0]) / float(parts[1])
        except (ValueError, ZeroDivisionError):
            pass
    raise ValueError(f"NormalizeImage: scale must be a number or a fraction like '1.0/255.0', got {scale!r}")


class Operator:
    """Base of every image op. `deterministic` ops may be exported; `inference_params()` lists every parameter."""

    deterministic = True

    @property
    def name(self) -> str:
        """The op's registered (PaddleClas) name."""
        return type(self).__name__

    def inference_params(self) -> dict:
        """Every parameter of this op, as plain YAML values, such that `type(self)(**params)` rebuilds it."""
        raise NotImplementedError(f"{self.name} cannot be described for inference.yml")

    def to_config(self) -> dict:
        """`{OpName: inference_params()}`, one entry of inference.yml's transform_ops."""
        return {self.name: self.inference_params()}

    # Ops whose result does not depend on the input's pixel scale (resizes, crops by area fraction) define
    # `large_enough(width, height) -> bool`: whether an input of that size loses nothing they keep. Reduced-size
    # decoding applies only just before such an op (not before a fixed-size crop or a colour op).
    large_enough: Optional[Callable[[int, int], bool]] = None

    def __call__(self, img):
        raise NotImplementedError


class Resizer:
    """Resize an HWC uint8 array with cv2 or Pillow, with a fixed or a random interpolation."""

    def __init__(self, op: str, interpolation: Optional[str] = None, backend: str = "cv2") -> None:
        backend = (backend or "cv2").lower()
        check_choice(op, "backend", backend, DECODE_BACKENDS)
        interpolation = (interpolation or "bilinear").lower()
        names = PIL_INTERPOLATIONS if backend == "pil" else CV2_INTERPOLATIONS
        check_choice(op, "interpolation", interpolation, list(names) + ["random"])
        self.backend = backend
        self.interpolation = interpolation

    def __call__(self, img: np.ndarray, w: int, h: int) -> np.ndarray:
        name = self.interpolation
        if name == "random":
            name = random.choice(sorted(CV2_INTERPOLATIONS))
        if self.backend == "cv2":
            return cv2.resize(img, (w, h), interpolation=CV2_INTERPOLATIONS[name])
        Image, _ = import_pil()
        resample = getattr(Image.Resampling, PIL_INTERPOLATIONS[name])
        return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((w, h), resample))


class DecodeImage(Operator):
    """Bytes (as read from the file) -> HWC uint8 array with 3 channels (see decode.py for the policy).

    `to_rgb` gives RGB order (else BGR), `channel_first` returns CHW. `to_np` is accepted for PaddleClas
    configs (the result is always numpy). A decoded HWC RGB array passes through (only channels are fixed).
    `reduced_decode` (default on): when the next op is a resize or a random resized crop, decode JPEGs at the
    largest 1/2, 1/4 or 1/8 scale that op still finds large enough (decode.py); `create_operators` links the op
    to the one after it (`next_op`). `device: gpu` decodes JPEGs with nvJPEG where the process can (gpu_decode.py;
    elsewhere, as on every CPU run, on the CPU after one note).
    """

    def __init__(self, to_rgb: bool = True, to_np: bool = True, channel_first: bool = False,
                 backend: str = "cv2", reduced_decode: bool = True, device: str = "cpu") -> None:
        check_choice("DecodeImage", "backend", backend, DECODE_BACKENDS)
        check_choice("DecodeImage", "device", device, DEVICES)
        if not to_np:
            no_effect_warning("DecodeImage", "to_np", to_np)
        self.to_rgb = bool(to_rgb)
        self.channel_first = bool(channel_first)
        self.backend = backend
        self.reduced_decode = bool(reduced_decode)
        self.device = device
        self.next_op: Optional[Operator] = None  # the op that decides the reduced size (link_reduced_decode)

    def inference_params(self) -> dict:
        """This op's parameters for inference.yml (see Operator.inference_params)."""
        return {"to_rgb": self.to_rgb, "channel_first": self.channel_first, "backend": self.backend,
                "reduced_decode": self.reduced_decode, "device": self.device}

    def _decode_on_gpu(self, data: bytes) -> Optional[np.ndarray]:
        data = bytes(data)
        check_pixel_limit(io.BytesIO(data))
        rgb = decode_jpeg_gpu(data)
        if rgb is None or self.to_rgb:
            return rgb
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)

    @property
    def size_check(self) -> Optional[Callable[[int, int], bool]]:
        """What the next op needs of the decoded size, when reduced decoding applies (else None: full size)."""
        return getattr(self.next_op, "large_enough", None) if self.reduced_decode else None

    def __call__(self, img):
        if isinstance(img, np.ndarray):
            arr = to_rgb3(to_uint8(img), bgr=False)  # grey, RGBA or 16-bit arrays follow the decode policy
            if not self.to_rgb:
                arr = cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2BGR)
        else:
            arr = self._decode_on_gpu(img) if self.device == "gpu" else None
            if arr is None:
                arr = decode_image(img, self.backend, to_rgb=self.to_rgb, large_enough=self.size_check)
        if self.channel_first:
            arr = arr.transpose((2, 0, 1))
        return np.ascontiguousarray(arr)


class ResizeImage(Operator):
    """Resize so the short side equals `resize_short` (aspect kept, sizes rounded), or to `size` ([w, h] or int).

    PaddleClas's `return_numpy` is accepted; the result is always a numpy array.
    """

    def __init__(self, size: Union[None, int, Sequence[int]] = None, resize_short: Optional[int] = None,
                 interpolation: Optional[str] = None, backend: str = "cv2", return_numpy: bool = True) -> None:
        if resize_short is not None and int(resize_short) <= 0:
            resize_short = None  # PaddleClas: resize_short <= 0 means "use size"
        if size is None and resize_short is None:
            raise ValueError("ResizeImage: give `resize_short` (short side, aspect kept) or `size` ([w, h])")
        if resize_short is not None:
            size = None  # PaddleClas: resize_short wins when both are given
        if not return_numpy:
            no_effect_warning("ResizeImage", "return_numpy", return_numpy)
        self.size = None if size is None else size_pair("ResizeImage", "size", size)
        self.resize_short = None if resize_short is None else int(resize_short)
        self.resize = Resizer("ResizeImage", interpolation, backend)

    def inference_params(self) -> dict:
        """This op's parameters for inference.yml (see Operator.inference_params)."""
        params = ({"resize_short": self.resize_short} if self.resize_short is not None
                  else {"size": list(self.size)})
        return {**params, "interpolation": self.resize.interpolation, "backend": self.resize.backend}

    def large_enough(self, width: int, height: int) -> bool:
        """The short side reaches `resize_short`, or both sides reach `size`: this resize never enlarges it."""
        if self.resize_short is not None:
            return min(width, height) >= self.resize_short
        return width >= self.size[0] and height >= self.size[1]

    def __call__(self, img):
        img_h, img_w = img.shape[:2]
        if self.resize_short is not None:
            percent = float(self.resize_short) / min(img_w, img_h)
            w, h = int(round(img_w * percent)), int(round(img_h * percent))
        else:
            w, h = self.size
        return self.resize(img, w, h)


class CropImage(Operator):
    """Centre crop to `size` (int or [w, h])."""

    def __init__(self, size: Union[int, Sequence[int]]) -> None:
        self.w, self.h = size_pair("CropImage", "size", size)

    def inference_params(self) -> dict:
        """This op's parameters for inference.yml (see Operator.inference_params)."""
        return {"size": [self.w, self.h]}

    def __call__(self, img):
        img_h, img_w = img.shape[:2]
        if img_w < self.w or img_h < self.h:
            raise ValueError(
                f"CropImage: image is {img_w}x{img_h}, smaller than the crop {self.w}x{self.h}; "
                "resize it first (ResizeImage resize_short >= crop size)")
        x0 = (img_w - self.w) // 2
        y0 = (img_h - self.h) // 2
        return img[y0:y0 + self.h, x0:x0 + self.w]


class NormalizeImage(Operator):
    """(img * scale - mean) / std as float32. `order` is the layout of the input: '' or 'hwc', or 'chw'.

    For uint8 input the 256 possible results per channel are computed once with the same float32 operations
    and applied as a lookup table: bit-identical to the arithmetic and several times faster.
    `channel_num: 4` appends a zero channel (PaddleClas's 4-channel input), `output_fp16` gives float16.
    """

    def __init__(self, scale: Union[None, str, float] = None, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None, order: str = "", output_fp16: bool = False,
                 channel_num: int = 3) -> None:
        order = order or ""
        check_choice("NormalizeImage", "order", order, ("", "hwc", "chw"))
        check_choice("NormalizeImage", "channel_num", channel_num, (3, 4))
        self.scale_value = parse_scale(scale)  # kept as given for inference.yml; the arithmetic is float32
        self.scale = np.float32(self.scale_value)
        mean = [0.485, 0.456, 0.406] if mean is None else [float(v) for v in mean]
        std = [0.229, 0.224, 0.225] if std is None else [float(v) for v in std]
        self.mean_values, self.std_values = mean, std
        shape = (3, 1, 1) if order == "chw" else (1, 1, 3)
        self.order = order
        self.mean = np.array(mean, dtype=np.float32).reshape(shape)
        self.std = np.array(std, dtype=np.float32).reshape(shape)
        self.output_fp16 = bool(output_fp16)
        self.channel_num = int(channel_num)
        levels = np.arange(256, dtype=np.float32).reshape(1, 256, 1).repeat(3, axis=2)
        self._lut = (levels * self.scale - self.mean.reshape(1, 1, 3)) / self.std.reshape(1, 1, 3)

    def inference_params(self) -> dict:
        """This op's parameters for inference.yml (see Operator.inference_params)."""
        return {"scale": self.scale_value, "mean": list(self.mean_values), "std": list(self.std_values),
                "order": self.order,
                "output_fp16": self.output_fp16, "channel_num": self.channel_num}

    def __call__(self, img):
        axis = 0 if self.order == "chw" else -1
        if img.ndim != 3 or img.shape[axis] != 3:
            raise ValueError(
                f"NormalizeImage(order={self.order!r}) expects a 3-channel "
                f"{'CHW' if axis == 0 else 'HWC'} array, got shape {img.shape}")
        if img.dtype == np.uint8:
            if self.order == "chw":
                out = np.stack([self._lut[0, img[c], c] for c in range(3)])
            else:
                out = cv2.LUT(np.ascontiguousarray(img), self._lut)
        else:
            out = (img.astype(np.float32) * self.scale - self.mean) / self.std
        if self.channel_num == 4:
            out = np.concatenate([out, np.zeros_like(out[:1] if axis == 0 else out[..., :1])], axis=axis)
        return out.astype(np.float16 if self.output_fp16 else np.float32)


class ToCHWImage(Operator):
    """HWC -> CHW."""

    def inference_params(self) -> dict:
        """This op's parameters for inference.yml (see Operator.inference_params)."""
        return {}

    def __call__(self, img):
        return np.ascontiguousarray(img.transpose((2, 0, 1)))


class NormalizeToCHW:
    """NormalizeImage (HWC order) followed by ToCHWImage, computed in one pass: each uint8 channel goes through
    its lookup table straight into its plane of the CHW output. The tables are NormalizeImage's own, so the
    result is bit-identical to running the two ops; it skips the float32 HWC array and its transposed copy
    (two 0.6 MB passes for a 224 px image, which also push the model's weights out of the CPU caches just
    before it runs). `from_bgr`: the input has its channels reversed and is written back in the original
    order. Any other input (float, CHW, not 3 channels) runs the two ops as they are."""

    deterministic = True

    def __init__(self, normalize: NormalizeImage, to_chw: ToCHWImage, from_bgr: bool = False) -> None:
        self.ops = [normalize, to_chw]
        self.from_bgr = bool(from_bgr)
        self._channel_luts = [np.ascontiguousarray(normalize._lut[0, :, c]) for c in range(3)]

    @property
    def name(self) -> str:
        """The names of the two ops this one replaces."""
        return "+".join(op.name for op in self.ops)

    def __call__(self, img):
        if not (isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3):
            if self.from_bgr:
                img = img[:, :, ::-1]
            return transform(img, self.ops)
        out = np.empty((3, *img.shape[:2]), dtype=np.float32)
        planes = cv2.split(img)
        for channel, plane in enumerate(planes[::-1] if self.from_bgr else planes):
            cv2.LUT(plane, self._channel_luts[channel], dst=out[channel])
        return out


# Ops that treat every channel alike, so reversing the channel order before or after them gives the same result.
CHANNEL_WISE_OPERATORS = (ResizeImage, CropImage)


def fuse_operators(ops: Sequence[Any]) -> list:
    """The same preprocessing in fewer passes over the pixels, for the predictor's hot path (bit-identical;
    exports and inference.yml keep the ops as listed):
    - NormalizeImage (HWC, 3 channels, float32 output) directly followed by ToCHWImage -> one NormalizeToCHW;
    - DecodeImage (cv2, RGB, HWC) followed only by resizes and crops up to that NormalizeToCHW: decoded in
      OpenCV's own BGR order and put back in RGB order by the normalisation, which saves the channel swap over
      the full-size image."""
    fused, i = [], 0
    while i < len(ops):
        op, following = ops[i], ops[i + 1] if i + 1 < len(ops) else None
        if (type(op) is NormalizeImage and type(following) is ToCHWImage and op.order in ("", "hwc")
                and op.channel_num == 3 and not op.output_fp16):
            fused.append(NormalizeToCHW(op, following))
            i += 2
        else:
            fused.append(op)
            i += 1
    first = fused[0] if fused else None
    if (type(first) is DecodeImage and first.to_rgb and not first.channel_first and first.backend == "cv2"
            and first.device == "cpu"):
        rest = fused[1:]
        n = next((k for k, op in enumerate(rest) if type(op) not in CHANNEL_WISE_OPERATORS), len(rest))
        if n < len(rest) and type(rest[n]) is NormalizeToCHW:
            normalize, to_chw = rest[n].ops
            bgr_decode = DecodeImage(to_rgb=False, channel_first=False, backend="cv2",
                                     reduced_decode=first.reduced_decode)
            fused = [bgr_decode, *rest[:n], NormalizeToCHW(normalize, to_chw, from_bgr=True), *rest[n + 1:]]
    return link_reduced_decode(fused)


def link_reduced_decode(ops: Sequence[Any]) -> list:
    """Tell a first DecodeImage which op follows it (what reduced-size decoding sizes the image for)."""
    ops = list(ops)
    if ops and isinstance(ops[0], DecodeImage):
        ops[0].next_op = ops[1] if len(ops) > 1 else None
    return ops


INFERENCE_OPERATORS = Registry("transform op")
for _op in (DecodeImage, ResizeImage, CropImage, NormalizeImage, ToCHWImage):
    INFERENCE_OPERATORS.add(_op.__name__, _op)


def create_operators(op_list: Optional[List[Any]], registry: Optional[Registry] = None,
                     what: str = "transform_ops") -> list:
    """List of one-key dicts `{OpName: {param: value}}` (params may be None) -> list of op objects."""
    registry = INFERENCE_OPERATORS if registry is None else registry
    if op_list is None:
        return []
    return link_reduced_decode(registry.build_list(op_list, what, bare_names=True))


def describe_operators(ops: Iterable[Any]) -> list:
    """Op objects -> `[{OpName: {every parameter}}]` for inference.yml (deterministic ops only)."""
    described = []
    for op in ops:
        if not getattr(op, "deterministic", False):
            raise ValueError(f"{op.name} is a random training op and has no place in inference preprocessing; "
                             f"use only {', '.join(INFERENCE_OPERATORS)}")
        described.append(op.to_config())
    return described


def transform(data: Any, ops: Optional[Iterable[Any]]) -> Any:
    """Apply ops in order."""
    for op in ops or []:
        data = op(data)
    return data


def to_chw_float32(img: np.ndarray) -> np.ndarray:
    """The model input of one image: CHW float32 (HWC output of ops without a final ToCHWImage is transposed)."""
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[-1] in (1, 3) and img.shape[0] not in (1, 3):
        img = img.transpose((2, 0, 1))
    return np.ascontiguousarray(img, dtype=np.float32)

