"""Make the worked-example datasets of docs/TASKS.md from the shipped Fashion-MNIST subset (no download).

    python tools/make_task_data.py binary     [--positive Shirt] [--out dataset/tasks/shirt]
    python tools/make_task_data.py imbalanced [--ratio 10] [--minority 5 6 7 8 9] [--out dataset/tasks/imbalanced]
    python tools/make_task_data.py multilabel [--out dataset/tasks/mosaic]
    python tools/make_task_data.py attributes [--out dataset/tasks/colour_type]

binary      lists over dataset/fashion_mnist_mini/ (image_root stays there): label 1 for the --positive class,
            0 for the others (PaddleClas's PULC yes/no format, `path label`).
imbalanced  the train list with every --minority class cut to 1/--ratio of its images (the val list unchanged).
multilabel  56x56 mosaics of 1 to 3 different Fashion-MNIST items in a 2x2 grid; labels `path<TAB>0,1,...` (10
            classes), PaddleClas's MultiLabelDataset format, plus label_list.txt.
attributes  one item of the first 9 classes, tinted in one of VeRi's 10 colours, at 56 px: 19 labels (10 colours,
            then 9 types), the layout PaddleClas's vehicle_attribute config and VehicleAttribute read.

Every output is deterministic (--seed). Lists are written relative to the image_root the docs use.
"""
import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run from a checkout without installing

from ppcls_lite.pipeline import read_label_names, read_text_lines, split_list_line  # noqa: E402
from ppcls_lite.utils.cli import run_cli  # noqa: E402

FASHION = REPO_ROOT / "dataset" / "fashion_mnist_mini"
# VeRi's colours (PaddleClas's VehicleAttribute order) as RGB.
COLOURS = {"yellow": (235, 220, 40), "orange": (245, 140, 20), "green": (40, 170, 60), "gray": (128, 128, 128),
           "red": (220, 30, 30), "blue": (30, 70, 230), "white": (250, 250, 250), "golden": (200, 160, 60),
           "brown": (120, 70, 30), "black": (10, 10, 10)}
BACKGROUND = (70, 90, 120)  # slate blue-grey: every colour above stands out from it


def read_list(path: Path) -> List[Tuple[str, int]]:
    """(relative path, label) of a `path label` list."""
    return [(rel, int(label)) for _, line in read_text_lines(path) for rel, label in [split_list_line(line)]]


