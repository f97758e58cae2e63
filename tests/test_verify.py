"""tools/export_model.py --verify: export_report.json, and a non-zero exit when the export must not ship."""
import json

import pytest
import yaml

from helpers import EXPORT_ARCH, run_export, tiny_export_config


@pytest.mark.slow
def test_verify_reports_every_variant_and_passes(tmp_path, reference_dir):
    pytest.importorskip("MNN", reason="the [mobile] extra (MNN) is not installed")
    config_path, _ = tiny_export_config(tmp_path, reference_dir)
    proc = run_export(config_path, "--quantize", "int8", "fp16", "--calib_images", "6", "--mnn",
                      "--onnx_input", "uint8", "--verify", "--verify_images", "10")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "PASSED" in proc.stdout
    report = json.loads((tmp_path / "inference" / "export_report.json").read_text(encoding="utf-8"))
    assert report["passed"] and report["weights_loaded"] and report["images"] == 10
    assert report["model_name"] == EXPORT_ARCH
    rows = {(r["backend"], r["precision"], r["input"]): r for r in report["variants"]}
    expected = {("paddle_dygraph", "fp32", "float32"), ("paddle", "fp32", "float32"),
                ("onnxruntime", "fp32", "float32"), ("onnxruntime", "int8", "float32"),
                ("onnxruntime", "fp16", "float32"), ("mnn", "fp32", "float32"), ("mnn", "fp16", "float32"),
                ("mnn", "int8", "float32")}
    expected |= {(backend, precision, "uint8") for backend, precision, _ in expected if backend != "paddle"
                 and backend != "paddle_dygraph"}
    assert set(rows) == expected
    for key, row in rows.items():
        assert 0.0 <= row["top1"] <= 1.0
        if key[0] == "paddle_dygraph":
            continue
        assert row["size_bytes"] > 0 and row["latency_ms_batch1"] > 0
        if key[1] == "fp32":
            assert row["top1_agreement"] == 1.0 and row["max_prob_diff"] < 1e-3
    assert rows[("paddle", "fp32", "float32")]["max_prob_diff"] < 1e-4
    assert rows[("onnxruntime", "int8", "float32")]["size_bytes"] < rows[("onnxruntime", "fp32", "float32")][
        "size_bytes"] / 2.5


@pytest.mark.slow
def test_verify_fails_when_no_weights_were_loaded(tmp_path, reference_dir):
    config_path, _ = tiny_export_config(tmp_path, reference_dir, weights=False)
    proc = run_export(config_path, "--onnx", "--allow-random", "--verify", "--verify_images", "4")
    assert proc.returncode == 1
    assert "no trained weights were loaded" in proc.stderr and "Traceback" not in proc.stderr
    # A rejected export does not go into the folder; it is kept apart, complete with its report.
    rejected = tmp_path / "inference.rejected"
    assert f"kept apart in {rejected}" in proc.stderr and "nothing was written to" in proc.stderr
    assert not (tmp_path / "inference").exists()
    report = json.loads((rejected / "export_report.json").read_text(encoding="utf-8"))
    assert report["passed"] is False and report["weights_loaded"] is False


@pytest.mark.slow
def test_verify_fails_when_the_export_differs_from_the_trained_model(tmp_path, reference_dir):
    """Another model's weights in the exported files (a stale export) are caught."""
    from ppcls_lite.arch import build_model
    from ppcls_lite.export import ExportError
    from ppcls_lite.export.ownership import survey_folder
    from ppcls_lite.export.samples import dataset_samples
    from ppcls_lite.export.verify import verify_export
    from ppcls_lite.config import get_config

    config_path, _ = tiny_export_config(tmp_path, reference_dir)
    assert run_export(config_path, "--onnx").returncode == 0
    config = get_config(str(config_path))
    other = build_model({"name": EXPORT_ARCH, "class_num": 10})  # random weights, not the exported ones
    with pytest.raises(ExportError, match="differs from the dygraph model"):
        verify_export(tmp_path / "inference", other, dataset_samples(config, "Eval", 10, limit=4))
    report = json.loads((tmp_path / "inference" / "export_report.json").read_text(encoding="utf-8"))
    assert not report["passed"] and any("model.onnx" in f for f in report["failures"])
    assert survey_folder(tmp_path / "inference").not_ours == []  # the report is the export's: a re-export may replace it


@pytest.mark.slow
def test_second_export_without_variants_removes_the_old_ones(tmp_path, reference_dir):
    config_path, _ = tiny_export_config(tmp_path, reference_dir)
    assert run_export(config_path, "--quantize", "fp16", "--verify").returncode == 0
    assert (tmp_path / "inference" / "model_fp16.onnx").is_file()
    assert run_export(config_path, "--onnx").returncode == 0
    model_dir = tmp_path / "inference"
    assert not (model_dir / "model_fp16.onnx").exists() and not (model_dir / "export_report.json").exists()
    info = yaml.safe_load((model_dir / "inference.yml").read_text(encoding="utf-8"))["Global"]
    assert "variants" not in info
