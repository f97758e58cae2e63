"""MultiLabelDataset: PaddleClas's multi-label list format, `relative/path.jpg<TAB>0,1,0,...` per line."""
import os
from typing import List, Optional

import numpy as np

from .common import DATASETS, CommonDataset, read_label_names, read_text_lines


@DATASETS.register()
class MultiLabelDataset(CommonDataset):
    """Samples from `cls_label_path`: an image path (relative to `image_root`, spaces allowed), `delimiter` (a tab,
    PaddleClas's format), then one 0/1 per class separated by commas. Each sample's label is a float32 0/1
    vector [class_num].

    `label_ratio: True` (PaddleClas): the label becomes [2, class_num], the 0/1 vector and each class's share of
    positives over the whole list; `MultiLabelLoss(weight_ratio: True)` weighs rare attributes up with it.
    A line with the wrong number of labels, a label other than 0/1, or a label count that disagrees with
    `class_num` is an error naming the file and line, raised when the dataset is built (before training).
    """

    multilabel = True  # the engine treats the task as multi-label (sigmoid outputs)

    def __init__(self, image_root: str, cls_label_path: str, transform_ops: Optional[list] = None,
                 class_num: Optional[int] = None, label_ratio: bool = False, delimiter: str = "\t",
                 skip_bad_images: bool = False):
        super().__init__(transform_ops, skip_bad_images)
        self.image_root = image_root
        self.cls_label_path = cls_label_path
        if not os.path.isdir(image_root):
            raise FileNotFoundError(f"MultiLabelDataset: image_root {image_root!r} is not a directory "
                                    "(set DataLoader.<Train|Eval>.dataset.image_root)")
        if not os.path.isfile(cls_label_path):
            raise FileNotFoundError(f"MultiLabelDataset: list file {cls_label_path!r} not found "
                                    "(set dataset.cls_label_path; lines `path<TAB>0,1,0,...`)")
        label_list = os.path.join(os.path.dirname(os.path.abspath(cls_label_path)), "label_list.txt")
        self.label_names = read_label_names(label_list) if os.path.isfile(label_list) else None
        self._read_list(delimiter or "\t", class_num)
        self.class_num = len(self.samples[0][1])
        self.label_ratio = None
        if label_ratio:
            self.label_ratio = np.mean([vector for _, vector in self.samples], axis=0).astype(np.float32)
        self.check_files_exist(f"MultiLabelDataset({cls_label_path})")

    def _read_list(self, delimiter: str, class_num: Optional[int]) -> None:
        self.sources = []
        width, first = class_num, "Arch.class_num"
        for lineno, line in read_text_lines(self.cls_label_path):
            where = f"{self.cls_label_path}:{lineno}"
            rel, sep, label_text = line.rpartition(delimiter)
            if not sep or not rel.strip():
                shown = "a tab" if delimiter == "\t" else repr(delimiter)
                raise ValueError(f"{where}: expected `relative/path.jpg<{shown}>0,1,0,...` (dataset.delimiter is "
                                 f"{shown}), got {line!r}")
            vector = self._parse_labels(label_text.strip(), where)
            if width is None:
                width, first = len(vector), f"the first line ({self.cls_label_path}:{lineno})"
            elif len(vector) != width:
                raise ValueError(f"{where}: {len(vector)} labels, but {first} says {width}; every line needs one "
                                 f"0/1 per class (check the line or Arch.class_num)")
            self.samples.append((os.path.join(self.image_root, rel.strip()), vector))
            self.sources.append(where)
        if not self.samples:
            raise ValueError(f"{self.cls_label_path}: the list file has no samples")

    @staticmethod
    def _parse_labels(text: str, where: str) -> np.ndarray:
        values: List[float] = []
        for item in text.split(","):
            item = item.strip()
            if item not in ("0", "1"):
                raise ValueError(f"{where}: label {item!r} is not 0 or 1 (labels are comma-separated 0/1 flags, one "
                                 f"per class, e.g. 0,1,0)")
            values.append(float(item))
        return np.asarray(values, dtype=np.float32)

    def target(self, label: np.ndarray) -> np.ndarray:
        """The 0/1 vector, stacked with the positive ratios when `label_ratio` is on ([2, class_num])."""
        return label if self.label_ratio is None else np.stack([label, self.label_ratio])

    def positives(self) -> np.ndarray:
        """How many samples have each label set (int64 [class_num])."""
        return np.sum([vector for _, vector in self.samples], axis=0).astype(np.int64)
