"""PaddleClas's two MobileNet retrieval configs, shipped in configs/, run through the tools unchanged but for data
paths, batch size, workers, epochs and device (and the DLBHC head's class count, which is the data's): train,
evaluate (printing Recall@1 and mAP), infer embeddings, export them (Paddle, ONNX, MNN) for the predictor, search
a gallery with the exported model, and evaluate over two processes exactly as in one.

One training run per config (module fixtures) serves every test; images are tiny PNGs upscaled by the configs' own
224 px preprocessing. The DLBHC config's `Backbone.pretrained: True` downloads MobileNetV3_large_x1_0 weights from a
127.0.0.1 server standing in for PaddleClas's host.
"""
import io
import json
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest

from helpers import REPO_ROOT, TOOLS_DIR, make_image_folder, read_metrics, run_tool, run_train, subprocess_env
from ppcls_lite.arch import build_model
from ppcls_lite.arch.pretrained import pretrained_url
from ppcls_lite.predict import Predictor
from ppcls_lite.predict.search import GalleryIndex, search_files

pytestmark = pytest.mark.slow

MOBILENET_V1 = REPO_ROOT / "configs" / "quick_start" / "MobileNetV1_retrieval.yaml"
DLBHC = REPO_ROOT / "configs" / "Products" / "MV3_Large_1x_Aliproduct_DLBHC.yaml"
IDENTITIES = ("circle", "square", "stripes", "disc")


def overrides(**values):
    return [f"{key}={value}" for key, value in values.items()]


def retrieval_data(root):
    """4 identities x 8 images (32 px PNGs): train lists (4 images each) and a test list with camera ids (13
    images: odd, so two processes pad it)."""
    root = make_image_folder(root, class_names=IDENTITIES, per_class=8, size=32, seed=3)
    lines = (root / "val_list.txt").read_text().split()
    pairs = list(zip(lines[::2], lines[1::2]))[:12]  # (path, identity): 4 per identity, the last one left out
    test = [f"{path} {label} {i % 2}" for i, (path, label) in enumerate(pairs)]  # cameras 0/1
    test.append(f"{(root / 'train_list.txt').read_text().split()[0]} 0 1")
    (root / "test_list.txt").write_text("\n".join(test) + "\n")
    return root


def data_overrides(root, modes):
    """Data paths of the dataset sections under each of `modes` (e.g. DataLoader.Eval.Query)."""
    out = []
    for mode, list_name in modes:
        out += [f"DataLoader.{mode}.dataset.image_root={root}", f"DataLoader.{mode}.dataset.cls_label_path="
                f"{root / list_name}", f"DataLoader.{mode}.loader.num_workers=0"]
    return out


@pytest.fixture(scope="module")
def mv1(tmp_path_factory):
    """configs/quick_start/MobileNetV1_retrieval.yaml trained for 2 epochs on the tiny identities."""
    tmp = tmp_path_factory.mktemp("mv1")
    root = retrieval_data(tmp / "data")
    common = data_overrides(root, [("Eval.Query", "test_list.txt"), ("Eval.Gallery", "test_list.txt")]) + overrides(
        **{"Global.device": "cpu", "Global.output_dir": tmp / "out", "Global.save_inference_dir": tmp / "inference",
           "DataLoader.Eval.Query.sampler.batch_size": 4, "DataLoader.Eval.Gallery.sampler.batch_size": 4})
    train = data_overrides(root, [("Train", "train_list.txt")]) + overrides(
        **{"Global.epochs": 2, "DataLoader.Train.sampler.batch_size": 8})
    proc = run_train(MOBILENET_V1, *common, *train, timeout=900)
    weights = tmp / "out" / "RecModel" / "best_model"
    return {"tmp": tmp, "root": root, "common": common, "weights": weights, "train": proc,
            "run_dir": tmp / "out" / "RecModel"}


def tool(name, config, *items, check=True, timeout=600, env=None):
    args = ["-c", config, *[part for item in items for part in ("-o", str(item))]]
    proc = run_tool(name, *args, timeout=timeout, env=env)
    if check:
        assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def eval_line(output):
    """{metric: value} of the `eval: ...` line tools/eval.py prints."""
    line = [ln for ln in output.splitlines() if ln.startswith("eval: ")][-1]
    return {k: float(v) for k, v in re.findall(r"(\w+): ([-\d.e+naninf]+)", line)}


