"""deploy/python/predict_cls.py: same tensors as the training ops, both backends, inputs, batching, bad images,
output files, and no dependency on ppcls_lite."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest
import yaml

from helpers import INFER_OPS_32PX as INFER_OPS, PREDICTOR_DIR, REPO_ROOT
from ppcls_lite import predict
from ppcls_lite.data.preprocess import create_operators, transform
from ppcls_lite.export import export_model, normalize_transform_ops

PREDICT_SCRIPT = PREDICTOR_DIR / "predict_cls.py"

LABELS = [f"name {i}" for i in range(10)]


def _images(root):
    """Odd sizes and channel layouts that exercise decode/resize/crop, plus one corrupt file."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(root / "a_color.jpg"), rng.integers(0, 256, (50, 70, 3), dtype=np.uint8))
    cv2.imwrite(str(root / "b_gray.png"), rng.integers(0, 256, (41, 37), dtype=np.uint8))
    cv2.imwrite(str(root / "c_rgba.png"), rng.integers(0, 256, (64, 48, 4), dtype=np.uint8))
    smooth = cv2.GaussianBlur(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8), (9, 9), 3)
    cv2.imwrite(str(root / "d_smooth.png"), smooth)
    (root / "sub").mkdir()
    cv2.imwrite(str(root / "sub" / "e_small.bmp"), rng.integers(0, 256, (36, 36, 3), dtype=np.uint8))
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return _images(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def parity_model(reference_dir):
    from ppcls_lite.arch import build_model
    from ppcls_lite.utils.save_load import load_pretrained

    model = build_model({"name": "MobileNetV3_small_x0_35", "class_num": 10})
    load_pretrained(model, str(reference_dir / "parity" / "MobileNetV3_small_x0_35"))
    model.eval()
    return model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, parity_model):
    pytest.importorskip("paddle2onnx")
    pytest.importorskip("onnxruntime")
    out = tmp_path_factory.mktemp("export")
    export_model(parity_model, out, (32, 32), normalize_transform_ops(INFER_OPS), class_num=10, topk=3,
                 label_list=LABELS, model_name="MobileNetV3_small_x0_35", onnx=True)
    return out


# ---------------------------------------------------------------------------------------------- preprocessing

PREPROCESS_VARIANTS = {
    "cv2_resize_short_crop": INFER_OPS,
    "pil_bicubic_fixed_size_bgr": [{"DecodeImage": {"to_rgb": False}},
                                   {"ResizeImage": {"size": [40, 30], "interpolation": "bicubic", "backend": "pil"}},
                                   {"NormalizeImage": {"scale": 0.00392, "mean": [0.5, 0.5, 0.5],
                                                       "std": [0.5, 0.5, 0.5]}},
                                   {"ToCHWImage": None}],
    "pil_decode_area_chw_normalize": [{"DecodeImage": {"to_rgb": True, "backend": "pil"}},
                                      {"ResizeImage": {"resize_short": 33, "interpolation": "area"}},
                                      {"CropImage": {"size": 32}}, {"ToCHWImage": None},
                                      {"NormalizeImage": {"order": "chw"}}],
    "no_to_chw_lanczos": [{"DecodeImage": {"to_rgb": True}},
                          {"ResizeImage": {"resize_short": 40, "interpolation": "lanczos", "backend": "pil"}},
                          {"CropImage": {"size": [36, 32]}}, {"NormalizeImage": {}}],
}


@pytest.mark.parametrize("variant", sorted(PREPROCESS_VARIANTS))
def test_preprocess_is_bit_identical_to_training_ops(images, variant):
    ops = PREPROCESS_VARIANTS[variant]
    train_ops = create_operators(ops)
    deploy_ops = predict.build_preprocess(normalize_transform_ops(ops))
    for path in images:
        data = Path(path).read_bytes()
        expected = transform(data, train_ops)
        if expected.shape[0] != 3:  # the dataset / infer transpose HWC output
            expected = expected.transpose(2, 0, 1)
        got = data
        for op in deploy_ops:
            got = op(got)
        assert got.dtype == expected.dtype == np.float32
        assert np.array_equal(np.ascontiguousarray(got), expected), f"{variant}: {path} differs"


