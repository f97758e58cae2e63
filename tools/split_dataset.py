"""Write stratified train/val(/test) list files for a folder of class folders.

    python tools/split_dataset.py --image_root DIR [--val_ratio 0.2] [--test_ratio 0] [--seed 0] [--force]

DIR/<class name>/<images> -> DIR/train_list.txt, DIR/val_list.txt (DIR/test_list.txt when --test_ratio > 0) with
`relative/path label` lines, and DIR/label_list.txt (`id name`). Use them with ImageNetDataset:
image_root: DIR, cls_label_path: DIR/train_list.txt.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls_lite.data.split import split_image_folder  # noqa: E402
from ppcls_lite.utils.cli import run_cli  # noqa: E402


def main(argv=None):
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
