"""TimmAutoAugment: RandAugment (Cubuk et al. 2020, "RandAugment: Practical automated data augmentation with a
reduced search space") in timm's form, as PaddleClas configures it: `TimmAutoAugment: {config_str: rand-m9-mstd0.5-inc1,
interpolation: bicubic, img_size: 224}`.

`config_str` is "rand" followed by dash-separated settings:
  m<int>    magnitude, 0..10 (default 10)
  n<int>    operations applied to each image (default 2)
  mstd<num> standard deviation of Gaussian noise added to the magnitude at every use, clipped to [0, 10] (default 0)
  inc<0|1>  1: the "increasing" operation set, where every operation gets stronger as the magnitude grows
  w0        pick operations with timm's fixed choice weights (without repeats) instead of uniformly
Each chosen operation runs with probability 0.5. Magnitude ranges (at 10): rotate 30 degrees, shear 0.3,
translate 45% of the side, enhance factors 0.1..1.9, posterize to 0 (or, increasing, from 4) bits, solarize
threshold 0..256, solarize-add 110. Geometric operations pick a random sign, fill with the mean colour and
resample with `interpolation` ("random": bilinear or bicubic per use). PaddleClas's other config strings
("augmix...", "auto...") are not implemented; the paper's AutoAugment policy is the `AutoAugment` op.
Input/output: HWC uint8 RGB numpy array.
"""
import random
import re

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from .ops import OPERATORS, RandomOperator

MAX_LEVEL = 10.0
IMAGENET_MEAN = (0.485, 0.456, 0.406)
RESAMPLE = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
            "lanczos": Image.LANCZOS, "hamming": Image.HAMMING, "random": (Image.BILINEAR, Image.BICUBIC)}
DEFAULT_OPS = ["AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color",
               "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"]
INCREASING_OPS = ["AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing",
                  "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing",
                  "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"]
# timm's choice weights ("w0"), by operation (an increasing op shares its plain op's weight).
CHOICE_WEIGHTS = {"Rotate": 0.3, "ShearX": 0.2, "ShearY": 0.2, "TranslateXRel": 0.1, "TranslateYRel": 0.1,
                  "Color": 0.025, "Sharpness": 0.025, "AutoContrast": 0.025, "Solarize": 0.005, "SolarizeAdd": 0.005,
                  "Contrast": 0.005, "Brightness": 0.005, "Equalize": 0.005, "Posterize": 0.0, "Invert": 0.0}


def _signed(value):
    return -value if random.random() > 0.5 else value


def _affine(img, matrix, geometry):
    return img.transform(img.size, Image.AFFINE, matrix, resample=geometry.resample(), fillcolor=geometry.fill)


def _solarize_add(img, add):
    lut = [min(255, i + add) if i < 128 else i for i in range(256)]
    return img.point(lut * len(img.getbands()))


def _posterize(img, bits):
    """Keep the `bits` most significant bits; 0 bits gives black (older Pillow did; newer refuses 0)."""
    if bits >= 8:
        return img
    mask = (0xFF << (8 - max(bits, 0))) & 0xFF
    return img.point([i & mask for i in range(256)] * len(img.getbands()))


def _enhancer(cls, increasing):
    if increasing:  # 1 +- 0.9 * level: both directions grow stronger
        return lambda img, level, geo: cls(img).enhance(1.0 + _signed(level / MAX_LEVEL * 0.9))
    return lambda img, level, geo: cls(img).enhance(level / MAX_LEVEL * 1.8 + 0.1)


# name -> op(PIL image, level in [0, 10], geometry settings) -> PIL image
OPERATIONS = {
    "AutoContrast": lambda img, level, geo: ImageOps.autocontrast(img),
    "Equalize": lambda img, level, geo: ImageOps.equalize(img),
    "Invert": lambda img, level, geo: ImageOps.invert(img),
    "Rotate": lambda img, level, geo: img.rotate(_signed(level / MAX_LEVEL * 30.0), resample=geo.resample(),
                                                 fillcolor=geo.fill),
    "Posterize": lambda img, level, geo: _posterize(img, int(level / MAX_LEVEL * 4)),
    "PosterizeIncreasing": lambda img, level, geo: _posterize(img, 4 - int(level / MAX_LEVEL * 4)),
    "Solarize": lambda img, level, geo: ImageOps.solarize(img, int(level / MAX_LEVEL * 256)),
    "SolarizeIncreasing": lambda img, level, geo: ImageOps.solarize(img, 256 - int(level / MAX_LEVEL * 256)),
    "SolarizeAdd": lambda img, level, geo: _solarize_add(img, int(level / MAX_LEVEL * 110)),
    "ShearX": lambda img, level, geo: _affine(img, (1, _signed(level / MAX_LEVEL * 0.3), 0, 0, 1, 0), geo),
    "ShearY": lambda img, level, geo: _affine(img, (1, 0, 0, _signed(level / MAX_LEVEL * 0.3), 1, 0), geo),
    "TranslateXRel": lambda img, level, geo: _affine(
        img, (1, 0, _signed(level / MAX_LEVEL * 0.45) * img.size[0], 0, 1, 0), geo),
    "TranslateYRel": lambda img, level, geo: _affine(
        img, (1, 0, 0, 0, 1, _signed(level / MAX_LEVEL * 0.45) * img.size[1]), geo),
}
for _name, _cls in (("Color", ImageEnhance.Color), ("Contrast", ImageEnhance.Contrast),
                    ("Brightness", ImageEnhance.Brightness), ("Sharpness", ImageEnhance.Sharpness)):
    OPERATIONS[_name] = _enhancer(_cls, increasing=False)
    OPERATIONS[_name + "Increasing"] = _enhancer(_cls, increasing=True)


