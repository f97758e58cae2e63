"""ImageFolderDataset: `image_root/<class name>/<image>` with sorted class names as ids."""
import os

from .common import DATASETS, IMAGE_EXTENSIONS, CommonDataset, log_warning, read_label_names


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
        folders = sorted(d for d in os.listdir(image_root) if os.path.isdir(os.path.join(image_root, d)))
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
                with open(label_list, "w", encoding="utf-8") as f:
                    f.writelines(f"{i} {name}\n" for i, name in enumerate(folders))
            except OSError as exc:
                log_warning(f"ImageFolderDataset: could not write {label_list} ({exc}); ids follow sorted folders")
        if class_num is not None and class_num != len(self.label_names):
            raise ValueError(f"ImageFolderDataset: {image_root!r} has {len(self.label_names)} classes but "
                             f"class_num is {class_num}; set Arch.class_num to {len(self.label_names)}")
        self.class_num = len(self.label_names)
        for label, name in enumerate(self.label_names):
            class_dir = os.path.join(image_root, name)
            if not os.path.isdir(class_dir):
                continue
            for dirpath, dirnames, filenames in os.walk(class_dir):
                dirnames.sort()
                for fname in sorted(filenames):
                    if fname.lower().endswith(IMAGE_EXTENSIONS):
                        self.samples.append((os.path.join(dirpath, fname), label))
        if not self.samples:
            raise ValueError(f"ImageFolderDataset: no images ({', '.join(IMAGE_EXTENSIONS)}) under {image_root!r}")
