"""tools/split_dataset.py: stratified lists, refusal to overwrite, non-image files."""
import subprocess
import sys

import pytest

from helpers import TOOLS_DIR, load_tool, make_image_folder
from ppcls_lite.data import ImageNetDataset
from ppcls_lite.utils.cli import run_cli

split_dataset = load_tool("split_dataset")
ListFilesExistError, split_counts, split_image_folder = (
    split_dataset.ListFilesExistError, split_dataset.split_counts, split_dataset.split_image_folder)


def class_folder(tmp_path, per_class=10):
    root = make_image_folder(tmp_path / "data", class_names=("cat", "dog", "ant"), per_class=per_class)
    for name in ("train_list.txt", "val_list.txt", "label_list.txt"):
        (root / name).unlink()
    return root


def read_list(path):
    return [line.rsplit(" ", 1) for line in path.read_text().splitlines()]


def test_stratified_split(tmp_path):
    root = class_folder(tmp_path)
    (root / "dog" / "README.md").write_text("not an image")
    lines = []
    counts = split_image_folder(str(root), val_ratio=0.2, test_ratio=0.1, seed=0, echo=lines.append)
    assert counts == {"ant": (7, 2, 1), "cat": (7, 2, 1), "dog": (7, 2, 1)}
    assert (root / "label_list.txt").read_text() == "0 ant\n1 cat\n2 dog\n"
    train, val, test = (read_list(root / f"{n}_list.txt") for n in ("train", "val", "test"))
    assert len(train) == 21 and len(val) == 6 and len(test) == 3
    everything = train + val + test
    assert len({p for p, _ in everything}) == 30  # disjoint, complete
    assert all(p.split("/")[0] == ["ant", "cat", "dog"][int(label)] for p, label in everything)
    assert not any(p.endswith(".md") for p, _ in everything)
    assert any("dog" in line and "7" in line for line in lines)  # per-class counts printed
    # The lists load as an ImageNetDataset with label names.
    ds = ImageNetDataset(str(root), str(root / "val_list.txt"))
    assert len(ds) == 6 and ds.label_names == ["ant", "cat", "dog"]


def test_same_seed_same_split_other_seed_differs(tmp_path):
    root = class_folder(tmp_path)
    split_image_folder(str(root), seed=1, echo=lambda s: None)
    first = (root / "val_list.txt").read_text()
    split_image_folder(str(root), seed=1, force=True, echo=lambda s: None)
    assert (root / "val_list.txt").read_text() == first
    split_image_folder(str(root), seed=2, force=True, echo=lambda s: None)
    assert (root / "val_list.txt").read_text() != first
    assert not (root / "test_list.txt").exists()


def test_refuses_to_overwrite(tmp_path):
    root = class_folder(tmp_path)
    split_image_folder(str(root), echo=lambda s: None)
    with pytest.raises(ListFilesExistError, match="--force"):
        split_image_folder(str(root), echo=lambda s: None)


def test_small_classes_keep_a_training_image():
    assert split_counts(1, 0.2, 0.0) == (1, 0, 0)
    assert split_counts(2, 0.5, 0.5) == (1, 1, 0)
    assert split_counts(10, 0.2, 0.0) == (8, 2, 0)


def test_bad_ratios(tmp_path):
    root = class_folder(tmp_path)
    with pytest.raises(ValueError, match="sum to less than 1"):
        split_image_folder(str(root), val_ratio=0.6, test_ratio=0.5)


@pytest.mark.slow
def test_command_line(tmp_path, capsys):
    root = class_folder(tmp_path, per_class=5)
    cmd = [sys.executable, str(TOOLS_DIR / "split_dataset.py"), "--image_root", str(root), "--val_ratio", "0.4"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "wrote train_list.txt, val_list.txt" in result.stdout
    assert len(read_list(root / "val_list.txt")) == 6

    assert run_cli(split_dataset.main, cmd[2:]) == 1  # refuses without --force
    assert "--force" in capsys.readouterr().err
    assert run_cli(split_dataset.main, cmd[2:] + ["--force", "--val_ratio", "0.2"]) == 0
    assert len(read_list(root / "val_list.txt")) == 3
