"""tools/benchmark.py and ppcls_lite.benchmark: statistics helpers, and every sub-command on a tiny model writes
its CSV."""
import csv
import subprocess
import sys

import pytest
import yaml

from helpers import TOOLS_DIR

BENCHMARK = TOOLS_DIR / "benchmark.py"


def _load_benchmark_module():
    import ppcls_lite.benchmark

    return ppcls_lite.benchmark


def test_percentiles_and_summary():
    bench = _load_benchmark_module()
    times = [0.010, 0.020, 0.030, 0.040, 0.050]
    assert bench.percentile(times, 50) == pytest.approx(0.030)
    assert bench.percentile(times, 90) == pytest.approx(0.046)
    summary = bench.summarize(times, batch_size=8)
    assert summary["p50_ms"] == pytest.approx(30.0)
    assert summary["throughput_ips"] == pytest.approx(8 / 0.030)
    assert summary["runs"] == 5


def test_interleaved_timing_runs_each_engine_the_asked_number_of_times():
    bench = _load_benchmark_module()
    calls = {"a": 0, "b": 0}

    def make(name):
        def fn():
            calls[name] += 1
        return fn

    times = bench.time_interleaved({"a": make("a"), "b": make("b")}, runs=7, warmup=2, block=3)
    assert [len(times["a"]), len(times["b"])] == [7, 7]
    # 2 warm-up + 7 timed + one untimed call at the start of each of the 3 blocks
    assert calls == {"a": 12, "b": 12}


