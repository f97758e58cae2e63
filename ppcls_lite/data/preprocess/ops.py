"""Per-image transforms with PaddleClas names and parameters.

Convention: every op takes and returns a numpy array. Until NormalizeImage the array is HWC uint8 (RGB when
DecodeImage has `to_rgb: True`); NormalizeImage returns float32 in the same layout; ToCHWImage transposes.
`backend: pil` only changes which library does the resampling (it matches PaddleClas's PIL-based recipes);
the array convention stays the same so ops can be mixed freely.
All randomness comes from Python's `random` / numpy's global RNG, which the data loader seeds per worker.
"""
import io
import math
import numbers
import random

import cv2
import numpy as np
from PIL import Image, ImageEnhance


class ImageDecodeError(ValueError):
    """The bytes of an image could not be decoded (corrupt, truncated, empty or not an image)."""


# Interpolation names accepted by ResizeImage / RandCropImage ('random' picks one of the real ones each call).
_CV2_INTERP = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "bicubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
}
_PIL_INTERP = {
    "nearest": Image.NEAREST,
    "bilinear": Image.BILINEAR,
    "area": Image.BOX,
    "bicubic": Image.BICUBIC,
    "lanczos": Image.LANCZOS,
}
_BACKENDS = ("cv2", "pil")


def _check_choice(op, key, value, choices):
    if value not in choices:
        raise ValueError(f"{op}: {key}={value!r} is not valid; use one of {sorted(choices)}")


def _pair(op, key, size):
    """An int gives a square (w, h); a list/tuple is taken as [w, h] like PaddleClas."""
    if isinstance(size, numbers.Integral):
        return int(size), int(size)
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise ValueError(f"{op}: {key} must be an int or [width, height], got {size!r}")


class _Resizer:
    """Resize an HWC uint8 array with cv2 or PIL, with a fixed or a random interpolation."""

    def __init__(self, op, interpolation, backend):
        backend = backend or "cv2"
        _check_choice(op, "backend", backend, _BACKENDS)
        interpolation = interpolation or "bilinear"
        _check_choice(op, "interpolation", interpolation, list(_CV2_INTERP) + ["random"])
        self.backend = backend
        self.interpolation = interpolation

    def __call__(self, img, w, h):
        name = self.interpolation
        if name == "random":
            name = random.choice(sorted(_CV2_INTERP))
        if self.backend == "cv2":
            return cv2.resize(img, (w, h), interpolation=_CV2_INTERP[name])
        return np.asarray(Image.fromarray(img).resize((w, h), _PIL_INTERP[name]))


class DecodeImage:
    """Bytes (as read from the file) -> HWC uint8 array with 3 channels.

    Grayscale, palette and RGBA images become 3-channel. `to_rgb` gives RGB order (else BGR, cv2's native),
    `channel_first` returns CHW. `to_np` is accepted for PaddleClas configs; the result is always numpy.
    """

    def __init__(self, to_rgb=True, to_np=True, channel_first=False, backend="cv2"):
        _check_choice("DecodeImage", "backend", backend, _BACKENDS)
        self.to_rgb = to_rgb
        self.channel_first = channel_first
        self.backend = backend

    def _decode_pil(self, data):
        try:
            with Image.open(io.BytesIO(data)) as pil:
                pil.load()  # forces a full decode so truncated files fail here
                return np.asarray(pil.convert("RGB"))
        except Exception as exc:  # PIL raises several types for bad data
            raise ImageDecodeError(f"cannot decode image ({type(exc).__name__}: {exc})") from None

    def _decode_cv2(self, data):
        # IMREAD_COLOR: 3-channel 8-bit BGR for gray/RGBA/16-bit inputs, EXIF orientation applied (as PaddleClas).
        arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if arr is None:
            raise ImageDecodeError("cannot decode image (OpenCV could not read the data)")
        return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)

    def __call__(self, img):
        if isinstance(img, np.ndarray):  # already decoded: only fix channels
            arr = img
        else:
            if not isinstance(img, (bytes, bytearray, memoryview)):
                raise TypeError(f"DecodeImage expects the raw bytes of an image file, got {type(img).__name__}")
            if len(img) == 0:
                raise ImageDecodeError("cannot decode image (the file is empty)")
            data = bytes(img)
            if self.backend == "pil":
                arr = self._decode_pil(data)
            else:
                arr = self._decode_cv2(data)
                if _looks_truncated(data):
                    self._decode_pil(data)  # PIL's full decode raises a clear error if it really is truncated
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        if not self.to_rgb:
            arr = arr[:, :, ::-1]
        if self.channel_first:
            arr = arr.transpose((2, 0, 1))
        return np.ascontiguousarray(arr)


