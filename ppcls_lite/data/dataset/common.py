"""Shared dataset behaviour: read a file, run the transforms, report bad images clearly."""
import logging
import os
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from paddle.io import Dataset

# Re-exported for the datasets and the split tool: list/label parsing lives once, in the shared pipeline.
from ppcls_lite.pipeline import IMAGE_EXTENSIONS, read_label_names, read_text_lines, split_list_line  # noqa: F401

from ppcls_lite.utils.registry import Registry

from ..preprocess import ImageDecodeError, create_operators, transform

# Datasets a `DataLoader.<mode>.dataset.name` may name (each module registers its class).
DATASETS = Registry("dataset")
MAX_LISTED = 20  # how many bad/missing files an error message lists before "... and N more"


class BadImageError(ValueError):
    """An image file could not be read or decoded."""


class BadSample:
    """Returned instead of (image, label) when `skip_bad_images` is on; the collate function drops it."""

    __slots__ = ("index", "reason")

    def __init__(self, index, reason):
        self.index = index
        self.reason = reason


def log_warning(msg: str) -> None:
    """Warn through the project logger when it exists, else the standard logging module."""
    try:
        from ppcls_lite.utils import logger
        logger.warning(msg)
    except Exception:  # logger not available (or not initialised): plain logging still shows it
        logging.getLogger("ppcls_lite.data").warning(msg)


def format_file_list(files: Sequence[object], total: Optional[int] = None) -> str:
    """The first files, one per indented line, then "... and N more" when `total` exceeds what is shown."""
    total = len(files) if total is None else total
    shown = "\n  ".join(str(f) for f in files[:MAX_LISTED])
    more = f"\n  ... and {total - MAX_LISTED} more" if total > MAX_LISTED else ""
    return f"  {shown}{more}"


def is_hwc(img: np.ndarray) -> bool:
    """True for an HWC image (channels last), the layout PaddleClas train ops end with."""
    return img.ndim == 3 and img.shape[-1] in (1, 3) and img.shape[0] not in (1, 3)


class CommonDataset(Dataset):
    """Holds `samples` [(path, label)], runs `transform_ops` on the file bytes, returns (CHW image, int64 label).

    Subclasses fill `self.samples`, `self.class_num`, `self.label_names` and optionally `self.sources`
    (one "file:line" string per sample for error messages).
    """

    def __init__(self, transform_ops=None, skip_bad_images=False):
        self.transform_ops = transform_ops or []
        self.ops = create_operators(self.transform_ops)
        self.skip_bad_images = bool(skip_bad_images)
        self.samples = []
        self.sources = None
        self.class_num = None
        self.label_names = None

    def describe(self, index: int) -> str:
        """The sample's path, with its list file and line when known, for error messages."""
        path = self.samples[index][0]
        if self.sources is not None:
            return f"{path} ({self.sources[index]})"
        return str(path)

    def check_files_exist(self, what: str) -> None:
        """Report every missing image at once, before training starts (drop them when skipping bad images)."""
        missing = [i for i, (path, _) in enumerate(self.samples) if not os.path.exists(path)]
        if not missing:
            return
        listed = [self.describe(i) for i in missing]
        if self.skip_bad_images:
            log_warning(f"{what}: {len(missing)} of {len(self.samples)} images are missing and will be skipped:\n"
                        + format_file_list(listed))
            keep = sorted(set(range(len(self.samples))) - set(missing))
            self.samples = [self.samples[i] for i in keep]
            if self.sources is not None:
                self.sources = [self.sources[i] for i in keep]
            return
        raise FileNotFoundError(
            f"{what}: {len(missing)} of {len(self.samples)} images do not exist:\n" + format_file_list(listed)
            + "\nCheck image_root and the list file, or set dataset.skip_bad_images: True to skip them.")

    def bad_image_error(self, index: int, reason: str) -> BadImageError:
        """The error naming the unreadable sample, why, and how to skip such images."""
        return BadImageError(
            f"cannot read image {self.describe(index)}: {reason}. Replace or remove the file, or set "
            "DataLoader.<Train|Eval>.dataset.skip_bad_images: True to skip bad images")

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        return self.load(index, return_bad_sample=self.skip_bad_images)

    def load(self, index: int, return_bad_sample: bool) -> Union[Tuple[np.ndarray, np.int64], BadSample]:
        """(image, label); for a file that cannot be read, a BadSample marker or a BadImageError.

        The data loader always asks for markers and then skips or raises in the main process (an exception
        inside a paddle worker would arrive as an opaque "blocking queue is killed" SystemError)."""
        path, label = self.samples[index]
        try:
            with open(path, "rb") as f:
                data = f.read()
            img = transform(data, self.ops)
        except (OSError, ImageDecodeError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if return_bad_sample:
                return BadSample(index, reason)
            raise self.bad_image_error(index, reason) from None
        if isinstance(img, np.ndarray) and is_hwc(img):
            img = img.transpose((2, 0, 1))
        return np.ascontiguousarray(img), self.target(label)

    def target(self, label: object) -> np.ndarray:
        """What the loader gets as a sample's label: the int64 class id (MultiLabelDataset: a float32 0/1 vector)."""
        return np.int64(label)