def write_lines(path: Path, lines: Sequence[str]) -> None:
    """Write `lines` (UTF-8, one per line), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def make_binary(out: Path, positive: str) -> None:
    """train_list.txt / val_list.txt over fashion_mnist_mini with 1 for `positive`, 0 for the rest."""
    names = read_label_names(FASHION / "label_list.txt")
    if positive not in names:
        raise ValueError(f"--positive {positive!r} is not a class of {FASHION}; choose one of {', '.join(names)}")
    target = names.index(positive)
    for split in ("train", "val"):
        rows = read_list(FASHION / f"{split}_list.txt")
        write_lines(out / f"{split}_list.txt", [f"{rel} {int(label == target)}" for rel, label in rows])
    write_lines(out / "label_list.txt", [f"0 no_{positive.lower()}", f"1 contains_{positive.lower()}"])
    print(f"wrote {out}/train_list.txt, val_list.txt (image_root: {FASHION}): 1 = {positive}")


def make_imbalanced(out: Path, ratio: int, minority: Sequence[int]) -> None:
    """The train list with the `minority` classes cut to 1/`ratio` (the first images of each, in list order)."""
    rows = read_list(FASHION / "train_list.txt")
    per_class = np.bincount([label for _, label in rows])
    kept, seen = [], np.zeros_like(per_class)
    for rel, label in rows:
        seen[label] += 1
        if label not in minority or seen[label] <= per_class[label] // ratio:
            kept.append(f"{rel} {label}")
    write_lines(out / "train_list.txt", kept)
    write_lines(out / "val_list.txt", [line for _, line in read_text_lines(FASHION / "val_list.txt")])
    write_lines(out / "label_list.txt", [line for _, line in read_text_lines(FASHION / "label_list.txt")])
    counts = np.bincount([int(line.rsplit(" ", 1)[1]) for line in kept], minlength=10)
    print(f"wrote {out}/train_list.txt: images per class {counts.tolist()} (val: {FASHION}/val_list.txt)")


def _read(rel: str) -> np.ndarray:
    return cv2.imread(str(FASHION / rel), cv2.IMREAD_GRAYSCALE)


def make_multilabel(out: Path, seed: int, counts: Tuple[int, int]) -> None:
    """2x2 mosaics of 1-3 items of different classes; `path<TAB>0,1,...` over the 10 classes."""
    rng = np.random.default_rng(seed)
    for split, count in zip(("train", "val"), counts):
        rows = read_list(FASHION / f"{split}_list.txt")
        by_class = [[rel for rel, label in rows if label == c] for c in range(10)]
        lines = []
        for i in range(count):
            classes = rng.choice(10, size=rng.integers(1, 4), replace=False)
            cells = rng.choice(4, size=len(classes), replace=False)
            canvas = np.zeros((56, 56), np.uint8)
            for c, cell in zip(classes, cells):
                img = _read(by_class[c][rng.integers(len(by_class[c]))])
                y, x = divmod(int(cell), 2)
                canvas[28 * y:28 * y + 28, 28 * x:28 * x + 28] = img
            rel = f"{split}/{i:05d}.png"
            (out / split).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out / rel), canvas)
            flags = np.zeros(10, int)
            flags[classes] = 1
            lines.append(f"{rel}\t{','.join(map(str, flags))}")
        write_lines(out / f"{split}_list.txt", lines)
    write_lines(out / "label_list.txt", [line for _, line in read_text_lines(FASHION / "label_list.txt")])
    print(f"wrote {counts[0]} + {counts[1]} mosaics with their lists to {out}")


def make_attributes(out: Path, seed: int, counts: Tuple[int, int]) -> None:
    """An item of class 0-8 (the type) tinted in one of 10 colours on a slate background; 19 labels."""
    rng = np.random.default_rng(seed)
    colours = list(COLOURS.values())
    for split, count in zip(("train", "val"), counts):
        items = [(rel, label) for rel, label in read_list(FASHION / f"{split}_list.txt") if label < 9]
        lines = []
        for i in range(count):
            rel_item, kind = items[rng.integers(len(items))]
            img = _read(rel_item)
            colour = int(rng.integers(10))
            alpha = cv2.resize(img, (56, 56)).astype(np.float32)[..., None] / 255.0
            shade = 0.75 + 0.25 * rng.random()  # a little lighting variation
            rgb = (1 - alpha) * np.array(BACKGROUND) + alpha * np.array(colours[colour]) * shade
            rel = f"{split}/{i:05d}.png"
            (out / split).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out / rel), cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
            flags = np.zeros(19, int)
            flags[colour] = flags[10 + kind] = 1
            lines.append(f"{rel}\t{','.join(map(str, flags))}")
        write_lines(out / f"{split}_list.txt", lines)
    types = read_label_names(FASHION / "label_list.txt")[:9]
    write_lines(out / "label_list.txt", [f"{i} {name}" for i, name in enumerate(list(COLOURS) + types)])
    print(f"wrote {counts[0]} + {counts[1]} tinted items with their lists to {out} (types: Fashion-MNIST classes 0-8)")


def main(argv: Optional[List[str]] = None) -> None:
    """Parse the command line and write the chosen dataset."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("binary", "imbalanced", "multilabel", "attributes"))
    parser.add_argument("--out", help="output folder (default dataset/tasks/<a name per kind>)")
    parser.add_argument("--positive", default="Shirt", help="binary: the class that is 1")
    parser.add_argument("--ratio", type=int, default=10, help="imbalanced: majority : minority images")
    parser.add_argument("--minority", type=int, nargs="+", default=[5, 6, 7, 8, 9], help="imbalanced: class ids cut")
    parser.add_argument("--train", type=int, help="multilabel/attributes: train images (6000 / 2000)")
    parser.add_argument("--val", type=int, help="multilabel/attributes: val images (1000 / 500)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not (FASHION / "train_list.txt").is_file():
        raise FileNotFoundError(f"{FASHION} is missing; rebuild it with tools/prepare_fashion_mnist.py")
    default = {"binary": f"dataset/tasks/{args.positive.lower()}", "imbalanced": "dataset/tasks/imbalanced",
               "multilabel": "dataset/tasks/mosaic", "attributes": "dataset/tasks/colour_type"}[args.kind]
    out = Path(args.out or os.path.join(REPO_ROOT, default))
    if args.kind == "binary":
        make_binary(out, args.positive)
    elif args.kind == "imbalanced":
        make_imbalanced(out, args.ratio, args.minority)
    elif args.kind == "multilabel":
        make_multilabel(out, args.seed, (args.train or 6000, args.val or 1000))
    else:
        make_attributes(out, args.seed, (args.train or 2000, args.val or 500))


if __name__ == "__main__":
    sys.exit(run_cli(main))