def _looks_truncated(data):
    """Cheap test for JPEG/PNG files missing their end marker; OpenCV decodes those anyway (grey rows)."""
    if data[:3] == b"\xff\xd8\xff":
        return b"\xff\xd9" not in data[-64:]
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" not in data[-32:]
    return False


class ResizeImage:
    """Resize so the short side equals `resize_short` (aspect kept), or to `size` ([w, h] or int)."""

    def __init__(self, size=None, resize_short=None, interpolation=None, backend="cv2", return_numpy=True):
        if (size is None) == (resize_short is None):
            raise ValueError("ResizeImage: give exactly one of `size` or `resize_short`")
        self.size = None if size is None else _pair("ResizeImage", "size", size)
        self.resize_short = resize_short
        self.resize = _Resizer("ResizeImage", interpolation, backend)

    def __call__(self, img):
        img_h, img_w = img.shape[:2]
        if self.resize_short is not None:
            percent = float(self.resize_short) / min(img_w, img_h)
            w, h = int(round(img_w * percent)), int(round(img_h * percent))
        else:
            w, h = self.size
        return self.resize(img, w, h)


class CropImage:
    """Center crop to `size` (int or [w, h])."""

    def __init__(self, size):
        self.w, self.h = _pair("CropImage", "size", size)

    def __call__(self, img):
        img_h, img_w = img.shape[:2]
        if img_w < self.w or img_h < self.h:
            raise ValueError(
                f"CropImage: image is {img_w}x{img_h}, smaller than the crop {self.w}x{self.h}; "
                "resize it first (ResizeImage resize_short >= crop size)")
        x0 = (img_w - self.w) // 2
        y0 = (img_h - self.h) // 2
        return img[y0:y0 + self.h, x0:x0 + self.w]


