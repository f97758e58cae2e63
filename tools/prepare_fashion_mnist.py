"""Build the quick-start data dataset/fashion_mnist_mini/ from Debian's Fashion-MNIST files.

    sudo apt-get install dataset-fashion-mnist
    python tools/prepare_fashion_mnist.py [--out dataset/fashion_mnist_mini] [--train_per_class 500]
        [--val_per_class 100] [--full] [--splits train val] [--source /usr/share/datasets/fashion-mnist]
    python tools/prepare_fashion_mnist.py --splits test --out /tmp/fashion_mnist_test   # the official test split

Deterministic (in file order): val is the first M images of each class of the Fashion-MNIST train split (held
out: never trained on), train the next N of each class of the same split, test the whole official test split
(10,000 images: only for the final check, never for training or choosing a checkpoint; not shipped).
--full writes every train-split image (val still held out). See the README.md written into --out for the layout.
"""
import argparse
import gzip
import os
import shutil
import struct
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, REPO_ROOT)  # run from a checkout without installing

from ppcls_lite.utils.cli import run_cli  # noqa: E402

DEFAULT_SOURCE = "/usr/share/datasets/fashion-mnist"
# Class names from the Fashion-MNIST README, with characters that are awkward in paths replaced by "_".
CLASS_NAMES = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle_boot"]
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
SPLITS = ("train", "val", "test")  # val: held out from the train split
README = """# Fashion-MNIST mini (quick-start data)

{summary}

- Source: Fashion-MNIST by Zalando Research, https://github.com/zalandoresearch/fashion-mnist
  (Xiao, Rasul, Vollgraf 2017, "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning
  Algorithms", arXiv:1708.07747), read from the Debian package `dataset-fashion-mnist`.
- License: MIT (Expat), reproduced below.

```
The MIT License (MIT) Copyright © 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated
documentation files (the "Software"), to deal in the Software without restriction, including without limitation
the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and
to permit persons to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or substantial portions
of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED
TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF
CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
DEALINGS IN THE SOFTWARE.
```

## Layout

```
train/<class name>/<index>.png   28x28 8-bit grayscale PNG; <index> is the image's position in the source file
val/<class name>/<index>.png     held out from the Fashion-MNIST *train* split (the first ones of each class)
train_list.txt, val_list.txt     `train/Coat/01090.png 4` lines, paths relative to this folder
label_list.txt                   `id name`, e.g. `0 T-shirt_top`

The official *test* split (t10k, 10,000 images) is not part of this folder: it is kept for the final check of a
trained model (README, "Quick start": `--splits test` writes it as test/ and test_list.txt).
```

Use it with `ImageNetDataset` (`image_root: ./dataset/fashion_mnist_mini/`,
`cls_label_path: ./dataset/fashion_mnist_mini/train_list.txt`); configs/quick_start/ does.
Images are the first {val_per_class} (val) and the next {train_per_class} (train) of each class of the train
split, in file order.

## Rebuild

```
sudo apt-get install dataset-fashion-mnist
python tools/prepare_fashion_mnist.py --out dataset/fashion_mnist_mini --train_per_class 500 --val_per_class 100
python tools/prepare_fashion_mnist.py --out dataset/fashion_mnist_full --full    # all 60,000 train-split images
python tools/prepare_fashion_mnist.py --out /tmp/fashion_mnist_test --splits test   # the 10,000 test images
```
"""


class SourceMissingError(FileNotFoundError):
    """The Debian Fashion-MNIST files are not installed."""


