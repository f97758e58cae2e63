"""tools/prepare_fashion_mnist.py rebuilds the shipped quick-start data deterministically."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import REPO_ROOT, load_tool
from ppcls_lite.data import ImageNetDataset
from ppcls_lite.utils.cli import run_cli

SHIPPED = REPO_ROOT / "dataset" / "fashion_mnist_mini"
prepare_fashion_mnist = load_tool("prepare_fashion_mnist")
CLASS_NAMES, DEFAULT_SOURCE = prepare_fashion_mnist.CLASS_NAMES, prepare_fashion_mnist.DEFAULT_SOURCE
SourceMissingError, build = prepare_fashion_mnist.SourceMissingError, prepare_fashion_mnist.build


def test_missing_source_says_what_to_install(tmp_path, capsys):
    with pytest.raises(SourceMissingError, match="apt-get install dataset-fashion-mnist"):
        build(str(tmp_path / "out"), source=str(tmp_path / "no-such-dir"))
    assert not (tmp_path / "out").exists()
    code = run_cli(prepare_fashion_mnist.main, ["--out", str(tmp_path / "out"), "--source", str(tmp_path / "no-such-dir")])
    assert code == 1 and "apt-get install dataset-fashion-mnist" in capsys.readouterr().err


def test_rebuild_tiny_version(tmp_path):
    if not (Path(DEFAULT_SOURCE) / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Debian package dataset-fashion-mnist not installed ({DEFAULT_SOURCE} missing)")
    out = tmp_path / "fm"
    assert run_cli(prepare_fashion_mnist.main, ["--out", str(out), "--train_per_class", "2", "--val_per_class", "1"]) == 0
    assert (out / "label_list.txt").read_text().splitlines()[0] == "0 T-shirt_top"
    assert "MIT" in (out / "README.md").read_text()
    train = ImageNetDataset(str(out), str(out / "train_list.txt"), class_num=10)
    assert len(train) == 20 and train.label_names == CLASS_NAMES
    assert sorted(label for _, label in train.samples) == sorted(list(range(10)) * 2)
    for path, label in train.samples:
        assert Path(path).parent.name == CLASS_NAMES[label]  # folder matches label
        img = Image.open(path)
        assert img.size == (28, 28) and img.mode == "L"
    val = ImageNetDataset(str(out), str(out / "val_list.txt"), class_num=10)
    assert len(val) == 10 and all(Path(p).parts[-3] == "val" for p, _ in val.samples)
    # Same selection as the shipped set: its val starts with the first image of each class.
    if SHIPPED.is_dir():
        for rel in (out / "val_list.txt").read_text().split()[::2]:
            shipped = SHIPPED / rel
            assert shipped.is_file(), rel
            np.testing.assert_array_equal(np.asarray(Image.open(shipped)), np.asarray(Image.open(out / rel)))
    # Rebuilding in place is allowed (a previous build), a foreign non-empty folder is not.
    build(str(out), train_per_class=1, val_per_class=1, echo=lambda s: None)
    assert len((out / "train_list.txt").read_text().splitlines()) == 10
    assert len(list((out / "train").rglob("*.png"))) == 10
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="not a previous Fashion-MNIST build"):
        build(str(foreign), train_per_class=1, val_per_class=1, echo=lambda s: None)


def test_shipped_quick_start_data():
    if not SHIPPED.is_dir():
        pytest.skip("dataset/fashion_mnist_mini not present")
    train = (SHIPPED / "train_list.txt").read_text().splitlines()
    val = (SHIPPED / "val_list.txt").read_text().splitlines()
    assert len(train) == 5000 and len(val) == 1000
    labels = [int(line.split()[1]) for line in train]
    assert np.bincount(labels).tolist() == [500] * 10
    assert (SHIPPED / "README.md").is_file()
    total = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    assert total <= 5 * 1024 * 1024


def test_shipped_data_holds_no_official_test_image():
    """Issue 24: the quick start is scored on the official test split, so no shipped image may be one of it."""
    if not SHIPPED.is_dir() or not (Path(DEFAULT_SOURCE) / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("shipped data or the Debian package dataset-fashion-mnist missing")
    test_images, _ = prepare_fashion_mnist.load_split(DEFAULT_SOURCE, "test")
    test_pixels = {image.tobytes() for image in test_images}
    train_images, train_labels = prepare_fashion_mnist.load_split(DEFAULT_SOURCE, "train")
    for split in ("train", "val"):
        for line in (SHIPPED / f"{split}_list.txt").read_text().splitlines():
            rel, label = line.split()
            pixels = np.asarray(Image.open(SHIPPED / rel))
            assert pixels.tobytes() not in test_pixels, rel
            index = int(Path(rel).stem)  # the file name is its index in the train split
            np.testing.assert_array_equal(pixels, train_images[index], err_msg=rel)
            assert int(train_labels[index]) == int(label), rel
