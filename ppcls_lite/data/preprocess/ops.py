"""Random training transforms with PaddleClas names and parameters, on the base of the shared pipeline.

The deterministic ops (DecodeImage, ResizeImage, CropImage, NormalizeImage, ToCHWImage) live in
ppcls_lite.pipeline, the one implementation that training, infer, export and the deploy predictor share;
they are re-exported here. The random ops below subclass the same `Operator` base (with
`deterministic = False`, so the exporter refuses them) and use the same resizer.

All randomness comes from Python's `random` / numpy's global RNG, which the data loader seeds per worker.
"""
import math
import random
from typing import Tuple

import cv2
import numpy as np
from PIL import Image, ImageEnhance

from ppcls_lite.pipeline import (INFERENCE_OPERATORS, CropImage, DecodeImage, ImageDecodeError, NormalizeImage,
                                 Operator, Resizer, ResizeImage, ToCHWImage, check_choice, no_effect_warning,
                                 parse_scale, size_pair)
from ppcls_lite.utils.registry import Registry

__all__ = ["DecodeImage", "ResizeImage", "CropImage", "NormalizeImage", "ToCHWImage", "RandCropImage",
           "RandFlipImage", "ColorJitter", "RandomErasing", "Padv2", "RandomCropImage", "ImageDecodeError",
           "parse_scale", "RandomOperator", "OPERATORS"]

# Ops a training `transform_ops` list may name: the pipeline's deterministic ones plus the random ones below.
OPERATORS = Registry("transform op", parent=INFERENCE_OPERATORS)


class RandomOperator(Operator):
    """A training-only op: random, so never part of inference preprocessing."""

    deterministic = False

    def inference_params(self) -> dict:
        """Always refuses: a random op has no inference form."""
        raise ValueError(f"{self.name} is a random training op; it cannot be exported for inference")


@OPERATORS.register()
class RandCropImage(RandomOperator):
    """RandomResizedCrop: crop a random area fraction in `scale` with aspect ratio in `ratio`, resize to `size`.

    Up to 10 tries to find a crop inside the image; otherwise falls back to the largest central crop whose
    aspect ratio is within `ratio`. The aspect ratio is sampled uniformly in log space (as torchvision does);
    `use_log_aspect: False` samples it linearly like PaddleClas's default.
    """

    def __init__(self, size, scale=None, ratio=None, interpolation=None, use_log_aspect=True, backend="cv2",
                 progress_size=None, **kwargs):
        if progress_size is not None:
            no_effect_warning("RandCropImage", "progress_size", progress_size)  # progressive resizing
        for key, value in kwargs.items():
            no_effect_warning("RandCropImage", key, value)
        self.w, self.h = size_pair("RandCropImage", "size", size)
        self.scale = tuple(scale) if scale is not None else (0.08, 1.0)
        self.ratio = tuple(ratio) if ratio is not None else (3.0 / 4.0, 4.0 / 3.0)
        if not (0 < self.scale[0] <= self.scale[1] <= 1.0):
            raise ValueError(f"RandCropImage: scale must satisfy 0 < min <= max <= 1, got {list(self.scale)}")
        if not (0 < self.ratio[0] <= self.ratio[1]):
            raise ValueError(f"RandCropImage: ratio must satisfy 0 < min <= max, got {list(self.ratio)}")
        self.use_log_aspect = use_log_aspect
        self.resize = Resizer("RandCropImage", interpolation, backend)

    def crop_box(self, img_h: int, img_w: int) -> Tuple[int, int, int, int]:
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

    def large_enough(self, width: int, height: int) -> bool:
        """The smallest crop `scale` allows (scale[0] of the area) still has the target's area, so reduced-size
        decoding before this op never makes the crop smaller than `size`."""
        return self.scale[0] * width * height >= self.w * self.h

    def __call__(self, img):
        x0, y0, w, h = self.crop_box(*img.shape[:2])
        return self.resize(np.ascontiguousarray(img[y0:y0 + h, x0:x0 + w]), self.w, self.h)


@OPERATORS.register()
class RandFlipImage(RandomOperator):
    """Flip with probability 0.5: flip_code 1 horizontal, 0 vertical, -1 both (cv2.flip codes)."""

    def __init__(self, flip_code=1):
        check_choice("RandFlipImage", "flip_code", flip_code, (-1, 0, 1))
        self.flip_code = flip_code

    def __call__(self, img):
        if random.randint(0, 1) == 1:
            if self.flip_code in (1, -1):
                img = img[:, ::-1]
            if self.flip_code in (0, -1):
                img = img[::-1]
            img = np.ascontiguousarray(img)
        return img


@OPERATORS.register()
class ColorJitter(RandomOperator):
    """Random brightness, contrast, saturation and hue changes, applied in random order (torchvision semantics).

    A number x means a factor drawn from [max(0, 1 - x), 1 + x] (hue: a shift in [-x, x] of a full turn,
    x <= 0.5). Works on HWC uint8 RGB.
    """

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0, prob=2):
        self.prob = float(prob)  # PaddleClas: applied with this probability; >= 1 (the default 2) means always
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
        if self.prob < 1 and random.random() >= self.prob:
            return img
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


