"""tools/check_dataset.py: a dataset doctor run as a user runs it, on a dataset with the usual problems."""
import io
import re

import cv2
import numpy as np
import pytest

from helpers import REPO_ROOT, make_image_folder, run_tool, tiny_config, write_config
from ppcls_lite.data.check import Progress


def run_check(config, *args):
    return run_tool("check_dataset.py", "-c", config, *args, timeout=300)


@pytest.fixture
def messy(tmp_path):
    """The tiny 3-class dataset plus: a file name with spaces and Chinese characters, an empty and a truncated
    image, a missing file, a malformed line, a label outside class_num, a repeated file within Train and a Train
    image that is also in Eval. Lists are UTF-8 with a BOM and CRLF line ends."""
    data = make_image_folder(tmp_path / "数据 set", per_class=6)
    rng = np.random.default_rng(5)
    cv2.imencode(".png", rng.integers(0, 256, (40, 56, 3), dtype=np.uint8))[1].tofile(str(data / "circle" / "圆 形 7.png"))
    (data / "square" / "empty.png").write_bytes(b"")
    jpeg = cv2.imencode(".jpg", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))[1].tobytes()
    (data / "square" / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (data / "stripes" / "copy of 0.png").write_bytes((data / "stripes" / "0.png").read_bytes())
    train = (data / "train_list.txt").read_text().splitlines()
    train += ["circle/圆 形 7.png 0", "square/empty.png 1", "square/cut.jpg 1", "square/gone.png 1",
              "square/no_label.png", "circle/0.png 7", "stripes/copy of 0.png 2", "circle/1.png 0"]
    (data / "train_list.txt").write_bytes(b"\xef\xbb\xbf" + "\r\n".join(train).encode("utf-8") + b"\r\n")
    config = tiny_config(data, tmp_path / "out")
    return data, write_config(config, tmp_path / "config.yaml"), train


@pytest.mark.slow  # runs tools/check_dataset.py in a subprocess
def test_reports_every_problem_with_its_list_line(messy):
    data, config, _ = messy
    proc = run_check(config)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    listing = data / "train_list.txt"
    assert f"{listing}:11: {data / 'square/empty.png'}: cannot decode image (the file is empty)" in out
    assert f"{listing}:12: {data / 'square/cut.jpg'}: cannot decode image (the file is truncated" in out
    assert f"{listing}:13: cannot read {data / 'square/gone.png'}: file not found" in out
    assert f"{listing}:14: expected `relative/path.jpg label`" in out
    assert f"{listing}:15: label 7 is outside [0, 3)" in out
    assert "readable with valid labels: 12, with errors: 5" in out  # 9 + 3 good lines (圆 形 7.png is fine)
    assert "image sizes: width 32..56, height 32..40" in out
    assert "class histogram (images per class): 0 circle: 5, 2 stripes: 4, 1 square: 3" in out
    assert re.search(r"imbalance ratio.*: 1\.67\b", out)
    assert f"{listing}:7 = {listing}:16" in out  # stripes/0.png and its copy
    assert "Train files are also in Eval" in out and f"{listing}:17 = {data / 'val_list.txt'}:" in out
    assert "summary: 5 errors" in out
    assert "== Eval" in out and "Eval: ImageNetDataset" in out


@pytest.mark.slow  # runs tools/check_dataset.py in a subprocess
def test_fix_writes_clean_lists_beside_the_originals(messy):
    data, config, original_train = messy
    before = (data / "train_list.txt").read_bytes()
    proc = run_check(config, "--fix")
    assert proc.returncode == 1
    assert (data / "train_list.txt").read_bytes() == before  # never overwritten
    clean = data / "train_list.clean.txt"
    kept = clean.read_text(encoding="utf-8").splitlines()
    assert "circle/圆 形 7.png 0" in kept
    dropped = {"square/empty.png 1", "square/cut.jpg 1", "square/gone.png 1", "square/no_label.png",
               "circle/0.png 7", "stripes/copy of 0.png 2", "circle/1.png 0"}
    assert not dropped & set(kept) and len(kept) == len(original_train) - len(dropped)
    assert (data / "val_list.clean.txt").read_text().splitlines() == (data / "val_list.txt").read_text().splitlines()
    assert f"-o DataLoader.Train.dataset.cls_label_path={clean}" in proc.stdout
    # the cleaned lists pass; a second --fix run in the same folder works again
    proc = run_check(config, "-o", f"DataLoader.Train.dataset.cls_label_path={clean}",
                     "-o", f"DataLoader.Eval.dataset.cls_label_path={data / 'val_list.clean.txt'}", "--fix")
    assert proc.returncode == 0, proc.stdout
    assert "summary: 0 errors, 0 warnings" in proc.stdout
    assert (data / "train_list.clean.clean.txt").read_text(encoding="utf-8").splitlines() == kept


@pytest.mark.slow  # runs tools/check_dataset.py in a subprocess
def test_class_folders_and_imbalance(tmp_path):
    data = make_image_folder(tmp_path / "folders", per_class=2)
    for i in range(2, 24):  # 24 circles against 2 squares and 2 stripes
        cv2.imwrite(str(data / "circle" / f"extra_{i}.png"), np.full((32, 32, 3), i * 10, np.uint8))
    config = tiny_config(data, tmp_path / "out")
    for mode in ("Train", "Eval"):
        config["DataLoader"][mode]["dataset"] = {"name": "ImageFolderDataset", "image_root": str(data),
                                                 "transform_ops": config["DataLoader"][mode]["dataset"]["transform_ops"]}
    proc = run_check(write_config(config, tmp_path / "c.yaml"), "--fix", "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"imbalance ratio.*: 12\.00\b", proc.stdout)
    assert "classes are imbalanced 12.0:1" in proc.stdout
    # The same folder twice: said once, and no Train file is dropped as a "leak" into Eval.
    assert f"Train and Eval read the same data ({data})" in proc.stdout
    assert "also in Eval" not in proc.stdout
    assert (data / "eval_list.clean.txt").read_text().count("\n") == 28
    assert (data / "train_list.clean.txt").read_text() == (data / "eval_list.clean.txt").read_text()


@pytest.mark.slow  # runs tools/check_dataset.py in a subprocess
def test_relabel_is_applied_before_the_label_range_check(tmp_path):
    data = make_image_folder(tmp_path / "d", per_class=2)
    lines = (data / "train_list.txt").read_text().splitlines()
    (data / "train_list.txt").write_text("".join(f"{l.rsplit(' ', 1)[0]} {10 + 5 * int(l.rsplit(' ', 1)[1])}\n"
                                                 for l in lines))  # labels 10, 15, 20
    config = tiny_config(data, tmp_path / "out")
    config["DataLoader"]["Train"]["dataset"]["relabel"] = True
    proc = run_check(write_config(config, tmp_path / "c.yaml"))
    assert proc.returncode == 0, proc.stdout
    assert "labels: 0..2 (Arch.class_num: 3)" in proc.stdout
    config["DataLoader"]["Train"]["dataset"]["relabel"] = False
    proc = run_check(write_config(config, tmp_path / "c.yaml"))
    assert proc.returncode == 1 and "label 20 is outside [0, 3)" in proc.stdout


@pytest.mark.slow  # runs tools/check_dataset.py in a subprocess
def test_config_errors_are_one_line(tmp_path):
    data = make_image_folder(tmp_path / "d")
    config = tiny_config(data, tmp_path / "out")
    config["DataLoader"]["Eval"]["dataset"]["cls_label_path"] = str(tmp_path / "missing.txt")
    proc = run_check(write_config(config, tmp_path / "c.yaml"))
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and "missing.txt" in proc.stderr


def test_progress_lines_when_not_a_terminal():
    stream = io.StringIO()
    bar = Progress("Train", 1000, stream=stream)
    for _ in range(1000):
        bar.step()
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10 and lines[0].startswith("checking Train:  10% 100/1000 images, ETA ")
    assert lines[-1].startswith("checking Train: 100% 1000/1000")
    quiet = io.StringIO()
    small = Progress("Eval", 20, stream=quiet)
    for _ in range(20):
        small.step()
    assert quiet.getvalue() == ""  # short runs stay quiet


@pytest.mark.slow  # runs tools/check_dataset.py in a subprocess
def test_paddleclas_quick_start_config_unchanged_but_for_paths(tmp_path):
    """PaddleClas's flowers102 fine-tune config, only data paths and class_num overridden, on photo-size JPEGs
    (a phone photo with EXIF orientation among them) in a folder whose name has a space and Chinese characters."""
    from PIL import Image

    data = tmp_path / "花 flowers"
    lines = []
    rng = np.random.default_rng(0)
    for i in range(6):
        (data / "jpg").mkdir(parents=True, exist_ok=True)
        exif = Image.Exif()
        exif[0x0112] = 6 if i == 0 else 1
        Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(
            data / "jpg" / f"image {i}.jpg", quality=85, exif=exif)
        lines.append(f"jpg/image {i}.jpg {i % 3}")
    (data / "train_list.txt").write_text("\n".join(lines[:4]) + "\n")
    (data / "val_list.txt").write_text("\n".join(lines[4:]) + "\n")
    config = REPO_ROOT / "tests" / "paddleclas_configs" / "quick_start" / "MobileNetV3_large_x1_0.yaml"
    overrides = ["-o", "Arch.class_num=3"]
    for mode, name in (("Train", "train_list.txt"), ("Eval", "val_list.txt")):
        overrides += ["-o", f"DataLoader.{mode}.dataset.image_root={data}",
                      "-o", f"DataLoader.{mode}.dataset.cls_label_path={data / name}"]
    proc = run_check(config, *overrides)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "image sizes: width 480..640, height 480..640" in proc.stdout  # the EXIF-6 photo is upright: 480x640
    assert "image sizes: width 640..640, height 480..480" in proc.stdout  # Eval


@pytest.mark.slow  # runs tools/check_dataset.py in a subprocess
def test_fix_with_train_and_eval_the_same_list_writes_one_clean_list(tmp_path):
    """Train and Eval pointing at one list: said once; one clean list serves both (not two writes of one file, and
    no Train line dropped as a "leak" into Eval, which would empty it)."""
    data = make_image_folder(tmp_path / "d", per_class=4)
    (data / "square" / "empty.png").write_bytes(b"")
    with open(data / "train_list.txt", "a") as f:
        f.write("square/empty.png 1\n")
    config = tiny_config(data, tmp_path / "out")
    config["DataLoader"]["Eval"]["dataset"]["cls_label_path"] = str(data / "train_list.txt")
    proc = run_check(write_config(config, tmp_path / "c.yaml"), "--fix", "--no-progress")
    clean = data / "train_list.clean.txt"
    assert f"Train and Eval read the same data ({data / 'train_list.txt'})" in proc.stdout
    assert (f"wrote {clean}: 6 of 7 lines kept; train with -o DataLoader.Train.dataset.cls_label_path={clean} "
            f"-o DataLoader.Eval.dataset.cls_label_path={clean}") in proc.stdout
    assert clean.read_text().splitlines() == (data / "train_list.txt").read_text().splitlines()[:-1]
    assert proc.stdout.count("wrote ") == 1


@pytest.mark.slow  # runs tools/check_dataset.py in a subprocess
def test_fix_never_overwrites_a_different_clean_list(tmp_path):
    """An earlier train_list.clean.txt with other content (an earlier fix, or the user's edits) is kept aside
    under its timestamp before the new one is written; an identical one is left as it is."""
    data = make_image_folder(tmp_path / "d", per_class=4)
    config = write_config(tiny_config(data, tmp_path / "out"), tmp_path / "c.yaml")
    clean = data / "train_list.clean.txt"
    clean.write_text("circle/0.png 0\n# my own notes\n")
    proc = run_check(config, "--fix", "--no-progress")
    kept = [p for p in data.glob("train_list.clean.*.txt")]
    assert len(kept) == 1 and kept[0].read_text() == "circle/0.png 0\n# my own notes\n"
    assert f"kept the earlier train_list.clean.txt (other content) as {kept[0]}" in proc.stdout
    assert clean.read_text() == (data / "train_list.txt").read_text()
    proc = run_check(config, "--fix", "--no-progress")
    assert f"wrote {clean} (unchanged)" in proc.stdout
    assert len(list(data.glob("train_list.clean.*.txt"))) == 1
