"""ImageNetDataset: a list file of `relative/path.jpg label` lines under `image_root` (PaddleClas format)."""
import os
from typing import List

from ppcls_lite.pipeline import missing_paths_hint

from .common import DATASETS, CommonDataset, read_label_names, read_text_lines, split_list_line

ENCODING_KEY = "DataLoader.<Train|Eval>.dataset.encoding"


@DATASETS.register()
class ImageNetDataset(CommonDataset):
    """Samples from `cls_label_path`; paths are relative to `image_root`.

    Blank lines and trailing spaces are ignored; a malformed line or a label outside [0, class_num) is an
    error naming the file and line. `label_names` comes from a `label_list.txt` beside the list file, if any.
    `encoding` (ppcls_lite's key, default utf-8) reads the list and label_list.txt in another encoding, e.g.
    gb18030 for lists written on Chinese Windows.
    """

    def __init__(self, image_root, cls_label_path, transform_ops=None, class_num=None, delimiter=None,
                 skip_bad_images=False, relabel=False, encoding="utf-8"):
        super().__init__(transform_ops, skip_bad_images)
        self.image_root = image_root
        self.cls_label_path = cls_label_path
        self.encoding = encoding
        self.line_numbers: List[int] = []
        if not os.path.isdir(image_root):
            raise FileNotFoundError(f"ImageNetDataset: image_root {image_root!r} is not a directory "
                                    "(set DataLoader.<Train|Eval>.dataset.image_root)")
        if not os.path.exists(cls_label_path):  # a FIFO or device is refused by name when read
            raise FileNotFoundError(f"ImageNetDataset: list file {cls_label_path!r} not found "
                                    "(set dataset.cls_label_path; tools/split_dataset.py can write one)")
        label_list = os.path.join(os.path.dirname(os.path.abspath(cls_label_path)), "label_list.txt")
        self.label_names = (read_label_names(label_list, encoding, ENCODING_KEY) if os.path.isfile(label_list)
                            else None)
        if class_num is None and self.label_names is not None:
            class_num = len(self.label_names)
        self.delimiter = delimiter
        if relabel:  # PaddleClas: labels that do not start at 0 or have gaps become 0..n-1 (ascending order)
            self._read_list(delimiter, None)
            self._relabel(class_num)
        else:
            self._read_list(delimiter, class_num)
        self.class_num = class_num if class_num is not None else (
            max(label for _, label in self.samples) + 1 if self.samples else 0)
        self.check_files_exist(f"ImageNetDataset({cls_label_path})")

    def missing_hint(self, missing: List[int]) -> str:
        """Advice to set `encoding` when a GB18030 reading of the list names files that exist."""
        to_file = lambda line: os.path.join(self.image_root, split_list_line(line, self.delimiter)[0])  # noqa: E731
        return missing_paths_hint(self.cls_label_path, [self.line_numbers[i] for i in missing], to_file,
                                  self.encoding, ENCODING_KEY)

    def _relabel(self, class_num):
        old_labels = sorted({label for _, label in self.samples})
        if class_num is not None and len(old_labels) > class_num:
            raise ValueError(f"{self.cls_label_path}: relabel found {len(old_labels)} distinct labels but class_num "
                             f"is {class_num}; set Arch.class_num to {len(old_labels)}")
        new_label = {old: new for new, old in enumerate(old_labels)}
        self.samples = [(path, new_label[label]) for path, label in self.samples]

    def _parse_line(self, line, delimiter):
        """(relative path, label text or None) of a list line (VeriWild also reads a camera column here)."""
        # The label is split off at the last whitespace, so file names containing spaces still work.
        return split_list_line(line, delimiter)

    def _read_list(self, delimiter, class_num):
        self.sources = []
        for lineno, line in read_text_lines(self.cls_label_path, self.encoding, ENCODING_KEY):
            where = f"{self.cls_label_path}:{lineno}"
            rel, label_text = self._parse_line(line, delimiter)
            if label_text is None:
                raise ValueError(f"{where}: expected `relative/path.jpg label` with an integer label last, "
                                 f"got {line!r}")
            try:
                label = int(label_text)
            except ValueError:
                raise ValueError(f"{where}: label {label_text!r} is not an integer (line {line!r})") from None
            if label < 0 or (class_num is not None and label >= class_num):
                bound = f"[0, {class_num})" if class_num is not None else ">= 0"
                raise ValueError(f"{where}: label {label} is outside {bound}; check the list file or "
                                 "Arch.class_num")
            self.samples.append((os.path.join(self.image_root, rel), label))
            self.sources.append(where)
            self.line_numbers.append(lineno)
        if not self.samples:
            raise ValueError(f"{self.cls_label_path}: the list file has no samples")
