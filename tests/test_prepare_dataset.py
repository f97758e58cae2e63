"""tools/prepare_dataset.py flowers102 against a loopback server serving a tiny archive of PaddleClas's layout."""
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import REPO_ROOT as REPO, load_tool
from helpers import Route

ARCHIVE_PATH = "/data/flowers102.zip"  # PaddleClas's path on its host
CLASSES = ("pink primrose", "hard-leaved pocket orchid", "canterbury bells")


def _jpeg(seed, size=40):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (size, size + 8, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", img)[1].tobytes()


def flowers_archive(per_class=4, extra_member=None):
    """A zip laid out like PaddleClas's flowers102.zip: flowers102/jpg/*.jpg plus its list and label files."""
    buffer = io.BytesIO()
    train, val = [], []
    with zipfile.ZipFile(buffer, "w") as archive:
        index = 1
        for label in range(len(CLASSES)):
            for i in range(per_class):
                name = f"jpg/image_{index:05d}.jpg"
                archive.writestr(f"flowers102/{name}", _jpeg(index))
                (val if i % 2 else train).append(f"{name} {label}")
                index += 1
        archive.writestr("flowers102/train_list.txt", "\n".join(train) + "\n")
        archive.writestr("flowers102/val_list.txt", "\n".join(val) + "\n")
        archive.writestr("flowers102/train_extra_list.txt", "\n".join(train + val) + "\n")
        archive.writestr("flowers102/flowers102_label_list.txt", "".join(f"{i} {n}\n" for i, n in enumerate(CLASSES)))
        if extra_member:
            archive.writestr(extra_member, "escaped")
    return buffer.getvalue()


def _load_tool():
    return load_tool("prepare_dataset")


def test_prepare_flowers102_lays_out_the_quick_start_paths(mirror_server, tmp_path, capsys):
    mirror_server.routes[ARCHIVE_PATH] = Route(flowers_archive())
    root = tmp_path / "my project 项目" / "dataset"
    tool = _load_tool()
    tool.main(["flowers102", "--root", str(root)])
    folder = root / "flowers102"
    for name in ("train_list.txt", "val_list.txt", "train_extra_list.txt", "flowers102_label_list.txt"):
        assert (folder / name).is_file(), name
    lines = (folder / "train_list.txt").read_text().split("\n")
    assert lines[0] == "jpg/image_00001.jpg 0" and (folder / "jpg" / "image_00001.jpg").is_file()
    out = capsys.readouterr().out
    assert "train_list.txt 6 images, val_list.txt 6 images, 3 classes" in out
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no staging folder left
    assert mirror_server.requests == [(ARCHIVE_PATH, None)]

    tool.main(["flowers102", "--root", str(root)])  # second run in the same folder
    assert "already prepared" in capsys.readouterr().out and len(mirror_server.requests) == 1

    (folder / "val_list.txt").unlink()  # damaged: says how to recover; --force uses the cached archive
    with pytest.raises(ValueError, match="incomplete.*val_list.txt.*--force"):
        tool.main(["flowers102", "--root", str(root)])
    tool.main(["flowers102", "--root", str(root), "--force"])
    assert (folder / "val_list.txt").is_file() and len(mirror_server.requests) == 1


def test_quick_start_config_reads_the_prepared_dataset(mirror_server, tmp_path, monkeypatch):
    from ppcls_lite.data import build_dataloader
    from ppcls_lite.config import get_config

    mirror_server.routes[ARCHIVE_PATH] = Route(flowers_archive())
    monkeypatch.chdir(tmp_path)  # the config's paths are relative, as in PaddleClas: ./dataset/flowers102/
    _load_tool().main(["flowers102"])
    config = get_config(str(REPO / "configs" / "quick_start" / "MobileNetV3_large_x1_0.yaml"),
                        ["Global.device=cpu", "DataLoader.Train.loader.num_workers=0",
                         "DataLoader.Train.sampler.batch_size=2",
                         "DataLoader.Train.dataset.transform_ops.1.RandCropImage.size=32"])
    assert config["Arch"]["name"] == "MobileNetV3_large_x1_0" and config["Optimizer"]["lr"]["learning_rate"] == 0.00375
    loader = build_dataloader(config["DataLoader"], "Train", class_num=config["Arch"]["class_num"])
    images, labels = next(iter(loader))[:2]
    assert list(images.shape) == [2, 3, 32, 32] and int(np.asarray(labels).max()) < 3


@pytest.mark.parametrize("member", ["../escaped.txt", "/tmp/escaped-absolute.txt", "flowers102/../../escaped.txt"])
def test_archive_members_outside_the_folder_are_refused(mirror_server, tmp_path, member):
    mirror_server.routes[ARCHIVE_PATH] = Route(flowers_archive(extra_member=member))
    root = tmp_path / "deep" / "dataset"
    with pytest.raises(ValueError, match="refused to extract"):
        _load_tool().main(["flowers102", "--root", str(root)])
    assert not (tmp_path / "deep" / "escaped.txt").exists() and not (root / "flowers102").exists()
    assert not Path("/tmp/escaped-absolute.txt").exists()


def test_a_broken_archive_is_deleted_and_reported(mirror_server, tmp_path):
    data = flowers_archive()
    mirror_server.routes[ARCHIVE_PATH] = Route(data[: len(data) // 2])
    with pytest.raises(ValueError, match="flowers102.zip is not usable and was deleted"):
        _load_tool().main(["flowers102", "--root", str(tmp_path / "dataset")])
    cache = Path(os.environ["PPCLS_LITE_HOME"]) / "datasets"
    assert not (cache / "flowers102.zip").exists() and not (cache / "flowers102.zip.part").exists()


@pytest.mark.slow
def test_command_line_prints_one_line_errors(tmp_path):
    env = dict(os.environ, PPCLS_LITE_HOME=str(tmp_path / "home"), PPCLS_LITE_WEIGHTS_MIRROR="http://127.0.0.1:9")
    result = subprocess.run([sys.executable, str(REPO / "tools" / "prepare_dataset.py"), "flowers102",
                             "--root", str(tmp_path / "dataset")], capture_output=True, text=True, env=env)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "127.0.0.1:9/data/flowers102.zip" in result.stderr and "copy it to" in result.stderr


@pytest.mark.slow
def test_quick_start_flow_trains_from_downloaded_paddleclas_weights(mirror_server, tmp_path, monkeypatch):
    """prepare -> train with Arch.pretrained=True (downloaded through the mirror) -> the fine-tuned best_model."""
    import urllib.parse

    import paddle

    from ppcls_lite.arch import build_model
    from ppcls_lite.arch.pretrained import MODEL_URLS
    from ppcls_lite.engine import build_engine
    from ppcls_lite.config import get_config

    name = "MobileNetV3_large_x1_0"
    imagenet = build_model({"name": name, "class_num": 1000})
    buffer = io.BytesIO()
    paddle.save(imagenet.state_dict(), buffer)
    mirror_server.routes[urllib.parse.urlsplit(MODEL_URLS[name]).path] = Route(buffer.getvalue())
    mirror_server.routes[ARCHIVE_PATH] = Route(flowers_archive(per_class=2))
    monkeypatch.chdir(tmp_path)
    _load_tool().main(["flowers102"])
    small = ["Global.device=cpu", "Global.epochs=1", "Arch.pretrained=True", "Optimizer.lr.warmup_epoch=0",
             "DataLoader.Train.sampler.batch_size=3", "DataLoader.Eval.sampler.batch_size=3",
             "DataLoader.Train.loader.num_workers=0", "DataLoader.Eval.loader.num_workers=0",
             "DataLoader.Train.dataset.transform_ops.1.RandCropImage.size=32",
             "DataLoader.Eval.dataset.transform_ops.1.ResizeImage.resize_short=36",
             "DataLoader.Eval.dataset.transform_ops.2.CropImage.size=32"]
    config = get_config(str(REPO / "configs" / "quick_start" / "MobileNetV3_large_x1_0.yaml"), small)
    build_engine(config, "train").train()
    best = paddle.load(f"output/{name}/best_model.pdparams", return_numpy=True)
    assert list(best["fc.weight"].shape) == [1280, 102]
    # the backbone started from the served ImageNet weights (a fresh initialisation would be uncorrelated)
    key = "blocks.14.expand_conv.conv.weight"
    served, fresh = imagenet.state_dict()[key].numpy().ravel(), build_model({"name": name}).state_dict()[key]
    assert np.corrcoef(best[key].ravel(), served)[0, 1] > 0.9
    assert abs(np.corrcoef(fresh.numpy().ravel(), served)[0, 1]) < 0.1
    assert [path for path, _ in mirror_server.requests].count(urllib.parse.urlsplit(MODEL_URLS[name]).path) == 1