def test_corrupt_and_empty_images_raise_read_errors():
    decode = predict.build_preprocess([{"DecodeImage": {}}])[0]
    with pytest.raises(predict.ImageReadError):
        decode(b"")
    with pytest.raises(predict.ImageReadError):
        decode(b"\xff\xd8\xff\xe0 not really a jpeg")


def test_collect_inputs_folder_list_and_single(tmp_path, images):
    root = Path(images[0]).parent
    assert predict.collect_inputs(str(root)) == images  # recursive and sorted
    assert predict.collect_inputs(images[1]) == [images[1]]
    listing = tmp_path / "list.txt"
    rel = [str(Path(p).relative_to(root)) for p in images[:2]]
    listing.write_text(f"{rel[0]} 3\n\n{images[1]} 1\n")  # relative (to the list file) and absolute paths
    (tmp_path / rel[0]).write_bytes(Path(images[0]).read_bytes())
    assert predict.collect_inputs(str(listing)) == [str(tmp_path / rel[0]), images[1]]
    with pytest.raises(FileNotFoundError, match="--input"):
        predict.collect_inputs(str(tmp_path / "nothing_here"))


def test_missing_model_dir_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="export_model.py"):
        predict.Predictor(tmp_path)


# ---------------------------------------------------------------------------------------------- backends


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["paddle", "onnxruntime"])
def test_predictions_match_dygraph_model(model_dir, parity_model, images, backend):
    predictor = predict.Predictor(model_dir, backend=backend, batch_size=2, threads=1)
    results = predictor.predict_files(images)
    assert [r["file_name"] for r in results] == images
    ops = create_operators(INFER_OPS)
    batch = np.stack([transform(Path(p).read_bytes(), ops) for p in images])
    with paddle.no_grad():
        probs = paddle.nn.functional.softmax(parity_model(paddle.to_tensor(batch)), axis=-1).numpy()
    tolerance = 1e-5 if backend == "paddle" else 1e-4
    for result, row in zip(results, probs):
        expected_ids = np.argsort(-row, kind="stable")[:3]
        assert result["class_ids"] == [int(i) for i in expected_ids]
        np.testing.assert_allclose(result["scores"], row[expected_ids], atol=tolerance)
        assert result["label_names"] == [LABELS[i] for i in expected_ids]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["paddle", "onnxruntime"])
def test_batching_gives_the_same_results_as_batch_1(model_dir, images, backend):
    one = predict.Predictor(model_dir, backend=backend, batch_size=1, threads=1).predict_files(images)
    many = predict.Predictor(model_dir, backend=backend, batch_size=4, threads=1).predict_files(images)
    assert len(one) == len(many) == len(images)  # 5 images: one full batch of 4 and a partial batch of 1
    for a, b in zip(one, many):
        assert a["file_name"] == b["file_name"] and a["class_ids"] == b["class_ids"]
        np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["paddle", "onnxruntime"])