def read_idx(path: str) -> np.ndarray:
    """Read a gzipped idx file (images: uint8 [N, 28, 28]; labels: uint8 [N])."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    if magic == 2051:
        n, rows, cols = struct.unpack(">III", data[4:16])
        return np.frombuffer(data, np.uint8, n * rows * cols, 16).reshape(n, rows, cols)
    if magic == 2049:
        n = struct.unpack(">I", data[4:8])[0]
        return np.frombuffer(data, np.uint8, n, 8)
    raise ValueError(f"{path}: not an idx image/label file (magic number {magic})")


def load_split(source: str, split: str) -> Tuple[np.ndarray, np.ndarray]:
    """(images, labels) of the "train" or "test" file pair in `source`."""
    images_name, labels_name = FILES[split]
    paths = [os.path.join(source, images_name), os.path.join(source, labels_name)]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise SourceMissingError(
            f"Fashion-MNIST files not found: {', '.join(missing)}. Install them with "
            "`sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or point --source at a folder "
            f"holding {', '.join(n for pair in FILES.values() for n in pair)}")
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if len(images) != len(labels):
        raise ValueError(f"{source}: {split} has {len(images)} images but {len(labels)} labels")
    return images, labels


def select(labels: np.ndarray, per_class: Optional[int], skip: int = 0) -> np.ndarray:
    """Indices of `per_class` images of each class after its first `skip` (all the rest when per_class is None),
    in file order."""
    chosen = []
    for label in range(len(CLASS_NAMES)):
        idx = np.flatnonzero(labels == label)
        if per_class is not None and len(idx) < skip + per_class:
            raise ValueError(f"class {CLASS_NAMES[label]} has only {len(idx)} images, fewer than {skip + per_class}")
        chosen.append(idx[skip:] if per_class is None else idx[skip:skip + per_class])
    return np.sort(np.concatenate(chosen))


def split_indices(split: str, labels: np.ndarray, train_per_class: int, val_per_class: int,
                  full: bool) -> np.ndarray:
    """The source indices of a split: val is the first `val_per_class` images of each class of the train file
    and train the `train_per_class` after them (all of them with `full`), so the two never share an image and
    val stays the same whatever the train size; test is every image of the test file."""
    if split == "test":
        return np.arange(len(labels))
    if split == "val":
        return select(labels, val_per_class)
    return select(labels, None if full else train_per_class, skip=val_per_class)


def prepare_out_dir(out: str, splits: Sequence[str]) -> None:
    """Empty the folders of `splits` of a previous build in `out`; refuse to touch a folder that is not one."""
    if os.path.isdir(out) and os.listdir(out):
        if not any(os.path.isfile(os.path.join(out, f"{split}_list.txt")) for split in SPLITS):
            raise ValueError(f"{out} exists and is not a previous Fashion-MNIST build (no train_list.txt); "
                             "choose an empty or new --out folder")
        for sub in splits:
            shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
    os.makedirs(out, exist_ok=True)


def build(out: str, source: str = DEFAULT_SOURCE, train_per_class: int = 500, val_per_class: int = 100,
          full: bool = False, echo: Callable[[str], None] = print,
          splits: Sequence[str] = ("train", "val")) -> Dict[str, int]:
    """Write the image folders and list files of `splits`, label_list.txt and README.md. Returns {split: count}."""
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown split(s) {unknown}: choose from {list(SPLITS)}")
    files = {split: ("test" if split == "test" else "train") for split in splits}
    arrays = {name: load_split(source, name) for name in sorted(set(files.values()))}  # before touching `out`
    prepare_out_dir(out, splits)
    width = 5
    counts = {}
    for split in splits:
        images, labels = arrays[files[split]]
        lines = []
        for name in CLASS_NAMES:
            os.makedirs(os.path.join(out, split, name), exist_ok=True)
        for index in split_indices(split, labels, train_per_class, val_per_class, full):
            label = int(labels[index])
            rel = f"{split}/{CLASS_NAMES[label]}/{index:0{width}d}.png"
            Image.fromarray(images[index], mode="L").save(os.path.join(out, rel), optimize=True)
            lines.append(f"{rel} {label}")
        with open(os.path.join(out, f"{split}_list.txt"), "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        counts[split] = len(lines)
        echo(f"{split}: {len(lines)} images")
    with open(os.path.join(out, "label_list.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{i} {name}\n" for i, name in enumerate(CLASS_NAMES)))
    summary = ", ".join(f"{counts[split]} {split}" for split in splits)
    if full:
        summary = f"The full Fashion-MNIST set as PNG image folders, 10 classes: {summary} images."
    else:
        summary = (f"A small subset of Fashion-MNIST as PNG image folders for the quick start, 10 classes: "
                   f"{summary} images.")
    with open(os.path.join(out, "README.md"), "w", encoding="utf-8") as f:
        f.write(README.format(summary=summary, train_per_class="all other" if full else train_per_class,
                              val_per_class=val_per_class))
    echo(f"wrote {out}")
    return counts


def main(argv: Optional[List[str]] = None) -> None:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "dataset", "fashion_mnist_mini"),
                        help="output folder (default: dataset/fashion_mnist_mini in the repo)")
    parser.add_argument("--train_per_class", type=int, default=500, help="train images per class (500)")
    parser.add_argument("--val_per_class", type=int, default=100, help="val images per class (100)")
    parser.add_argument("--full", action="store_true", help="every train-split image not held out for val")
    parser.add_argument("--splits", nargs="+", default=["train", "val"], choices=SPLITS,
                        help="which splits to write (default: train val; test: the official 10,000-image test split)")
    parser.add_argument("--source", default=DEFAULT_SOURCE, help=f"folder with the idx .gz files ({DEFAULT_SOURCE})")
    args = parser.parse_args(argv)
    build(args.out, args.source, args.train_per_class, args.val_per_class, args.full, splits=args.splits)


if __name__ == "__main__":
    sys.exit(run_cli(main))