def _number(op: str, key: str, value) -> float:
    """A number or a fraction written as text ('1.0/3.0') -> float; anything else is an error naming op and key."""
    try:
        return parse_scale(value) if value is not None else float("nan")
    except ValueError:
        raise ValueError(f"{op}: {key} must be a number or a fraction like '1.0/3.0', got {value!r}") from None


@OPERATORS.register()
class RandomErasing(RandomOperator):
    """Random Erasing (Zhong et al. 2017) on a normalised float image, HWC or CHW (PaddleClas parameter names).

    With probability EPSILON, erase one rectangle of area fraction in [sl, sh] and aspect ratio in [r1, 1/r1]
    (log-uniform if use_log_aspect). mode 'const' fills 0 (the mean after normalisation), 'rand' one random
    normal colour per rectangle, 'pixel' random normal values per pixel.
    """

    def __init__(self, EPSILON=0.5, sl=0.02, sh=0.4, r1=0.3, mean=(0.0, 0.0, 0.0), attempt=100,
                 use_log_aspect=False, mode="const"):
        check_choice("RandomErasing", "mode", mode, ("const", "rand", "pixel"))
        # PaddleClas configs write fractions as text (`sh: 1.0/3.0`), like NormalizeImage's scale
        EPSILON, sl, sh, r1 = (_number("RandomErasing", key, value)
                               for key, value in (("EPSILON", EPSILON), ("sl", sl), ("sh", sh), ("r1", r1)))
        if not 0 < r1 <= 1:
            raise ValueError(f"RandomErasing: r1 must be in (0, 1], got {r1}")
        if not 0 <= sl <= sh <= 1:
            raise ValueError(f"RandomErasing: the area fractions need 0 <= sl <= sh <= 1, got sl={sl}, sh={sh}")
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


@OPERATORS.register()
class Padv2(RandomOperator):
    """Pad an HWC image to `size` ([width, height] or int; without it, to the next multiple of `size_divisor`),
    filling with `fill_value` (a number or one per channel). `pad_mode`: 0 pads right/bottom, 1 centres the
    image, 2 pads left/top, -1 puts it at `offsets` [x, y]. Returns float32 (PaddleClas's attribute recipes pad
    before RandomCropImage). A training op: not part of exported preprocessing."""

    def __init__(self, size=None, size_divisor=32, pad_mode=0, offsets=None, fill_value=(127.5, 127.5, 127.5)):
        check_choice("Padv2", "pad_mode", pad_mode, (-1, 0, 1, 2))
        if pad_mode == -1 and not offsets:
            raise ValueError("Padv2: pad_mode -1 places the image at `offsets` [x, y]; give offsets")
        self.size = None if size is None else size_pair("Padv2", "size", size)
        self.size_divisor = int(size_divisor)
        self.pad_mode = pad_mode
        self.offsets = offsets
        self.fill_value = np.asarray(fill_value, dtype=np.float32).reshape(-1)

    def __call__(self, img):
        im_h, im_w = img.shape[:2]
        if self.size:
            w, h = self.size
            if im_h > h or im_w > w:
                raise ValueError(f"Padv2: the image is {im_w}x{im_h}, larger than the padded size {w}x{h}; resize "
                                 f"it first (ResizeImage before Padv2) or enlarge Padv2.size")
        else:
            h = int(math.ceil(im_h / self.size_divisor) * self.size_divisor)
            w = int(math.ceil(im_w / self.size_divisor) * self.size_divisor)
        if (h, w) == (im_h, im_w):
            return img.astype(np.float32)
        x, y = {-1: tuple(self.offsets or (0, 0)), 0: (0, 0), 1: ((w - im_w) // 2, (h - im_h) // 2),
                2: (w - im_w, h - im_h)}[self.pad_mode]
        canvas = np.empty((h, w, img.shape[2]), dtype=np.float32)
        canvas[...] = self.fill_value if self.fill_value.size in (1, img.shape[2]) else self.fill_value[0]
        canvas[y:y + im_h, x:x + im_w] = img
        return canvas


@OPERATORS.register()
class RandomCropImage(RandomOperator):
    """Crop a random `size` ([width, height] or int) window, without resizing (PaddleClas's attribute recipes)."""

    def __init__(self, size):
        self.w, self.h = size_pair("RandomCropImage", "size", size)

    def __call__(self, img):
        img_h, img_w = img.shape[:2]
        if img_w < self.w or img_h < self.h:
            raise ValueError(f"RandomCropImage: the image is {img_w}x{img_h}, smaller than the crop {self.w}x{self.h};"
                             f" pad or resize it first (Padv2 / ResizeImage)")
        y0 = random.randint(0, img_h - self.h)
        x0 = random.randint(0, img_w - self.w)
        return np.ascontiguousarray(img[y0:y0 + self.h, x0:x0 + self.w])