class RandCropImage:
    """RandomResizedCrop: crop a random area fraction in `scale` with aspect ratio in `ratio`, resize to `size`.

    Up to 10 tries to find a crop inside the image; otherwise falls back to the largest central crop whose
    aspect ratio is within `ratio`. The aspect ratio is sampled uniformly in log space (as torchvision does);
    `use_log_aspect: False` samples it linearly like PaddleClas's default.
    """

    def __init__(self, size, scale=None, ratio=None, interpolation=None, use_log_aspect=True, backend="cv2"):
        self.w, self.h = _pair("RandCropImage", "size", size)
        self.scale = tuple(scale) if scale is not None else (0.08, 1.0)
        self.ratio = tuple(ratio) if ratio is not None else (3.0 / 4.0, 4.0 / 3.0)
        if not (0 < self.scale[0] <= self.scale[1] <= 1.0):
            raise ValueError(f"RandCropImage: scale must satisfy 0 < min <= max <= 1, got {list(self.scale)}")
        if not (0 < self.ratio[0] <= self.ratio[1]):
            raise ValueError(f"RandCropImage: ratio must satisfy 0 < min <= max, got {list(self.ratio)}")
        self.use_log_aspect = use_log_aspect
        self.resize = _Resizer("RandCropImage", interpolation, backend)

    def crop_box(self, img_h, img_w):
        """Return (x0, y0, w, h) of the crop in the source image."""
        area = img_h * img_w
        for _ in range(10):
            target_area = area * random.uniform(*self.scale)
            if self.use_log_aspect:
                aspect = math.exp(random.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
            else:
                aspect = random.uniform(*self.ratio)
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= img_w and 0 < h <= img_h:
                return random.randint(0, img_w - w), random.randint(0, img_h - h), w, h
        # Fallback: central crop, aspect clamped into `ratio`.
        in_ratio = img_w / img_h
        if in_ratio < self.ratio[0]:
            w, h = img_w, int(round(img_w / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            w, h = int(round(img_h * self.ratio[1])), img_h
        else:
            w, h = img_w, img_h
        return (img_w - w) // 2, (img_h - h) // 2, w, h

    def __call__(self, img):
        x0, y0, w, h = self.crop_box(*img.shape[:2])
        return self.resize(np.ascontiguousarray(img[y0:y0 + h, x0:x0 + w]), self.w, self.h)


class RandFlipImage:
    """Flip with probability 0.5: flip_code 1 horizontal, 0 vertical, -1 both (cv2.flip codes)."""

    def __init__(self, flip_code=1):
        _check_choice("RandFlipImage", "flip_code", flip_code, (-1, 0, 1))
        self.flip_code = flip_code

    def __call__(self, img):
        if random.randint(0, 1) == 1:
            if self.flip_code in (1, -1):
                img = img[:, ::-1]
            if self.flip_code in (0, -1):
                img = img[::-1]
            img = np.ascontiguousarray(img)
        return img


def parse_scale(scale):
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


class NormalizeImage:
    """(img * scale - mean) / std as float32. `order` is the layout of the input: '' or 'hwc', or 'chw'."""

    def __init__(self, scale=None, mean=None, std=None, order="", output_fp16=False, channel_num=3):
        _check_choice("NormalizeImage", "order", order, ("", "hwc", "chw"))
        if channel_num != 3:
            raise ValueError("NormalizeImage: only channel_num 3 is supported")
        self.scale = np.float32(parse_scale(scale))
        mean = mean if mean is not None else [0.485, 0.456, 0.406]
        std = std if std is not None else [0.229, 0.224, 0.225]
        shape = (3, 1, 1) if order == "chw" else (1, 1, 3)
        self.order = order
        self.mean = np.array(mean, dtype=np.float32).reshape(shape)
        self.std = np.array(std, dtype=np.float32).reshape(shape)
        self.output_fp16 = output_fp16

    def __call__(self, img):
        axis = 0 if self.order == "chw" else -1
        if img.ndim != 3 or img.shape[axis] != 3:
            raise ValueError(
                f"NormalizeImage(order={self.order!r}) expects a 3-channel "
                f"{'CHW' if axis == 0 else 'HWC'} array, got shape {img.shape}")
        out = (img.astype(np.float32) * self.scale - self.mean) / self.std
        return out.astype(np.float16 if self.output_fp16 else np.float32)


class ToCHWImage:
    """HWC -> CHW."""

    def __call__(self, img):
        return np.ascontiguousarray(img.transpose((2, 0, 1)))


class ColorJitter:
    """Random brightness, contrast, saturation and hue changes, applied in random order (torchvision semantics).

    A number x means a factor drawn from [max(0, 1 - x), 1 + x] (hue: a shift in [-x, x] of a full turn,
    x <= 0.5). Works on HWC uint8 RGB.
    """

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0):
        self.brightness = self._range("brightness", brightness)
        self.contrast = self._range("contrast", contrast)
        self.saturation = self._range("saturation", saturation)
        if not 0 <= float(hue) <= 0.5:
            raise ValueError(f"ColorJitter: hue must be in [0, 0.5], got {hue!r}")
        self.hue = float(hue)

    @staticmethod
    def _range(name, value):
        value = float(value)
        if value < 0:
            raise ValueError(f"ColorJitter: {name} must be >= 0, got {value}")
        return (max(0.0, 1.0 - value), 1.0 + value) if value > 0 else None

    @staticmethod
    def _adjust_hue(img, shift):
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)  # uint8 hue is 0..179
        hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + int(round(shift * 180))) % 180).astype(np.uint8)
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)

    def __call__(self, img):
        steps = []
        if self.brightness:
            f = random.uniform(*self.brightness)
            steps.append(lambda im, f=f: ImageEnhance.Brightness(im).enhance(f))
        if self.contrast:
            f = random.uniform(*self.contrast)
            steps.append(lambda im, f=f: ImageEnhance.Contrast(im).enhance(f))
        if self.saturation:
            f = random.uniform(*self.saturation)
            steps.append(lambda im, f=f: ImageEnhance.Color(im).enhance(f))
        if self.hue:
            s = random.uniform(-self.hue, self.hue)
            steps.append(lambda im, s=s: Image.fromarray(self._adjust_hue(np.asarray(im), s)))
        if not steps:
            return img
        random.shuffle(steps)
        pil = Image.fromarray(np.ascontiguousarray(img))
        for step in steps:
            pil = step(pil)
        return np.asarray(pil)