def test_mobilenet_v1_trains_and_evaluates_by_recall_and_map(mv1):
    rows = read_metrics(mv1["run_dir"])
    assert {"eval_recall1", "eval_recall5", "eval_mAP"} <= set(rows[0]) and len(rows) == 2
    assert (mv1["run_dir"] / "best_model.pdparams").exists()
    log = (mv1["run_dir"] / "train.log").read_text()
    assert "[Eval][Epoch 2][Avg] recall1: " in log and "mAP: " in log and "13 queries, 13 gallery images" in log
    proc = tool("eval.py", MOBILENET_V1, *mv1["common"], f"Global.pretrained_model={mv1['weights']}")
    result = eval_line(proc.stdout)
    assert set(result) == {"recall1", "recall5", "mAP"}
    best = max(rows, key=lambda row: float(row["eval_recall1"]))  # best_model: the epoch of the best Recall@1
    assert result == pytest.approx({k: float(best[f"eval_{k}"]) for k in result}, abs=1e-5)
    assert 0 <= result["mAP"] <= 1


def test_mobilenet_v1_infer_export_predictor_and_search(mv1, tmp_path):
    root, weights = mv1["root"], mv1["weights"]
    # tools/infer.py: the config has no Infer section; the Query preprocessing embeds the images
    proc = tool("infer.py", MOBILENET_V1, *mv1["common"], f"Global.pretrained_model={weights}",
                f"Infer.infer_imgs={root / 'circle'}")
    infer = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(infer) == 8 and set(infer[0]) == {"file_name", "features"}
    vectors = np.array([r["features"] for r in infer])
    assert vectors.shape == (8, 512) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    # export: features out, for Paddle / onnxruntime / MNN, checked by --verify
    proc = run_tool("export_model.py", "-c", MOBILENET_V1, *[p for o in mv1["common"] for p in ("-o", o)],
                    "-o", f"Global.pretrained_model={weights}", "--onnx", "--mnn", "--verify", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    export = mv1["tmp"] / "inference"
    report = json.loads((export / "export_report.json").read_text())
    assert report["passed"] and {e["backend"] for e in report["variants"]} >= {"paddle", "onnxruntime", "mnn"}
    info = (export / "inference.yml").read_text()
    assert "output: features" in info and "Embedding:" in info
    files = sorted(str(p) for p in (root / "circle").glob("*.png"))
    for backend in ("paddle", "onnxruntime", "mnn"):
        results = Predictor(export, backend=backend, batch_size=4).predict_files(files)
        got = np.array([r["features"] for r in results])
        np.testing.assert_allclose(got, vectors, atol=2e-4, err_msg=backend)  # predictor == tools/infer.py

    # search: a re-encoded copy of a gallery image finds that image first (index built by the CLI)
    index_file = tmp_path / "gallery.npz"
    proc = run_tool("search.py", "build", "--model_dir", export, "--gallery", root, "--index", index_file)
    assert proc.returncode == 0 and "indexed 32 images (512-d features)" in proc.stderr, proc.stderr[-2000:]
    originals = [root / "square" / "3.png", root / "disc" / "6.png", root / "circle" / "0.png"]
    copies = []
    for i, original in enumerate(originals):
        copies.append(tmp_path / f"copy{i}.jpg")
        cv2.imwrite(str(copies[-1]), cv2.imread(str(original)), [cv2.IMWRITE_JPEG_QUALITY, 90])
    proc = run_tool("search.py", "query", "--model_dir", export, "--index", index_file, "--input", copies[0],
                    "--topk", "3", "--output", tmp_path / "matches.csv")
    assert proc.returncode == 0, proc.stderr[-2000:]
    first = proc.stdout.splitlines()[1].split()
    assert first[0] == "1" and first[2] == str(originals[0]) and first[3] == "square"
    assert (tmp_path / "matches.csv").read_text().splitlines()[1].startswith(f"{copies[0]},1,{originals[0]},square,")
    predictor = Predictor(export, backend="onnxruntime")
    matches = search_files(predictor, GalleryIndex.load(index_file), [str(c) for c in copies], topk=2,
                           engine="numpy")
    assert [m["matches"][0]["file_name"] for m in matches] == [str(o) for o in originals]
    assert all(m["matches"][0]["score"] > m["matches"][1]["score"] for m in matches)
    assert [m["matches"][0]["label"] for m in matches] == ["square", "disc", "circle"]


def test_retrieval_eval_over_two_processes_equals_one(mv1):
    single = eval_line(tool("eval.py", MOBILENET_V1, *mv1["common"],
                            f"Global.pretrained_model={mv1['weights']}").stdout)
    log_dir = mv1["tmp"] / "dist_log"
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir", str(log_dir),
           str(TOOLS_DIR / "eval.py"), "-c", str(MOBILENET_V1),
           *[p for o in mv1["common"] + [f"Global.pretrained_model={mv1['weights']}"] for p in ("-o", o)]]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=subprocess_env())
    logs = {p.name: p.read_text() for p in Path(log_dir).glob("workerlog.*")}
    assert proc.returncode == 0, f"{proc.stderr[-2000:]}\n" + "\n".join(v[-2000:] for v in logs.values())
    dist = eval_line(logs["workerlog.0"])
    assert dist == pytest.approx(single, abs=1e-9)  # every query of the 13 ranked once, padding dropped


