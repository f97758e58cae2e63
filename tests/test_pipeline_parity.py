"""One image pipeline: the same files give the same input tensors and predictions through training's Eval loader,
tools/infer.py, and the exported predictor on both backends (the export folder's own copy, run where neither
paddle nor ppcls_lite can be imported).

The files are what users bring, generated here: 640x480 phone JPEGs with EXIF orientations 1, 3, 6, 8, a CMYK and a
greyscale JPEG, 16-bit colour and greyscale PNGs, palette and RGBA PNGs, a GIF and a WEBP, in folders and with file
names that contain spaces and Chinese characters, listed in a UTF-8 list file with a BOM and CRLF line ends.
Orientation is checked against the hand-rotated photo, and with a model trained here to tell vertical from
horizontal stripes: a phone photo stored with horizontal stripes and EXIF orientation 6 is 'vertical' everywhere.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest
import yaml
from PIL import Image

from helpers import (INFER_OPS_32PX, PREDICTOR_DIR, REFERENCE_DIR, REPO_ROOT, make_awkward_files, save_pil,
                     tiny_config, with_params, write_config)
from ppcls_lite import pipeline, predict

PREDICT_SCRIPT = PREDICTOR_DIR / "predict_cls.py"

ARCH = "MobileNetV3_small_x0_35"
TOLERANCE = {"paddle": 1e-4, "onnxruntime": 1e-3}
def _recalibrated_weights(files, root, out):
    """The stored parity weights with BatchNorm statistics taken from these images (momentum 0, one batch), so
    the predictions differ from image to image. Returns the weights prefix."""
    from ppcls_lite.arch import build_model
    from ppcls_lite.pipeline import create_operators, load_file, to_chw_float32
    from ppcls_lite.utils.save_load import load_pretrained

    ops = create_operators(INFER_OPS_32PX)
    batch = np.stack([load_file(root / rel, ops, to_chw_float32) for rel in files])
    model = build_model({"name": ARCH, "class_num": 10})
    load_pretrained(model, str(REFERENCE_DIR / "parity" / ARCH))
    for layer in model.sublayers():
        if isinstance(layer, (paddle.nn.BatchNorm, paddle.nn.BatchNorm2D)):
            layer._momentum = 0.0
    model.train()
    with paddle.no_grad():
        model(paddle.to_tensor(batch))
    paddle.save(model.state_dict(), f"{out}.pdparams")
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory, reference_dir):
    pytest.importorskip("paddle2onnx")
    pytest.importorskip("onnxruntime")
    root = tmp_path_factory.mktemp("parity") / "用户 data"
    files = make_awkward_files(root)
    listing = root / "eval list.txt"
    listing.write_bytes(b"\xef\xbb\xbf" + "".join(f"{rel} {label}\r\n" for rel, label in files.items())
                        .encode("utf-8"))
    labels = root / "label_list.txt"
    labels.write_bytes(b"\xef\xbb\xbf" + "".join(f"{i} 类别 {i}\r\n" for i in range(10)).encode("utf-8"))
    weights = _recalibrated_weights(files, root, root.parent / "weights")
    config = tiny_config(root, root.parent / "out", arch=ARCH, class_num=10)
    eval_section = config["DataLoader"]["Eval"]
    eval_section["dataset"].update(cls_label_path=str(listing), transform_ops=INFER_OPS_32PX)
    config["DataLoader"]["Train"] = eval_section
    config["Global"].update(pretrained_model=str(weights), save_inference_dir=str(root.parent / "inference"))
    config["Infer"].update(infer_imgs=str(listing), transforms=INFER_OPS_32PX,
                           PostProcess={"name": "Topk", "topk": 3, "class_id_map_file": str(labels)})
    config_path = write_config(config, root.parent / "config.yaml")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "export_model.py"), "-c", config_path, "--onnx"],
                          capture_output=True, text=True, cwd=REPO_ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    paths = [str(root / rel) for rel in files]
    return {"root": root, "files": files, "paths": paths, "listing": listing, "config": config_path,
            "model_dir": root.parent / "inference", "env": env}


def _loader_tensors(config_path):
    """What training's Eval loader feeds the model, in list order."""
    from ppcls_lite.data import build_dataloader
    from ppcls_lite.config import get_config

    config = get_config(config_path)
    loader = build_dataloader(config["DataLoader"], "Eval", "cpu", 0, 10)
    return np.concatenate([np.asarray(images) for images, _ in loader])