class RandomErasing:
    """Random Erasing (Zhong et al. 2017) on a normalised float image, HWC or CHW (PaddleClas parameter names).

    With probability EPSILON, erase one rectangle of area fraction in [sl, sh] and aspect ratio in [r1, 1/r1]
    (log-uniform if use_log_aspect). mode 'const' fills 0 (the mean after normalisation), 'rand' one random
    normal colour per rectangle, 'pixel' random normal values per pixel.
    """

    def __init__(self, EPSILON=0.5, sl=0.02, sh=0.4, r1=0.3, mean=(0.0, 0.0, 0.0), attempt=100,
                 use_log_aspect=False, mode="const"):
        _check_choice("RandomErasing", "mode", mode, ("const", "rand", "pixel"))
        if not 0 < r1 <= 1:
            raise ValueError(f"RandomErasing: r1 must be in (0, 1], got {r1}")
        self.EPSILON = EPSILON
        self.sl, self.sh = sl, sh
        self.r1 = r1
        self.mean = np.array(mean, dtype=np.float32)
        self.attempt = attempt
        self.use_log_aspect = use_log_aspect
        self.mode = mode

    def __call__(self, img):
        if random.random() > self.EPSILON:
            return img
        chw = img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3)
        img_h, img_w = (img.shape[1], img.shape[2]) if chw else img.shape[:2]
        channels = img.shape[0] if chw else img.shape[2]
        area = img_h * img_w
        for _ in range(self.attempt):
            target_area = random.uniform(self.sl, self.sh) * area
            if self.use_log_aspect:
                aspect = math.exp(random.uniform(math.log(self.r1), math.log(1.0 / self.r1)))
            else:
                aspect = random.uniform(self.r1, 1.0 / self.r1)
            h = int(round(math.sqrt(target_area * aspect)))
            w = int(round(math.sqrt(target_area / aspect)))
            if 0 < w < img_w and 0 < h < img_h:
                y0 = random.randint(0, img_h - h)
                x0 = random.randint(0, img_w - w)
                if self.mode == "pixel":
                    fill = np.random.normal(size=(h, w, channels))
                elif self.mode == "rand":
                    fill = np.random.normal(size=(1, 1, channels))
                else:
                    fill = self.mean[:channels].reshape(1, 1, channels)
                img = img.copy()
                if chw:
                    img[:, y0:y0 + h, x0:x0 + w] = np.transpose(np.broadcast_to(fill, (h, w, channels)), (2, 0, 1))
                else:
                    img[y0:y0 + h, x0:x0 + w] = fill
                return img
        return img