# ------------------------------------------------------------------------------------------------ DLBHC
@pytest.fixture(scope="module")
def weights_host(tmp_path_factory):
    """A 127.0.0.1 server holding MobileNetV3_large_x1_0 ImageNet-shaped weights at PaddleClas's URL path."""
    from helpers import LoopbackServer, Route

    paddle.seed(11)
    served = build_model({"name": "MobileNetV3_large_x1_0", "class_num": 1000})
    buffer = io.BytesIO()
    paddle.save({k: v.numpy() for k, v in served.state_dict().items()}, buffer)
    with LoopbackServer() as server:
        server.routes[urllib.parse.urlsplit(pretrained_url("MobileNetV3_large_x1_0")).path] = Route(buffer.getvalue())
        yield {"PPCLS_LITE_WEIGHTS_MIRROR": server.url,
               "PPCLS_LITE_HOME": str(tmp_path_factory.mktemp("cache"))}, server, served


@pytest.fixture(scope="module")
def dlbhc(tmp_path_factory, weights_host):
    env, server, _ = weights_host
    tmp = tmp_path_factory.mktemp("dlbhc")
    root = make_image_folder(tmp / "data", class_names=IDENTITIES, per_class=4, size=32, seed=5)
    common = data_overrides(root, [("Eval", "val_list.txt")]) + overrides(
        **{"Global.device": "cpu", "Global.output_dir": tmp / "out", "Arch.Head.class_num": len(IDENTITIES),
           "DataLoader.Eval.sampler.batch_size": 4})
    train = data_overrides(root, [("Train", "train_list.txt")]) + overrides(
        **{"Global.epochs": 1, "DataLoader.Train.sampler.batch_size": 4})
    proc = run_train(DLBHC, *common, *train, env=env, timeout=900)
    return {"tmp": tmp, "root": root, "common": common, "env": env, "train": proc, "server": server,
            "weights": tmp / "out" / "RecModel" / "best_model"}


def test_dlbhc_trains_from_downloaded_backbone_weights_and_evaluates_both_ways(dlbhc, weights_host):
    _, server, _ = weights_host
    assert len(server.requests) == 1 and server.requests[0][0].endswith("MobileNetV3_large_x1_0_pretrained.pdparams")
    log = (dlbhc["tmp"] / "out" / "RecModel" / "train.log").read_text()
    assert "[Eval][Epoch 1][Avg]" in log and "top1: " in log  # as shipped: classification eval (TopkAcc)
    weights = f"Global.pretrained_model={dlbhc['weights']}"
    as_shipped = eval_line(tool("eval.py", DLBHC, *dlbhc["common"], weights, env=dlbhc["env"]).stdout)
    assert set(as_shipped) == {"loss", "top1", "top5"}  # the name the config asks for, as PaddleClas
    retrieval = eval_line(tool("eval.py", DLBHC, *dlbhc["common"], weights, "Global.eval_mode=retrieval",
                               "Metric.Eval=[{Recallk: {topk: [1, 5]}}, {mAP: {}}]", env=dlbhc["env"]).stdout)
    assert len(server.requests) == 1  # the backbone weights came from the cache after the first download
    assert set(retrieval) == {"recall1", "recall5", "mAP"} and 0 <= retrieval["recall1"] <= 1


def test_dlbhc_infer_gives_binary_codes(dlbhc):
    proc = tool("infer.py", DLBHC, *dlbhc["common"], f"Global.pretrained_model={dlbhc['weights']}",
                f"Infer.infer_imgs={dlbhc['root'] / 'square'}", env=dlbhc["env"])
    codes = np.array([json.loads(line)["features"] for line in proc.stdout.splitlines() if line.startswith("{")])
    assert codes.shape == (4, 512)
    assert np.all(np.mod(codes, 2) == 1)  # feature_binarize round: round(x) * 2 - 1 is an odd integer
    assert "Infer.PostProcess (Topk) is not used" in proc.stderr + proc.stdout