def _infer_tensors(config_path, paths):
    """What tools/infer.py feeds the model: the infer ops that build_engine makes, read the way Engine.infer reads."""
    from ppcls_lite.engine import build_engine
    from ppcls_lite.pipeline import load_file, to_chw_float32
    from ppcls_lite.config import get_config

    engine = build_engine(get_config(config_path), "infer")
    return np.stack([load_file(p, engine.infer_ops, to_chw_float32) for p in paths])


# Run by the export folder's own predict_cls.py + its ppcls_lite/ copy (pipeline and predict only), with paddle and
# the rest of ppcls_lite unimportable; every ppcls_lite module it loads must come from the export folder.
ISOLATED = r"""
import importlib.abc, runpy, sys
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        parts = name.split(".")
        if parts[0] == "paddle" or (parts[0] == "ppcls_lite" and parts[1:2] not in ([], ["pipeline"], ["predict"])):
            raise ImportError("blocked in this test: " + name)
sys.meta_path.insert(0, Blocker())
model_dir, tensors_out = sys.argv[1], sys.argv[2]
sys.path.insert(0, model_dir)
import numpy as np
import predict_cls
assert predict_cls.pipeline.__file__.startswith(model_dir), predict_cls.pipeline.__file__
outside = [m.__file__ for n, m in list(sys.modules.items()) if n.split(".")[0] == "ppcls_lite"
           and not m.__file__.startswith(model_dir)]
assert not outside, outside
paths = predict_cls.collect_inputs(sys.argv[3])
predictor = predict_cls.Predictor(model_dir, backend="onnxruntime", threads=1)
np.save(tensors_out, np.stack([predictor.load_file(p) for p in paths]))
sys.argv = ["predict_cls.py", "--model_dir", model_dir, "--input", sys.argv[3], "--backend", "onnxruntime",
            "--batch_size", "4", "--threads", "1", "--output", sys.argv[4]]
runpy.run_path(model_dir + "/predict_cls.py", run_name="__main__")
"""


