"""Shared dataset behaviour: read a file, run the transforms, report bad images clearly.

A sample file is read only when it is a regular file (a FIFO would block, /dev/zero fill the memory) and its
header gives no more pixels than the limit (pipeline.max_image_pixels, Global.max_image_pixels); missing files
and files that are not regular are found when the dataset is built, the others when they are read. Each is
named with its list line; `skip_bad_images` skips them instead of stopping, and the run's summary counts them.
"""
import logging
import os
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from paddle.io import Dataset

# Re-exported for the datasets and the split tool: list/label parsing lives once, in the shared pipeline.
from ppcls_lite.pipeline import (IMAGE_EXTENSIONS, ImageTooLargeError, NotAFileError, file_kind,  # noqa: F401
                                 read_image_file, read_label_names, read_text_lines, split_list_line)

from ppcls_lite.utils.registry import Registry

from ..preprocess import ImageDecodeError, create_operators, transform

# Datasets a `DataLoader.<mode>.dataset.name` may name (each module registers its class).
DATASETS = Registry("dataset")
MAX_LISTED = 20  # how many bad/missing files an error message lists before "... and N more"
# What reading one sample may raise; each is that file's problem, named and skippable.
SAMPLE_ERRORS = (OSError, ImageDecodeError, NotAFileError, cv2.error, MemoryError)
# Kinds of unusable samples, as the run's summary counts them.
MISSING, NOT_A_FILE, TOO_LARGE, UNREADABLE = "missing", "not a regular file", "over the pixel limit", "unreadable"


class BadImageError(ValueError):
    """An image file could not be read or decoded."""


class BadSample:
    """Returned instead of (image, label) when `skip_bad_images` is on; the collate function drops it."""

    __slots__ = ("index", "reason", "kind")

    def __init__(self, index, reason, kind=UNREADABLE):
        self.index = index
        self.reason = reason
        self.kind = kind


def sample_error_kind(exc: BaseException) -> str:
    """MISSING, NOT_A_FILE, TOO_LARGE or UNREADABLE for an exception of SAMPLE_ERRORS."""
    if isinstance(exc, FileNotFoundError):
        return MISSING
    if isinstance(exc, NotAFileError):
        return NOT_A_FILE
    return TOO_LARGE if isinstance(exc, ImageTooLargeError) else UNREADABLE


def count_kinds(kinds: Sequence[str]) -> str:
    """'3 unreadable, 1 over the pixel limit' (kinds in a fixed order; '' for none)."""
    order = (MISSING, NOT_A_FILE, TOO_LARGE, UNREADABLE)
    return ", ".join(f"{kinds.count(k)} {k}" for k in order if kinds.count(k))


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
        self.dropped: List[str] = []  # kinds of the samples dropped when the dataset was built (skip_bad_images)

    def describe(self, index: int) -> str:
        """The sample's path, with its list file and line when known, for error messages."""
        path = self.samples[index][0]
        if self.sources is not None:
            return f"{path} ({self.sources[index]})"
        return str(path)

    def missing_hint(self, missing: List[int]) -> str:
        """A sentence explaining why the samples `missing` are missing when the dataset can tell ('' here)."""
        return ""

    def check_files_exist(self, what: str) -> None:
        """Find every missing sample and every sample that is not a regular file (FIFO, device, socket, folder)
        before training starts, by `stat`, without opening any: an error listing them all, or with
        skip_bad_images a warning and the samples dropped (counted in `dropped`)."""
        problems = {}
        for i, (path, _) in enumerate(self.samples):
            try:
                kind = file_kind(os.stat(path).st_mode)
            except (FileNotFoundError, NotADirectoryError):
                problems[i] = (MISSING, "missing")
                continue
            except OSError as exc:
                problems[i] = (UNREADABLE, exc.strerror or str(exc))
                continue
            if kind:
                problems[i] = (NOT_A_FILE, f"{kind}, not a regular file")
        if not problems:
            return
        missing = [i for i, (kind, _) in problems.items() if kind == MISSING]
        hint = self.missing_hint(missing) if missing else ""
        listed = [f"{self.describe(i)}: {reason}" for i, (_, reason) in problems.items()]
        how_many = f"{len(problems)} of {len(self.samples)} images"
        summary = (f"{how_many} do not exist" if len(missing) == len(problems) else
                   f"{how_many} cannot be read ({count_kinds([kind for kind, _ in problems.values()])})")
        if self.skip_bad_images and not hint:
            log_warning(f"{what}: {summary} and will be skipped:\n" + format_file_list(listed))
            self.dropped.extend(kind for kind, _ in problems.values())
            keep = [i for i in range(len(self.samples)) if i not in problems]
            self.samples = [self.samples[i] for i in keep]
            if self.sources is not None:
                self.sources = [self.sources[i] for i in keep]
            return
        error = FileNotFoundError if len(missing) == len(problems) else ValueError
        raise error(f"{what}: {summary}:\n" + format_file_list(listed) + (f"\n{hint}" if hint else
                    "\nCheck image_root and the list file (only regular files are read), or set "
                    "dataset.skip_bad_images: True to skip them."))

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
            img = transform(read_image_file(path), self.ops)
        except SAMPLE_ERRORS as exc:
            reason = getattr(exc, "reason", None) if isinstance(exc, NotAFileError) else f"{type(exc).__name__}: {exc}"
            if return_bad_sample:
                return BadSample(index, reason, sample_error_kind(exc))
            raise self.bad_image_error(index, reason) from None
        if isinstance(img, np.ndarray) and is_hwc(img):
            img = img.transpose((2, 0, 1))
        return np.ascontiguousarray(img), np.int64(label)