def parse_config_str(config_str: str) -> dict:
    """'rand-m9-mstd0.5-inc1' -> {magnitude: 9, num_ops: 2, magnitude_std: 0.5, increasing: True, weighted: False}."""
    where = f"TimmAutoAugment: config_str {config_str!r}"
    parts = str(config_str).split("-")
    if parts[0] != "rand":
        raise ValueError(f"{where} is not supported: only RandAugment strings starting with 'rand' are "
                         f"(e.g. rand-m9-mstd0.5-inc1); for the AutoAugment ImageNet policy use the AutoAugment op")
    settings = dict(magnitude=MAX_LEVEL, num_ops=2, magnitude_std=0.0, increasing=False, weighted=False)
    for part in parts[1:]:
        match = re.fullmatch(r"(mstd|inc|m|n|w)(\d+(?:\.\d*)?)", part)
        if not match:
            raise ValueError(f"{where}: cannot read {part!r}; sections are m<int>, n<int>, mstd<number>, "
                             f"inc<0|1>, w0")
        key, value = match.groups()
        if key == "mstd":
            settings["magnitude_std"] = float(value)
        elif key == "inc":
            settings["increasing"] = bool(int(float(value)))
        elif key == "m":
            settings["magnitude"] = float(value)
        elif key == "n":
            settings["num_ops"] = int(float(value))
        elif value not in ("0", "0.0"):
            raise ValueError(f"{where}: only one set of choice weights exists (w0), got w{value}")
        else:
            settings["weighted"] = True
    if not 0 <= settings["magnitude"] <= MAX_LEVEL or settings["num_ops"] < 1:
        raise ValueError(f"{where}: the magnitude m must be in 0..10 and n at least 1")
    return settings


class _Geometry:
    """Fill colour and resampling filter of the geometric operations."""

    def __init__(self, fill, resample):
        self.fill, self._resample = fill, resample

    def resample(self):
        return random.choice(self._resample) if isinstance(self._resample, tuple) else self._resample


@OPERATORS.register()
class TimmAutoAugment(RandomOperator):
    """RandAugment from a timm config string, applied with probability `prob` (PaddleClas's keys)."""

    def __init__(self, config_str="rand-m9-mstd0.5-inc1", interpolation="bicubic", img_size=224,
                 mean=IMAGENET_MEAN, prob=1.0):
        settings = parse_config_str(config_str)
        self.magnitude, self.magnitude_std = settings["magnitude"], settings["magnitude_std"]
        self.num_ops = settings["num_ops"]
        self.op_names = INCREASING_OPS if settings["increasing"] else DEFAULT_OPS
        self.weights = None
        if settings["weighted"]:
            weights = np.array([CHOICE_WEIGHTS[n.replace("Increasing", "")] for n in self.op_names])
            self.weights = weights / weights.sum()
        sizes = img_size if isinstance(img_size, (list, tuple)) else [img_size]
        if not all(isinstance(s, int) and s > 0 for s in sizes):
            raise ValueError(f"TimmAutoAugment: img_size must be a positive whole number or a pair, got {img_size!r}")
        key = interpolation if interpolation else "bilinear"
        if key not in RESAMPLE:
            raise ValueError(f"TimmAutoAugment: interpolation must be one of {list(RESAMPLE)}, got {interpolation!r}")
        fill = tuple(min(255, int(round(255 * float(m)))) for m in mean)
        self.geometry = _Geometry(fill, RESAMPLE[key])
        self.prob = float(prob)

    def level(self) -> float:
        """This use's magnitude: the configured one plus Gaussian noise (mstd), clipped to [0, 10]."""
        level = random.gauss(self.magnitude, self.magnitude_std) if self.magnitude_std > 0 else self.magnitude
        return min(MAX_LEVEL, max(0.0, level))

    def __call__(self, img):
        if self.prob < 1.0 and random.random() >= self.prob:
            return img
        # uniform choice may repeat an op (as timm); weighted choice does not
        names = np.random.choice(self.op_names, self.num_ops, replace=self.weights is None, p=self.weights)
        pil = Image.fromarray(np.ascontiguousarray(img))
        for name in names:
            if random.random() < 0.5:
                pil = OPERATIONS[name](pil, self.level(), self.geometry)
        return np.asarray(pil)