def test_corrupt_image_is_reported_and_skipped(model_dir, images, tmp_path, backend, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated garbage")
    missing = tmp_path / "gone.png"
    paths = [images[0], str(bad), images[1], str(missing), images[2]]
    predictor = predict.Predictor(model_dir, backend=backend, batch_size=2, threads=1)
    results = predictor.predict_files(paths)
    assert [r["file_name"] for r in results] == [images[0], images[1], images[2]]
    assert [s[0] for s in predictor.failures] == [str(bad), str(missing)]
    assert "file not found" in predictor.failures[1][1]
    assert str(bad) in capsys.readouterr().err
    # in-memory API: decoded arrays give the same answer as the file
    rgb = cv2.cvtColor(cv2.imread(images[0]), cv2.COLOR_BGR2RGB)
    assert predictor.predict([rgb])[0]["class_ids"] == results[0]["class_ids"]


@pytest.mark.slow
@pytest.mark.parametrize("backend,suffix", [("paddle", ".csv"), ("onnxruntime", ".jsonl")])
def test_cli_writes_csv_and_jsonl(model_dir, images, tmp_path, backend, suffix):
    root = Path(images[0]).parent
    (root / "zz_corrupt.png").write_bytes(b"not an image")
    try:
        out = tmp_path / f"pred{suffix}"
        proc = subprocess.run([sys.executable, str(PREDICT_SCRIPT), "--model_dir", str(model_dir), "--input",
                               str(root), "--backend", backend, "--batch_size", "2", "--threads", "1",
                               "--topk", "2", "--output", str(out)], capture_output=True, text=True, cwd=tmp_path)
    finally:
        (root / "zz_corrupt.png").unlink()
    assert proc.returncode == predict.EXIT_SOME_FAILED == 3, proc.stderr[-2000:]
    assert "cannot predict" in proc.stderr and "zz_corrupt.png" in proc.stderr
    if suffix == ".csv":
        with open(out, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
        assert reader.fieldnames == ["file_name", "class_ids", "scores", "label_names"]
        ids = [[int(v) for v in r["class_ids"].split()] for r in rows]
        scores = [[float(v) for v in r["scores"].split()] for r in rows]
    else:
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert all(list(r) == ["file_name", "class_ids", "scores", "label_names"] for r in rows)
        ids = [r["class_ids"] for r in rows]
        scores = [r["scores"] for r in rows]
        assert rows[0]["label_names"] == [LABELS[i] for i in ids[0]]
    assert [r["file_name"] for r in rows] == images  # the corrupt image is left out, the others are all there
    assert all(len(i) == 2 for i in ids)
    assert all(s[0] >= s[1] for s in scores)


@pytest.mark.slow
def test_predictor_imports_only_pipeline_and_predict_and_paddle_only_for_its_backend(model_dir, images):
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(PREDICT_SCRIPT.parent)!r})\n"
        "import predict_cls\n"
        f"p = predict_cls.Predictor({str(model_dir)!r}, backend='onnxruntime', threads=1)\n"
        f"assert len(p.predict_files([{images[0]!r}])) == 1\n"
        "assert 'paddle' not in sys.modules\n"
        f"p = predict_cls.Predictor({str(model_dir)!r}, backend='paddle', threads=1)\n"
        f"assert len(p.predict_files([{images[0]!r}])) == 1 and 'paddle' in sys.modules\n"
        "ours = {m.split('.')[1] if '.' in m else '' for m in sys.modules if m.split('.')[0] == 'ppcls_lite'}\n"
        "assert ours == {'', 'pipeline', 'predict'}, ours\n"
        "print('ok')\n"
    )
    # run from the repo root, where the rest of ppcls_lite would be importable if anything tried it
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]


def _site_packages_only_env():
    """An environment for `python -S`: third-party packages importable by path, no .pth files processed, so the
    editable ppcls_lite install (and the repository) are out of reach."""
    import site

    paths = [p for p in site.getsitepackages() + [site.getusersitepackages()] if Path(p).is_dir()]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PPCLS_DEBUG")}
    return dict(env, PYTHONPATH=os.pathsep.join(paths), OMP_NUM_THREADS="1")


