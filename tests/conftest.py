"""Shared pytest fixtures and helpers: where the reference facts live, a tiny on-disk image dataset, the tools."""
import importlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = REPO_ROOT.parent / "shared" / "reference"
TOOLS_DIR = REPO_ROOT / "tools"

# Paddle's CPU kernels spin up one thread per core by default; two test processes then fight over 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope="session")
def reference_dir():
    if not REFERENCE_DIR.is_dir():
        pytest.skip(f"reference facts not found at {REFERENCE_DIR} (clone the repo with ../shared beside it)")
    return REFERENCE_DIR


def load_tool(name):
    """tools/<name>.py as a module: the tools are scripts beside their helper modules, not a package."""
    if str(TOOLS_DIR) not in sys.path:
        sys.path.insert(0, str(TOOLS_DIR))
    return importlib.import_module(name)


# ImageNet-style inference preprocessing scaled down to 32 px (resize short side 36, centre crop 32).
INFER_OPS_32PX = [
    {"DecodeImage": {"to_rgb": True, "channel_first": False}},
    {"ResizeImage": {"resize_short": 36}},
    {"CropImage": {"size": 32}},
    {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                        "order": ""}},
    {"ToCHWImage": None},
]


def make_image_folder(root, class_names=("circle", "square", "stripes"), per_class=6, size=32, seed=0):
    """Write a small class-folder dataset of PNGs whose classes are visually distinct, plus list files.

    Returns the root Path. Layout: root/<class>/<i>.png, root/train_list.txt, root/val_list.txt,
    root/label_list.txt (`id name`). Every other image goes to val.
    """
    import cv2

    root = Path(root)
    rng = np.random.default_rng(seed)
    train_lines, val_lines = [], []
    for label, name in enumerate(class_names):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.integers(0, 40, size=(size, size, 3), dtype=np.uint8)
            color = tuple(int(c) for c in rng.integers(150, 256, size=3))
            if label % 3 == 0:
                cv2.circle(img, (size // 2, size // 2), size // 3, color, -1)
            elif label % 3 == 1:
                cv2.rectangle(img, (size // 4, size // 4), (3 * size // 4, 3 * size // 4), color, -1)
            else:
                img[:, :: max(size // 8, 2)] = color
            rel = f"{name}/{i}.png"
            cv2.imwrite(str(root / rel), img)
            (val_lines if i % 2 else train_lines).append(f"{rel} {label}")
    (root / "train_list.txt").write_text("\n".join(train_lines) + "\n")
    (root / "val_list.txt").write_text("\n".join(val_lines) + "\n")
    (root / "label_list.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(class_names)))
    return root


@pytest.fixture
def tiny_dataset(tmp_path):
    """A 3-class, 18-image, 32 px dataset in class folders with train/val/label list files."""
    return make_image_folder(tmp_path / "tiny")
