"""Generated photo-like JPEG datasets for the side-by-side benchmarks: `count` distinct images of `width` x
`height` in `classes` class folders, saved as quality-90 baseline JPEGs with a phone's EXIF orientation tag on
every fourth one, and a list file that repeats them to `list_length` lines (decoding costs the same whether a
file was read before or not: the files stay in the page cache either way).

The content is smooth colour gradients with a class-specific pattern plus sensor-like noise, so that the files
are as large as real photos of that size (12 MP: about 3 MB; 400x300: about 50 KB) and decode as slowly.
"""
import os
from pathlib import Path
from typing import Tuple, Union

import numpy as np

PHOTO_SIZES = {"400x300": (400, 300), "12mp": (4032, 3024)}


def parse_size(text: str) -> Tuple[int, int]:
    """'400x300' or a name of PHOTO_SIZES -> (width, height)."""
    if text.lower() in PHOTO_SIZES:
        return PHOTO_SIZES[text.lower()]
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def photo(width: int, height: int, label: int, seed: int) -> np.ndarray:
    """One HxWx3 uint8 RGB photo-like image of class `label`."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    xx /= width
    yy /= height
    base = rng.uniform(60, 190, 3).astype(np.float32)
    slope = rng.uniform(-60, 60, (3, 2)).astype(np.float32)
    frequency = 4.0 + 3.0 * label  # the class: stripes of a class-specific frequency and direction
    angle = np.pi * label / 4.0
    stripes = 35.0 * np.sin(2 * np.pi * frequency * (np.cos(angle) * xx + np.sin(angle) * yy))
    image = np.empty((height, width, 3), np.float32)
    for c in range(3):
        image[..., c] = base[c] + slope[c, 0] * xx + slope[c, 1] * yy + stripes
    image += rng.normal(0.0, 5.0, (height, width, 1)).astype(np.float32)  # luminance noise, as a sensor's
    return np.clip(image, 0, 255).astype(np.uint8)


def make_photo_dataset(root: Union[str, Path], size: str, count: int = 32, classes: int = 4,
                       list_length: int = 320, seed: int = 0) -> Path:
    """Write (once: an existing complete set is reused) the dataset described in the module docstring under
    root/<size>/; returns the list file (`path label` lines relative to root/<size>/)."""
    from PIL import Image

    width, height = parse_size(size)
    folder = Path(root) / f"{width}x{height}"
    list_file = folder / f"train_list_{list_length}.txt"
    if list_file.is_file():
        return list_file
    names = []
    for i in range(count):
        label = i % classes
        rel = f"class_{label}/photo_{i:03d}.jpg"
        path = folder / rel
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            exif = Image.Exif()
            if i % 4 == 3:
                exif[0x0112] = 6  # "rotate 90 clockwise to display", as phones held upright write
            tmp = path.with_suffix(".tmp")
            Image.fromarray(photo(width, height, label, seed * 100003 + i)).save(
                tmp, "JPEG", quality=90, exif=exif.tobytes())
            os.replace(tmp, path)
        names.append(f"{rel} {label}")
    lines = [names[i % count] for i in range(list_length)]
    tmp = list_file.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(tmp, list_file)
    return list_file
