"""ImageNetDataset and ImageFolderDataset: list parsing, label checks, missing files, class folders."""
import numpy as np
import pytest

from helpers import make_image_folder
from ppcls_lite.data import ImageFolderDataset, ImageNetDataset

NORMALIZE = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                                "order": ""}}
OPS = [{"DecodeImage": {"to_rgb": True, "channel_first": False}}, NORMALIZE]


def test_imagenet_dataset_reads_list_and_label_names(tiny_dataset):
    ds = ImageNetDataset(str(tiny_dataset), str(tiny_dataset / "train_list.txt"), transform_ops=OPS)
    assert len(ds) == 9 and len(ds.samples) == 9
    assert ds.class_num == 3
    assert ds.label_names == ["circle", "square", "stripes"]
    assert ds.samples[0] == (str(tiny_dataset / "circle/0.png"), 0)
    img, label = ds[0]
    # PaddleClas train ops end with NormalizeImage (HWC); the dataset hands out CHW.
    assert img.shape == (3, 32, 32) and img.dtype == np.float32
    assert label.dtype == np.int64 and int(label) == 0


def test_imagenet_dataset_without_label_list(tiny_dataset):
    (tiny_dataset / "label_list.txt").unlink()
    ds = ImageNetDataset(str(tiny_dataset), str(tiny_dataset / "val_list.txt"), transform_ops=OPS)
    assert ds.label_names is None
    assert ds.class_num == 3  # max label + 1 when nothing else says
    assert ImageNetDataset(str(tiny_dataset), str(tiny_dataset / "val_list.txt"), class_num=10).class_num == 10


def test_blank_lines_and_trailing_spaces(tiny_dataset):
    lst = tiny_dataset / "messy.txt"
    lst.write_text("\ncircle/0.png 0   \n\n   \nsquare/0.png\t1\n\n")
    ds = ImageNetDataset(str(tiny_dataset), str(lst))
    assert [label for _, label in ds.samples] == [0, 1]


@pytest.mark.parametrize("line, message", [
    ("circle/0.png", "messy.txt:2: expected"),
    ("circle/0.png zero", "messy.txt:2: label 'zero' is not an integer"),
    ("circle/0.png 3", r"messy.txt:2: label 3 is outside \[0, 3\)"),
    ("circle/0.png -1", "messy.txt:2: label -1 is outside"),
])
def test_bad_list_lines_name_file_and_line(tiny_dataset, line, message):
    lst = tiny_dataset / "messy.txt"
    lst.write_text(f"circle/0.png 0\n{line}\n")
    with pytest.raises(ValueError, match=message):
        ImageNetDataset(str(tiny_dataset), str(lst), class_num=3)


def test_missing_images_reported_together(tiny_dataset):
    lst = tiny_dataset / "missing.txt"
    lines = ["circle/0.png 0"] + [f"gone/{i}.png 1" for i in range(25)]
    lst.write_text("\n".join(lines) + "\n")
    with pytest.raises(FileNotFoundError) as info:
        ImageNetDataset(str(tiny_dataset), str(lst))
    msg = str(info.value)
    assert "25 of 26 images do not exist" in msg
    assert "gone/0.png" in msg and "missing.txt:2" in msg
    assert "gone/19.png" in msg and "gone/24.png" not in msg and "and 5 more" in msg
    # When skipping bad images, the missing ones are dropped up front.
    ds = ImageNetDataset(str(tiny_dataset), str(lst), skip_bad_images=True)
    assert len(ds) == 1


def test_missing_root_or_list(tmp_path):
    with pytest.raises(FileNotFoundError, match="image_root"):
        ImageNetDataset(str(tmp_path / "nope"), str(tmp_path / "list.txt"))
    with pytest.raises(FileNotFoundError, match="cls_label_path"):
        ImageNetDataset(str(tmp_path), str(tmp_path / "list.txt"))


def test_image_folder_dataset(tmp_path):
    root = make_image_folder(tmp_path / "f", class_names=("zebra", "apple", "mango"), per_class=2)
    (root / "label_list.txt").unlink()
    (root / "apple" / "notes.txt").write_text("not an image")
    ds = ImageFolderDataset(str(root), transform_ops=OPS)
    assert ds.label_names == ["apple", "mango", "zebra"]  # sorted folder names
    assert ds.class_num == 3 and len(ds) == 6
    assert all(not p.endswith(".txt") for p, _ in ds.samples)
    assert (root / "label_list.txt").read_text() == "0 apple\n1 mango\n2 zebra\n"
    img, label = ds[0]
    assert img.shape == (3, 32, 32) and int(label) == 0

    # An existing label_list.txt fixes the ids.
    (root / "label_list.txt").write_text("0 zebra\n1 apple\n2 mango\n")
    ds = ImageFolderDataset(str(root))
    assert ds.label_names == ["zebra", "apple", "mango"]
    assert {p.split("/")[-2]: label for p, label in ds.samples} == {"zebra": 0, "apple": 1, "mango": 2}

    with pytest.raises(ValueError, match="class_num is 5"):
        ImageFolderDataset(str(root), class_num=5)