@pytest.mark.slow
def test_script_copied_into_an_export_folder_runs_standalone(parity_model, images, tmp_path):
    deployed = tmp_path / "deployed model"
    export_model(parity_model, deployed, (32, 32), normalize_transform_ops(INFER_OPS), class_num=10, topk=3,
                 label_list=LABELS, onnx=True, predictor_script=PREDICT_SCRIPT)
    assert {p.name for p in (deployed / "ppcls_lite").iterdir()} == {"__init__.py", "pipeline", "predict"}
    env, elsewhere = _site_packages_only_env(), tmp_path / "elsewhere"
    elsewhere.mkdir()
    control = subprocess.run([sys.executable, "-S", "-c", "import ppcls_lite"], capture_output=True, text=True,
                             cwd=elsewhere, env=env)
    assert control.returncode != 0 and "No module named 'ppcls_lite'" in control.stderr  # no other copy in reach
    out = tmp_path / "preds.jsonl"
    proc = subprocess.run([sys.executable, "-S", str(deployed / "predict_cls.py"), "--model_dir", str(deployed),
                           "--input", str(Path(images[0]).parent), "--backend", "onnxruntime", "--threads", "1",
                           "--output", str(out)], capture_output=True, text=True, cwd=elsewhere, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = predict.Predictor(deployed, backend="onnxruntime", threads=1).predict_files(images)
    got = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["file_name"] for r in got] == images and [r["class_ids"] for r in got] == [
        r["class_ids"] for r in expected]
    assert got[0]["label_names"] == [LABELS[i] for i in got[0]["class_ids"]]


@pytest.mark.slow
def test_onnx_backend_needs_onnx_file(tmp_path, parity_model):
    export_model(parity_model, tmp_path, (32, 32), normalize_transform_ops(INFER_OPS), class_num=10, onnx=False)
    with pytest.raises(FileNotFoundError, match="--onnx"):
        predict.Predictor(tmp_path, backend="onnxruntime")


def test_runtime_settings_file_and_flags(tmp_path):
    shipped_file = REPO_ROOT / "deploy" / "configs" / "predictor_runtime.yaml"
    shipped = predict.parse_args(["--model_dir", "m", "--input", "i", "--config", str(shipped_file)])
    settings = predict.runtime_settings(shipped)
    assert isinstance(settings, predict.PredictorSettings) and settings.batch_size == 8
    # the shipped file spells out the defaults (one definition: PredictorSettings), except its batch size
    written = yaml.safe_load(shipped_file.read_text(encoding="utf-8"))["Runtime"]
    assert set(written) <= set(predict.PredictorSettings.names())
    assert settings.changed() == {"batch_size": 8}
    custom = tmp_path / "runtime.yaml"
    custom.write_text("Runtime: {backend: onnxruntime, threads: 3}\n")
    args = predict.parse_args(["--model_dir", "m", "--input", "i", "--config", str(custom), "--threads", "1"])
    settings = predict.runtime_settings(args)
    assert settings.backend == "onnxruntime" and settings.threads == 1  # the flag wins over the file
    custom.write_text("Runtime: {thread: 3}\n")
    with pytest.raises(KeyError, match=r"\['thread'\].*runtime.yaml.*Did you mean 'threads'"):
        predict.runtime_settings(args)


def test_unknown_predictor_option_is_an_error(tmp_path):
    with pytest.raises(KeyError, match=r"\['thread'\].*Did you mean 'threads'"):
        predict.Predictor(tmp_path, thread=2)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        predict.PredictorSettings(batch_size=0)


def test_each_backend_gets_only_the_settings_it_takes():
    settings = predict.PredictorSettings(threads=2, enable_mkldnn=False, use_gpu=True, gpu_mem=500, batch_size=4)
    assert predict.backends.backend_options("onnxruntime", settings) == {
        "threads": 2, "use_gpu": True, "use_tensorrt": False, "gpu_id": 0, "global_thread_pool": False}
    assert predict.backends.backend_options("mnn", settings) == {"threads": 2, "precision": "fp32"}
    paddle_options = predict.backends.backend_options("paddle", settings, input_shape=(3, 32, 32))
    assert paddle_options["batch_size"] == 4 and paddle_options["input_shape"] == (3, 32, 32)
    assert "global_thread_pool" not in paddle_options
    # the non-default settings a backend ignores (batch size and precision are the predictor's, not ignored)
    assert predict.backends.ignored_settings("onnxruntime", settings) == {"enable_mkldnn": False, "gpu_mem": 500}
    assert predict.backends.ignored_settings("mnn", settings) == {"enable_mkldnn": False, "use_gpu": True,
                                                                   "gpu_mem": 500}
    assert predict.backends.ignored_settings("paddle", settings) == {}
    with pytest.raises(TypeError, match="enable_mkldnn"):  # no backend swallows an option it does not use
        predict.OnnxRuntimeBackend("model.onnx", enable_mkldnn=True)


