"""Write stratified train/val(/test) list files for a folder of class folders.

    python tools/split_dataset.py --image_root DIR [--val_ratio 0.2] [--test_ratio 0] [--seed 0] [--force]

DIR/<class name>/<images> -> DIR/train_list.txt, DIR/val_list.txt (DIR/test_list.txt when --test_ratio > 0) with
`relative/path label` lines, and DIR/label_list.txt (`id name`). Use them with ImageNetDataset:
image_root: DIR, cls_label_path: DIR/train_list.txt.

What other systems leave in folders (`__MACOSX`, `.ipynb_checkpoints`, hidden and AppleDouble `._*` files,
`@eaDir`) is neither a class nor an image; one line says what was ignored. The lists are written together through
temporary files: a full or read-only disk leaves the earlier lists as they were (all old, never some new), and
existing lists are only replaced with --force.
"""
import argparse
import os
import random
import sys
from typing import Callable, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))  # run from a checkout

from ppcls_lite.data.dataset.common import (IMAGE_EXTENSIONS, format_file_list, log_warning,  # noqa: E402
                                            read_label_names)
from ppcls_lite.data.dataset.image_folder_dataset import scan_class_folders  # noqa: E402
from ppcls_lite.utils.cli import run_cli  # noqa: E402
from ppcls_lite.utils.files import write_texts_atomic  # noqa: E402

LIST_NAMES = ("train_list.txt", "val_list.txt", "test_list.txt")


class ListFilesExistError(ValueError):
    """The list files are already there and --force was not given."""


def find_class_images(image_root: str, echo: Callable[[str], None] = print) -> Tuple[Dict[str, List[str]], List[str]]:
    """{class folder: [relative image paths]} (sorted), plus the non-image files that were skipped; what other
    systems leave in folders is left out and named in one line."""
    scan = scan_class_folders(image_root)
    if scan.foreign:
        echo(scan.foreign_summary())

    def relative(path):
        return os.path.relpath(path, image_root).replace(os.sep, "/")

    images = {name: [relative(p) for p in found.images] for name, found in scan.classes.items()}
    skipped = [relative(p) for found in scan.classes.values() for p in found.others]
    return images, skipped


def split_counts(n: int, val_ratio: float, test_ratio: float) -> Tuple[int, int, int]:
    """(train, val, test) sizes for a class of n images; keeps at least one training image."""
    n_val = int(round(n * val_ratio))
    n_test = int(round(n * test_ratio))
    while n_val + n_test >= n and n > 0 and (n_val or n_test):
        if n_test >= n_val and n_test:
            n_test -= 1
        else:
            n_val -= 1
    return n - n_val - n_test, n_val, n_test


def split_image_folder(image_root: str, val_ratio: float = 0.2, test_ratio: float = 0.0, seed: int = 0,
                       force: bool = False, echo: Callable[[str], None] = print) -> Dict[str, Tuple[int, int, int]]:
    """Write train_list.txt / val_list.txt (/ test_list.txt) and label_list.txt into `image_root`.

    Each class is shuffled with `seed` and split by the ratios (stratified). Paths are relative to image_root.
    An existing label_list.txt keeps its ids; otherwise ids follow the sorted folder names.
    Returns {class name: (n_train, n_val, n_test)}.
    """
    if not os.path.isdir(image_root):
        raise FileNotFoundError(f"--image_root {image_root!r} is not a directory")
    if not (0 <= val_ratio < 1 and 0 <= test_ratio < 1 and val_ratio + test_ratio < 1):
        raise ValueError(f"--val_ratio {val_ratio} and --test_ratio {test_ratio} must be >= 0 and sum to less than 1")
    outputs = ["train_list.txt", "val_list.txt"] + (["test_list.txt"] if test_ratio > 0 else [])
    existing = [name for name in LIST_NAMES if os.path.exists(os.path.join(image_root, name))]
    if existing and not force:
        raise ListFilesExistError(f"{image_root} already has {', '.join(existing)}; pass --force to overwrite")

    images, skipped = find_class_images(image_root, echo)
    if not images:
        raise ValueError(f"{image_root} has no class folders (expected {image_root}/<class name>/<images>)")
    if skipped:
        log_warning(f"skipped {len(skipped)} non-image files (extensions {', '.join(IMAGE_EXTENSIONS)}):\n"
                    + format_file_list(skipped))

    label_list = os.path.join(image_root, "label_list.txt")
    if os.path.isfile(label_list):
        names = read_label_names(label_list)
        unknown = sorted(set(images) - set(names))
        if unknown:
            raise ValueError(f"{label_list} does not list the class folders {unknown}; add them, or delete it "
                             "to number the classes by sorted folder name")
    else:
        names = sorted(images)

    rng = random.Random(seed)
    lines = {name: [] for name in outputs}
    counts = {}
    for label, name in enumerate(names):
        files = list(images.get(name, []))
        rng.shuffle(files)
        n_train, n_val, n_test = split_counts(len(files), val_ratio, test_ratio)
        counts[name] = (n_train, n_val, n_test)
        parts = {"train_list.txt": files[:n_train], "val_list.txt": files[n_train:n_train + n_val],
                 "test_list.txt": files[n_train + n_val:]}
        for out in outputs:
            lines[out].extend(f"{rel} {label}" for rel in sorted(parts[out]))

    contents = {os.path.join(image_root, out): "".join(line + "\n" for line in lines[out]) for out in outputs}
    if not os.path.isfile(label_list):
        contents[label_list] = "".join(f"{i} {name}\n" for i, name in enumerate(names))
    write_texts_atomic(contents)  # all complete, then renamed: never a new train list beside an old val list
    for name in LIST_NAMES:  # a stale test list from an earlier split with --test_ratio must not survive
        if name not in outputs and force and os.path.exists(os.path.join(image_root, name)):
            os.remove(os.path.join(image_root, name))

    width = max(len(n) for n in names)
    echo(f"{'id':>3}  {'class':<{width}}  {'train':>6}  {'val':>6}" + ("  test" if test_ratio > 0 else ""))
    for label, name in enumerate(names):
        n_train, n_val, n_test = counts[name]
        echo(f"{label:>3}  {name:<{width}}  {n_train:>6}  {n_val:>6}" + (f"  {n_test:>4}" if test_ratio > 0 else ""))
        if n_train + n_val + n_test == 0:
            log_warning(f"class folder {name!r} has no images")
    totals = [sum(c[i] for c in counts.values()) for i in range(3)]
    echo(f"wrote {', '.join(outputs)} and label_list.txt in {image_root}: "
         f"{totals[0]} train, {totals[1]} val" + (f", {totals[2]} test" if test_ratio > 0 else ""))
    return counts



def main(argv: Optional[List[str]] = None) -> None:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image_root", required=True, help="folder with one sub-folder of images per class")
    parser.add_argument("--val_ratio", type=float, default=0.2, help="fraction of each class for val (0.2)")
    parser.add_argument("--test_ratio", type=float, default=0.0, help="fraction of each class for test (0)")
    parser.add_argument("--seed", type=int, default=0, help="shuffle seed (0)")
    parser.add_argument("--force", action="store_true", help="overwrite existing list files")
    args = parser.parse_args(argv)
    split_image_folder(args.image_root, args.val_ratio, args.test_ratio, args.seed, args.force)


if __name__ == "__main__":
    sys.exit(run_cli(main))
