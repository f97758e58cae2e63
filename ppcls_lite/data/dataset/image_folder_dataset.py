"""ImageFolderDataset: `image_root/<class name>/<image>` with sorted class names as ids.

Entries other systems leave in folders (`pipeline.is_foreign`: hidden names such as `.ipynb_checkpoints` and
AppleDouble `._x.jpg`, `__MACOSX`, `@eaDir`) are neither classes nor images; one line names what was ignored.
"""
import os
from dataclasses import dataclass, field
from typing import Dict, List

from ppcls_lite.pipeline import FolderScan, is_foreign, scan_folder
from ppcls_lite.utils.files import write_text_atomic

from .common import DATASETS, IMAGE_EXTENSIONS, CommonDataset, log_warning, read_label_names


@dataclass
class ClassFolders:
    """The class folders of an image root: {class name: its FolderScan}, and the foreign entries ignored."""

    root: str
    classes: Dict[str, FolderScan] = field(default_factory=dict)
    foreign: List[str] = field(default_factory=list)

    def foreign_summary(self) -> str:
        """One line naming every ignored entry ('' when there are none)."""
        scan = FolderScan(self.root, foreign=sorted(self.foreign))
        return scan.foreign_summary()


def scan_class_folders(image_root: str) -> ClassFolders:
    """Sorted class folders of `image_root` (foreign ones left out), each scanned recursively."""
    found = ClassFolders(image_root)
    for name in sorted(os.listdir(image_root)):
        path = os.path.join(image_root, name)
        if is_foreign(name):
            found.foreign.append(path)
        elif os.path.isdir(path):
            found.classes[name] = scan_folder(path)
            found.foreign.extend(found.classes[name].foreign)
    return found


@DATASETS.register()
class ImageFolderDataset(CommonDataset):
    """One sub-folder per class. Class ids follow `image_root/label_list.txt` (`id name`) when it exists,
    otherwise the sorted folder names; in that case label_list.txt is written so ids stay stable later."""

    def __init__(self, image_root, transform_ops=None, class_num=None, skip_bad_images=False,
                 cls_label_path=None):
        super().__init__(transform_ops, skip_bad_images)
        self.image_root = image_root
        if not os.path.isdir(image_root):
            raise FileNotFoundError(f"ImageFolderDataset: image_root {image_root!r} is not a directory")
        scan = scan_class_folders(image_root)
        if scan.foreign:
            log_warning(f"ImageFolderDataset: {scan.foreign_summary()}")
        folders = list(scan.classes)
        if not folders:
            raise ValueError(f"ImageFolderDataset: {image_root!r} has no class sub-folders (expected "
                             "image_root/<class name>/<image files>)")
        label_list = os.path.join(image_root, "label_list.txt")
        if os.path.isfile(label_list):
            self.label_names = read_label_names(label_list)
            unknown = sorted(set(folders) - set(self.label_names))
            if unknown:
                raise ValueError(f"{label_list} does not list the class folders {unknown}; add them or delete "
                                 "the file to regenerate it")
        else:
            self.label_names = folders
            try:
                write_text_atomic(label_list, "".join(f"{i} {name}\n" for i, name in enumerate(folders)))
            except OSError as exc:
                log_warning(f"ImageFolderDataset: could not write {label_list} ({exc}); ids follow sorted folders")
        if class_num is not None and class_num != len(self.label_names):
            raise ValueError(f"ImageFolderDataset: {image_root!r} has {len(self.label_names)} classes but "
                             f"class_num is {class_num}; set Arch.class_num to {len(self.label_names)}")
        self.class_num = len(self.label_names)
        for label, name in enumerate(self.label_names):
            if name in scan.classes:
                self.samples.extend((path, label) for path in scan.classes[name].images)
        if not self.samples:
            raise ValueError(f"ImageFolderDataset: no images ({', '.join(IMAGE_EXTENSIONS)}) under {image_root!r}")
        self.check_files_exist(f"ImageFolderDataset({image_root})")