@pytest.mark.slow
def test_ignored_backend_settings_get_one_warning_line(model_dir, images, tmp_path):
    runtime = tmp_path / "runtime.yaml"
    runtime.write_text("Runtime: {gpu_mem: 500}\n")
    command = [sys.executable, str(PREDICT_SCRIPT), "--model_dir", str(model_dir), "--input", images[0], "--quiet",
               "--backend", "onnxruntime", "--threads", "1"]
    proc = subprocess.run(command + ["--config", str(runtime), "--enable_mkldnn", "false"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    warned = [line for line in proc.stderr.splitlines() if "onnxruntime does not use" in line]
    assert len(warned) == 1, proc.stderr
    assert "enable_mkldnn=False" in warned[0] and "gpu_mem=500" in warned[0] and "threads" not in warned[0]
    quiet = subprocess.run(command, capture_output=True, text=True)  # defaults: nothing to warn about
    assert quiet.returncode == 0 and "does not use" not in quiet.stderr, quiet.stderr[-2000:]


@pytest.mark.slow
def test_gpu_request_on_cpu_build_says_what_to_install(model_dir):
    if paddle.device.is_compiled_with_cuda():
        pytest.skip("this paddlepaddle build has CUDA")
    with pytest.raises(ValueError, match="GPU wheel"):
        predict.Predictor(model_dir, backend="paddle", use_gpu=True)


@pytest.mark.slow
def test_prefetch_gives_the_same_results_and_skips(model_dir, images, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    paths = images[:2] + [str(bad)] + images[2:]
    plain = predict.Predictor(model_dir, backend="onnxruntime", batch_size=2, threads=1)
    ahead = predict.Predictor(model_dir, backend="onnxruntime", batch_size=2, threads=1, prefetch=True)
    expected, got = plain.predict_files(paths), ahead.predict_files(paths)
    assert [r["file_name"] for r in got] == [r["file_name"] for r in expected] == images
    assert [r["class_ids"] for r in got] == [r["class_ids"] for r in expected]
    assert [s[0] for s in ahead.failures] == [str(bad)]


@pytest.mark.slow
def test_cli_user_error_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, str(PREDICT_SCRIPT), "--model_dir", str(tmp_path / "none"),
                           "--input", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and "export_model.py" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_models_in_one_process_can_share_onnxruntime_global_thread_pool(model_dir, images):
    # the global pool is fixed per process before its first session (and then every session must use it),
    # so this runs in a fresh process
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(PREDICT_SCRIPT.parent)!r})\n"
        "import onnxruntime, predict_cls\n"
        "onnxruntime.set_global_thread_pool_sizes(2, 1)\n"
        f"shared = [predict_cls.Predictor({str(model_dir)!r}, backend='onnxruntime', global_thread_pool=True)\n"
        "          for _ in range(2)]\n"
        "flags = [p.backend.session.get_session_options().use_per_session_threads for p in shared]\n"
        f"results = [p.predict_files({images!r}) for p in shared]\n"
        "print(json.dumps({'flags': flags, 'results': results}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["flags"] == [False, False]
    first, second = out["results"]
    own = predict.Predictor(model_dir, backend="onnxruntime", threads=2).predict_files(images)
    assert own[0]["class_ids"] and len(first) == len(own) == len(images) and first == second
    assert [r["class_ids"] for r in first] == [r["class_ids"] for r in own]
    assert np.allclose([r["scores"] for r in first], [r["scores"] for r in own], atol=1e-4)
