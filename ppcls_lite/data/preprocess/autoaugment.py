"""AutoAugment with the ImageNet policy of Cubuk et al. 2019 ("AutoAugment: Learning Augmentation Policies
from Data", Appendix, Table 9), written on PIL.

Each call picks one of the 25 sub-policies uniformly; each of its two operations is applied with its own
probability at its magnitude level (0..10). Magnitude ranges follow the paper: shear 0.3, translate 150/331 of
the image side, rotate 30 degrees, posterize 4..8 bits, solarize threshold 256..0, and the enhance ops
(Color, Contrast, Brightness, Sharpness) a factor 1 +- 0.9 * level / 10 (paper range [0.1, 1.9]).
Geometric ops pick a random sign and fill uncovered pixels with grey (128), as PaddleClas does.
Input/output: HWC uint8 RGB numpy array.
"""
import random

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from .ops import OPERATORS, RandomOperator

# (operation, probability, magnitude level) pairs: the ImageNet policy from the paper.
IMAGENET_POLICY = [
    (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)),
    (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)),
    (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)),
    (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
    (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)),
    (("Equalize", 0.4, 4), ("Rotate", 0.8, 8)),
    (("Solarize", 0.6, 3), ("Equalize", 0.6, 7)),
    (("Posterize", 0.8, 5), ("Equalize", 1.0, 2)),
    (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)),
    (("Equalize", 0.6, 8), ("Posterize", 0.4, 6)),
    (("Rotate", 0.8, 8), ("Color", 0.4, 0)),
    (("Rotate", 0.4, 9), ("Equalize", 0.6, 2)),
    (("Equalize", 0.0, 7), ("Equalize", 0.8, 8)),
    (("Invert", 0.6, 4), ("Equalize", 1.0, 8)),
    (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
    (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
    (("Color", 0.8, 8), ("Solarize", 0.8, 7)),
    (("Sharpness", 0.4, 7), ("Invert", 0.6, 8)),
    (("ShearX", 0.6, 5), ("Equalize", 1.0, 9)),
    (("Color", 0.4, 0), ("Equalize", 0.6, 3)),
    (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)),
    (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 8)),
    (("Invert", 0.6, 4), ("Equalize", 1.0, 8)),
    (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
    (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)),
]

FILL = (128, 128, 128)


def _signed(value):
    return value if random.random() < 0.5 else -value


def _shear_x(img, level):
    s = _signed(0.3 * level / 10)
    return img.transform(img.size, Image.AFFINE, (1, s, 0, 0, 1, 0), Image.BICUBIC, fillcolor=FILL)


def _shear_y(img, level):
    s = _signed(0.3 * level / 10)
    return img.transform(img.size, Image.AFFINE, (1, 0, 0, s, 1, 0), Image.BICUBIC, fillcolor=FILL)


def _translate_x(img, level):
    dx = _signed(150 / 331 * level / 10 * img.size[0])
    return img.transform(img.size, Image.AFFINE, (1, 0, dx, 0, 1, 0), fillcolor=FILL)


def _translate_y(img, level):
    dy = _signed(150 / 331 * level / 10 * img.size[1])
    return img.transform(img.size, Image.AFFINE, (1, 0, 0, 0, 1, dy), fillcolor=FILL)


def _rotate(img, level):
    return img.rotate(_signed(30 * level / 10), resample=Image.BILINEAR, fillcolor=FILL)


def _enhance(enhancer):
    def op(img, level):
        return enhancer(img).enhance(1.0 + _signed(0.9 * level / 10))
    return op


def _posterize(img, level):
    return ImageOps.posterize(img, int(round(8 - 4 * level / 10)))


def _solarize(img, level):
    return ImageOps.solarize(img, int(256 - 256 * level / 10))


OPERATIONS = {
    "ShearX": _shear_x,
    "ShearY": _shear_y,
    "TranslateX": _translate_x,
    "TranslateY": _translate_y,
    "Rotate": _rotate,
    "Color": _enhance(ImageEnhance.Color),
    "Contrast": _enhance(ImageEnhance.Contrast),
    "Brightness": _enhance(ImageEnhance.Brightness),
    "Sharpness": _enhance(ImageEnhance.Sharpness),
    "Posterize": _posterize,
    "Solarize": _solarize,
    "AutoContrast": lambda img, level: ImageOps.autocontrast(img),
    "Equalize": lambda img, level: ImageOps.equalize(img),
    "Invert": lambda img, level: ImageOps.invert(img),
}


@OPERATORS.register()
class AutoAugment(RandomOperator):
    """AutoAugment, ImageNet policy. Takes no parameters in PaddleClas configs (`- AutoAugment:`)."""

    def __init__(self, policy=None):
        self.policy = IMAGENET_POLICY if policy is None else policy
        for sub in self.policy:
            for name, _, _ in sub:
                if name not in OPERATIONS:
                    raise ValueError(f"AutoAugment: unknown operation {name!r}; valid: {sorted(OPERATIONS)}")

    def __call__(self, img):
        sub_policy = random.choice(self.policy)
        pil = Image.fromarray(np.ascontiguousarray(img))
        for name, prob, level in sub_policy:
            if random.random() < prob:
                pil = OPERATIONS[name](pil, level)
        return np.asarray(pil)