@pytest.mark.slow
def test_same_tensors_and_predictions_everywhere(setup, tmp_path):
    paths = setup["paths"]
    loader = _loader_tensors(setup["config"])
    infer = _infer_tensors(setup["config"], paths)
    assert loader.shape == (len(paths), 3, 32, 32) and loader.dtype == np.float32
    np.testing.assert_array_equal(infer, loader)

    # the export folder on its own, copied to another place, without paddle or ppcls_lite
    deployed = tmp_path / "部署 folder"
    shutil.copytree(setup["model_dir"], deployed)
    assert (deployed / "ppcls_lite" / "pipeline" / "decode.py").is_file() and (deployed / "predict_cls.py").is_file()
    out = tmp_path / "onnx preds.jsonl"
    proc = subprocess.run([sys.executable, "-c", ISOLATED, str(deployed), str(tmp_path / "t.npy"),
                           str(setup["listing"]), str(out)], capture_output=True, text=True,
                          cwd=tmp_path, env=setup["env"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "t.npy"), loader)
    onnx_results = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]

    # the repo's predictor with Paddle Inference, in this process
    predictor = predict.Predictor(setup["model_dir"], backend="paddle", batch_size=4, threads=1)
    np.testing.assert_array_equal(np.stack([predictor.load_file(p) for p in paths]), loader)
    paddle_results = predictor.predict_files(paths)

    infer_out = tmp_path / "infer.jsonl"
    proc = subprocess.run([sys.executable, "tools/infer.py", "-c", setup["config"], "--output", str(infer_out)],
                          capture_output=True, text=True, cwd=REPO_ROOT, env=setup["env"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = [json.loads(line) for line in infer_out.read_text(encoding="utf-8").splitlines()]
    assert [r["file_name"] for r in expected] == paths
    assert len({r["class_ids"][0] for r in expected}) >= 2, "all images get one class: the check would be weak"
    for backend, results in (("paddle", paddle_results), ("onnxruntime", onnx_results)):
        assert [r["file_name"] for r in results] == paths
        for got, ref in zip(results, expected):
            assert list(got) == ["file_name", "class_ids", "scores", "label_names"]
            assert got["class_ids"][0] == ref["class_ids"][0], f"{backend}: top-1 differs on {got['file_name']}"
            np.testing.assert_allclose(got["scores"], ref["scores"], atol=TOLERANCE[backend])
            assert got["label_names"][0] == ref["label_names"][0] == f"类别 {ref['class_ids'][0]}"


@pytest.mark.slow
def test_orientation_is_really_applied(setup):
    predictor = predict.Predictor(setup["model_dir"], backend="onnxruntime", threads=1)
    root = setup["root"]
    tensor = {o: predictor.load_file(root / f"手机 photos/IMG 竖 {o}.jpg") for o in (1, 3, 6, 8)}
    # The EXIF-6 JPEG is the hand-rotated photo (stored from a full-size decode): exact at full size. The export
    # decodes these JPEGs at 1/8 (reduced-size decoding, tests/test_reduced_decode.py checks its orientation).
    full_size = with_params(predictor.config["PreProcess"]["transform_ops"], "DecodeImage", reduced_decode=False)
    full_size_ops = predict.build_preprocess(full_size)
    np.testing.assert_array_equal(
        pipeline.transform((root / "手机 photos/IMG 竖 6.jpg").read_bytes(), full_size_ops),
        pipeline.transform((root / "hand rotated/旋转 6.png").read_bytes(), full_size_ops))
    # the bar left of centre: vertical in the stored photo, horizontal after the 90 degree turns
    for o in (1, 3):
        assert np.abs(tensor[o] - tensor[6]).mean() > 0.3
    column_spread = {o: tensor[o][0].mean(axis=0).std() for o in tensor}  # varies across columns: vertical bar
    row_spread = {o: tensor[o][0].mean(axis=1).std() for o in tensor}
    assert column_spread[1] > 2 * row_spread[1] and column_spread[3] > 2 * row_spread[3]
    assert row_spread[6] > 2 * column_spread[6] and row_spread[8] > 2 * column_spread[8]
    results = predictor.predict([(root / "hand rotated/旋转 6.png").read_bytes(),
                                 (root / "手机 photos/IMG 竖 6.jpg").read_bytes()])
    assert results[0]["class_ids"][0] == results[1]["class_ids"][0]  # same top-1 from the reduced decode


@pytest.mark.slow
def test_infer_reports_each_unreadable_input_and_predicts_the_rest(setup, tmp_path):
    folder = tmp_path / "mixed 混合"
    shutil.copytree(setup["root"] / "misc", folder)
    good = sorted(str(p) for p in folder.iterdir())
    jpeg = (folder / "grey 灰.jpg").read_bytes()
    (folder / "truncated 截断.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.webp").write_bytes(b"this is not an image")
    out = tmp_path / "preds.csv"
    proc = subprocess.run([sys.executable, "tools/infer.py", "-c", setup["config"], "-o", f"Infer.infer_imgs={folder}",
                           "--output", str(out)], capture_output=True, text=True, cwd=REPO_ROOT, env=setup["env"])
    assert proc.returncode == 3, proc.stderr[-3000:]
    for name, reason in (("truncated 截断.jpg", "truncated"), ("empty.png", "empty"),
                         ("text.webp", "cannot decode")):
        line = next(l for l in proc.stderr.splitlines() if f"cannot predict {folder / name}" in l)
        assert reason in line
    assert "3 of 11 inputs could not be predicted" in proc.stderr
    rows = out.read_text(encoding="utf-8").splitlines()
    assert rows[0] == "file_name,class_ids,scores,label_names" and len(rows) == 1 + len(good)
    assert sorted(r.split(",")[0] for r in rows[1:]) == good


@pytest.mark.slow
def test_changed_model_file_and_non_finite_outputs(setup, tmp_path):
    model_dir = tmp_path / "inference"
    shutil.copytree(setup["model_dir"], model_dir)
    info = yaml.safe_load((model_dir / "inference.yml").read_text(encoding="utf-8"))["Global"]
    assert set(info["sha256"]) >= {"inference.json", "inference.pdiparams", "model.onnx"}
    onnx = bytearray((model_dir / "model.onnx").read_bytes())
    onnx[-300:-100] = bytes(200)  # 200 bytes of the weights overwritten
    (model_dir / "model.onnx").write_bytes(bytes(onnx))
    proc = subprocess.run([sys.executable, str(PREDICT_SCRIPT), "--model_dir", str(model_dir), "--input",
                           setup["paths"][0], "--backend", "onnxruntime", "--output", str(tmp_path / "p.jsonl")],
                          capture_output=True, text=True, env=setup["env"])
    assert proc.returncode == 1 and proc.stderr.startswith("error: ")
    assert str(model_dir / "model.onnx") in proc.stderr and "changed since it was exported" in proc.stderr
    assert not (tmp_path / "p.jsonl").exists()
    # the Paddle model still loads; a NaN bias makes every score NaN: reported per input, nothing written
    import ppcls_lite.export as export
    from ppcls_lite.arch import build_model
    from ppcls_lite.utils.save_load import load_pretrained

    model = build_model({"name": ARCH, "class_num": 10})
    load_pretrained(model, str(Path(yaml.safe_load(open(setup["config"]))["Global"]["pretrained_model"])))
    model.fc.bias.set_value(np.full([10], np.nan, dtype=np.float32))
    nan_dir = tmp_path / "nan model"
    export.export_model(model, nan_dir, (32, 32), export.normalize_transform_ops(INFER_OPS_32PX), class_num=10)
    out = tmp_path / "nan.jsonl"
    proc = subprocess.run([sys.executable, str(PREDICT_SCRIPT), "--model_dir", str(nan_dir), "--input",
                           str(setup["listing"]), "--threads", "1", "--output", str(out)],
                          capture_output=True, text=True, env=setup["env"])
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert proc.stderr.count("non-finite scores") == len(setup["paths"])
    assert out.read_text() == ""  # valid (empty) JSON lines: no NaN predictions


@pytest.mark.slow
def test_unwritable_output_is_one_line(setup, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    target = blocker / "preds.csv"
    proc = subprocess.run([sys.executable, str(PREDICT_SCRIPT), "--model_dir", str(setup["model_dir"]), "--input",
                           setup["paths"][0], "--backend", "onnxruntime", "--threads", "1", "--output", str(target)],
                          capture_output=True, text=True, env=setup["env"])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot write {target}: ") and "[ENOTDIR]" in last


PIL_RECIPE = [  # PaddleClas's ImageNet Eval/Infer ops (pil decode and bicubic resize), scaled down to 32 px
    {"DecodeImage": {"to_rgb": True, "channel_first": False, "backend": "pil"}},
    {"ResizeImage": {"resize_short": 36, "interpolation": "bicubic", "backend": "pil"}},
    {"CropImage": {"size": 32}},
    {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                        "order": ""}},
    {"ToCHWImage": None},
]


def test_pil_recipe_gives_the_same_tensors_in_training_and_the_predictor(tmp_path):
    from ppcls_lite.data.dataset import ImageNetDataset
    from ppcls_lite.export import normalize_transform_ops

    root = tmp_path / "用户 data"
    files = make_awkward_files(root)
    listing = root / "list.txt"
    listing.write_text("".join(f"{rel} {label}\n" for rel, label in files.items()), encoding="utf-8")
    dataset = ImageNetDataset(str(root), str(listing), transform_ops=PIL_RECIPE)
    deploy_ops = predict.build_preprocess(normalize_transform_ops(PIL_RECIPE))
    for i, rel in enumerate(files):
        expected = dataset[i][0]
        got = pipeline.transform((root / rel).read_bytes(), deploy_ops)
        assert got.dtype == expected.dtype == np.float32 and got.shape == (3, 32, 32)
        np.testing.assert_array_equal(got, expected, err_msg=rel)
    rows = list(files)
    full_size = ImageNetDataset(str(root), str(listing),  # the hand-rotated PNG was stored from a full-size decode
                                transform_ops=with_params(PIL_RECIPE, "DecodeImage", reduced_decode=False))
    np.testing.assert_array_equal(full_size[rows.index("手机 photos/IMG 竖 6.jpg")][0],
                                  full_size[rows.index("hand rotated/旋转 6.png")][0])


@pytest.mark.slow
def test_missing_file_in_a_list_is_one_failed_input(setup, tmp_path):
    listing = tmp_path / "list with gap.txt"
    listing.write_text(f"{setup['paths'][0]} 0\n{tmp_path / 'gone 没有.jpg'} 1\n{setup['paths'][1]} 2\n",
                       encoding="utf-8")
    out = tmp_path / "p.jsonl"
    proc = subprocess.run([sys.executable, "tools/infer.py", "-c", setup["config"], "-o", f"Infer.infer_imgs={listing}",
                           "--output", str(out)], capture_output=True, text=True, cwd=REPO_ROOT, env=setup["env"])
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert f"cannot predict {tmp_path / 'gone 没有.jpg'}: file not found" in proc.stderr
    assert [json.loads(line)["file_name"] for line in out.read_text(encoding="utf-8").splitlines()] == \
        setup["paths"][:2]


def _stripes_dataset(root, n_train=400, n_val=16, size=48):
    """Vertical (label 0) and horizontal (label 1) stripes of random period, phase and colours."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / split).mkdir(parents=True)
        lines = []
        for i in range(n):
            label, period = i % 2, int(rng.integers(4, 9))
            img = np.empty((size, size, 3), np.uint8)
            img[:] = rng.integers(0, 100, 3)
            on = (np.arange(size) + int(rng.integers(0, period))) % period < period // 2
            if label == 0:
                img[:, on] = rng.integers(155, 256, 3)
            else:
                img[on, :] = rng.integers(155, 256, 3)
            cv2.imwrite(str(root / split / f"{i}.png"), img)
            lines.append(f"{split}/{i}.png {label}")
        (root / f"{split}_list.txt").write_text("\n".join(lines) + "\n")
    (root / "label_list.txt").write_text("0 vertical\n1 horizontal\n")


def _phone_photo(path, orientation):
    """640x480 as stored, horizontal stripes 80 px apart; with orientation 6 a viewer shows vertical stripes."""
    img = np.empty((480, 640, 3), np.uint8)
    img[:] = (40, 60, 50)
    img[(np.arange(480) % 80) < 40, :] = (230, 220, 200)
    exif = Image.Exif()
    exif[0x0112] = orientation
    save_pil(Image.fromarray(img), path, "JPEG", quality=90, exif=exif)


@pytest.mark.slow
def test_a_stripes_model_sees_phone_photos_upright_everywhere(tmp_path):
    """The failure users met: a phone photo with EXIF orientation 6 must be 'vertical' for infer and the predictor."""
    pytest.importorskip("paddle2onnx")
    pytest.importorskip("onnxruntime")
    data = tmp_path / "stripes"
    _stripes_dataset(data)
    config = tiny_config(data, tmp_path / "out", arch="MobileNetV1_x0_25", class_num=2, epochs=2, lr=0.05)
    for mode in ("Train", "Eval"):
        config["DataLoader"][mode]["dataset"]["transform_ops"] = INFER_OPS_32PX
        config["DataLoader"][mode]["sampler"]["batch_size"] = 8
    config["Loss"]["Train"] = [{"CELoss": {"weight": 1.0}}]
    photos = {"vertical": tmp_path / "phone 竖 6.jpg", "horizontal": tmp_path / "phone 横 1.jpg"}
    _phone_photo(photos["vertical"], 6)
    _phone_photo(photos["horizontal"], 1)
    listing = tmp_path / "photos.txt"
    listing.write_text("".join(f"{p}\n" for p in photos.values()), encoding="utf-8")
    weights = tmp_path / "out" / "MobileNetV1_x0_25" / "best_model"
    config["Global"].update(pretrained_model=str(weights), save_inference_dir=str(tmp_path / "inference"))
    config["Infer"].update(infer_imgs=str(listing), transforms=INFER_OPS_32PX)
    config_path = write_config(config, tmp_path / "config.yaml")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for tool, extra in (("train.py", ["-o", "Global.pretrained_model=null"]), ("export_model.py", ["--onnx"])):
        proc = subprocess.run([sys.executable, f"tools/{tool}", "-c", config_path, *extra], capture_output=True,
                              text=True, cwd=REPO_ROOT, env=env)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    infer_out = tmp_path / "infer.jsonl"
    proc = subprocess.run([sys.executable, "tools/infer.py", "-c", config_path, "--output", str(infer_out)],
                          capture_output=True, text=True, cwd=REPO_ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    infer = {r["file_name"]: r for r in map(json.loads, infer_out.read_text(encoding="utf-8").splitlines())}
    for backend in ("paddle", "onnxruntime"):
        results = predict.Predictor(tmp_path / "inference", backend=backend, threads=1).predict_files(
            [str(p) for p in photos.values()])
        for expected, result in zip(photos, results):
            ref = infer[result["file_name"]]
            assert result["label_names"][0] == ref["label_names"][0] == expected, (backend, result, ref)
            assert result["scores"][0] > 0.9 and abs(result["scores"][0] - ref["scores"][0]) < TOLERANCE[backend]