def _read_csv(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


@pytest.mark.slow
def test_infer_benchmark_writes_csv(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("paddle2onnx")
    bench = _load_benchmark_module()
    out = tmp_path / "infer.csv"
    proc = subprocess.run([sys.executable, str(BENCHMARK), "infer", "--model", "MobileNetV3_small_x0_35",
                           "--size", "32", "--runs", "2", "--warmup", "1", "--threads", "1",
                           "--batch_sizes", "1", "2", "--csv", str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    columns, rows = _read_csv(out)
    assert columns == bench.CSV_COLUMNS
    engines = {"paddle_dygraph", "paddle_inference", "paddle_inference_no_onednn", "onnxruntime",
               "jpeg_decode", "jpeg_decode_then_onnxruntime", "predictor_decode", "predictor_preprocess", "predictor_onnxruntime", "predictor_onnxruntime_decoded",
               "predictor_onnxruntime_full_decode", "predictor_paddle"}
    folder = {("predictor_onnxruntime_folder", "1"), ("predictor_onnxruntime_folder_prefetch", "1")}
    assert {(r["engine"], r["batch_size"]) for r in rows} == {(e, b) for e in engines for b in ("1", "2")} | folder
    for row in rows:
        assert row["model"] == "MobileNetV3_small_x0_35" and row["image_size"] == "32" and row["runs"] == "2"
        assert 0 < float(row["p50_ms"]) <= float(row["p90_ms"]) and float(row["throughput_ips"]) > 0
    assert "predictor end-to-end / bare onnxruntime" in proc.stdout  # the speed-target ratios are printed
    assert "predictor end-to-end / (JPEG decode + bare onnxruntime)" in proc.stdout
    assert "predictor end-to-end / (JPEG decode then bare onnxruntime, one call)" in proc.stdout


@pytest.mark.slow
def test_train_benchmark_writes_csv(tmp_path):
    bench = _load_benchmark_module()
    config = {
        "Global": {"device": "cpu", "image_shape": [3, 32, 32]},
        "Arch": {"name": "MobileNetV1_x0_25", "class_num": 5},
        "Loss": {"Train": [{"CELoss": {"weight": 1.0, "epsilon": 0.1}}], "Eval": [{"CELoss": {"weight": 1.0}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Cosine", "learning_rate": 0.1}},
        "DataLoader": {"Train": {"dataset": {"name": "ImageNetDataset", "image_root": ".", "cls_label_path": "x",
                                             "transform_ops": [{"RandCropImage": {"size": 32}}]},
                                 "sampler": {"name": "DistributedBatchSampler", "batch_size": 4},
                                 "loader": {"num_workers": 0}}},
    }
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(config))
    out = tmp_path / "train.csv"
    proc = subprocess.run([sys.executable, str(BENCHMARK), "train", "-c", str(config_path), "--steps", "2",
                           "--warmup", "1", "--threads", "1", "--csv", str(out)], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    columns, rows = _read_csv(out)
    assert columns == bench.CSV_COLUMNS
    assert [r["engine"] for r in rows] == ["dygraph", "to_static"]
    assert all(r["batch_size"] == "4" and r["image_size"] == "32" and float(r["throughput_ips"]) > 0 for r in rows)


@pytest.mark.slow
def test_data_benchmark_writes_csv(tmp_path, tiny_dataset):
    bench = _load_benchmark_module()
    ops = [{"DecodeImage": {"to_rgb": True}}, {"NormalizeImage": {"scale": "1.0/255.0", "order": ""}}]
    config = {"Arch": {"name": "MobileNetV1_x0_25", "class_num": 3},
              "DataLoader": {"Train": {"dataset": {"name": "ImageNetDataset", "image_root": str(tiny_dataset),
                                                   "cls_label_path": str(tiny_dataset / "train_list.txt"),
                                                   "transform_ops": ops},
                                       "sampler": {"name": "DistributedBatchSampler", "batch_size": 3,
                                                   "shuffle": True, "drop_last": True},
                                       "loader": {"num_workers": 0}}}}
    config_path = tmp_path / "data.yaml"
    config_path.write_text(yaml.safe_dump(config))
    out = tmp_path / "data.csv"
    proc = subprocess.run([sys.executable, str(BENCHMARK), "data", "-c", str(config_path), "--batches", "2",
                           "--num_workers", "0", "--csv", str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    columns, rows = _read_csv(out)
    assert columns == bench.CSV_COLUMNS
    assert [(r["benchmark"], r["engine"], r["batch_size"]) for r in rows] == [("data", "Train_loader_workers_0", "3")]
    assert float(rows[0]["throughput_ips"]) > 0


@pytest.mark.slow
def test_variants_benchmark_times_every_phone_file(tmp_path):
    pytest.importorskip("MNN", reason="the [mobile] extra (MNN) is not installed")
    bench = _load_benchmark_module()
    out = tmp_path / "variants.csv"
    proc = subprocess.run([sys.executable, str(BENCHMARK), "variants", "--skip_quick_start",
                           "--models", "MobileNetV3_small_x0_35", "--size", "32", "--runs", "2", "--warmup", "1",
                           "--threads", "1", "2", "--batch_sizes", "1", "2", "--calib_images", "4", "--csv", str(out)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    columns, rows = _read_csv(out)
    assert columns == bench.VARIANT_COLUMNS
    files = {("onnxruntime", "fp32"): "model.onnx", ("onnxruntime", "fp16"): "model_fp16.onnx",
             ("onnxruntime", "int8"): "model_int8.onnx", ("mnn", "fp32"): "model.mnn",
             ("mnn", "fp16"): "model_fp16.mnn", ("mnn", "int8"): "model_int8.mnn"}
    # each thread count is timed in its own child process (one onnxruntime thread pool for all files)
    assert {(r["backend"], r["precision"], r["batch_size"], r["threads"]) for r in rows} == {
        (b, p, bs, t) for (b, p) in files for bs in ("1", "2") for t in ("1", "2")}
    sizes = {}
    for row in rows:
        assert row["file"] == files[(row["backend"], row["precision"])]
        assert float(row["p50_ms"]) > 0 and row["top1"] == ""  # random weights: no accuracy
        sizes[row["file"]] = float(row["size_mb"])
    assert sizes["model_int8.onnx"] < sizes["model.onnx"] / 2.5
    assert "| MobileNetV3_small_x0_35 (32 px, random weights) | onnxruntime | int8 |" in proc.stdout
    assert "int8 / fp32 onnxruntime size 1/" in proc.stdout
