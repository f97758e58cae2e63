"""tools/train.py, eval.py and infer.py as a user runs them (subprocesses on the tiny dataset)."""
import csv
import json
import os

import paddle
import pytest

from helpers import make_image_folder, run_tool, tiny_config, write_config

ARCH = "MobileNetV3_small_x0_35"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Train 2 epochs once through tools/train.py; returns (config path, data root, run dir)."""
    root = tmp_path_factory.mktemp("tools")
    data = make_image_folder(root / "tiny")
    config = write_config(tiny_config(data, root / "out", epochs=2), root / "config.yaml")
    proc = run_tool("train.py", "-c", config, "-o", "Global.print_batch_step=2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return config, data, root / "out" / ARCH


@pytest.mark.slow
def test_train_writes_run_directory(trained):
    _, _, run = trained
    for name in ("latest", "best_model", "epoch_1", "epoch_2"):
        assert all((run / f"{name}{s}").is_file() for s in (".pdparams", ".pdopt", ".pdstates"))
    assert not [f for f in os.listdir(run) if ".tmp" in f]  # atomic writes leave no temp files
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"] and all(r["eval_top1"] != "" for r in rows)
    assert (run / "config.yaml").is_file() and (run / "train.log").is_file()


@pytest.mark.slow
def test_eval_refuses_random_weights_then_reports(trained):
    config, _, run = trained
    proc = run_tool("eval.py", "-c", config)
    assert proc.returncode == 1 and "--allow-random" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_tool("eval.py", "-c", config, "--allow-random")
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_tool("eval.py", "-c", config, "-o", f"Global.pretrained_model={run / 'best_model'}", "--report")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "eval: loss:" in proc.stdout and "top1:" in proc.stdout
    report = run / "eval_report"
    rows = list(csv.DictReader(open(report / "report.csv")))
    assert [r["class"] for r in rows] == ["circle", "square", "stripes", "macro avg", "weighted avg"]
    assert int(rows[-1]["support"]) == 9
    assert "precision" in (report / "report.txt").read_text()
    assert (report / "confusion_matrix.png").is_file()


def _eval_top1(stdout):
    line = next(l for l in stdout.splitlines() if l.startswith("eval: "))
    return float(line.split("top1: ")[1].split(",")[0])


@pytest.mark.slow
def test_infer_csv_and_jsonl_agree_with_eval(trained, tmp_path):
    config, data, run = trained
    weights = run / "best_model"
    proc = run_tool("eval.py", "-c", config, "-o", f"Global.pretrained_model={weights}")
    eval_top1 = _eval_top1(proc.stdout)
    out_csv, out_jsonl = tmp_path / "pred.csv", tmp_path / "pred.jsonl"
    for out in (out_csv, out_jsonl):
        proc = run_tool("infer.py", "-c", config, "-o", f"Global.pretrained_model={weights}",
                        "-o", f"Infer.infer_imgs={data / 'val_list.txt'}", "--output", out)
        assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader(open(out_csv)))
    assert list(rows[0]) == ["file_name", "class_ids", "scores", "label_names"] and len(rows) == 9
    records = [json.loads(line) for line in open(out_jsonl)]
    assert [r["file_name"] for r in records] == [r["file_name"] for r in rows]
    names = ["circle", "square", "stripes"]
    labels = {str(data / line.split()[0]): int(line.split()[1]) for line in open(data / "val_list.txt")}
    correct = 0
    for rec, row in zip(records, rows):
        assert len(rec["class_ids"]) == 2 and rec["scores"] == sorted(rec["scores"], reverse=True)
        assert 0.0 <= sum(rec["scores"]) <= 1.0 + 1e-4  # softmax probabilities of the top-2
        assert rec["label_names"] == [names[i] for i in rec["class_ids"]]
        assert row["class_ids"] == " ".join(map(str, rec["class_ids"]))
        correct += rec["class_ids"][0] == labels[rec["file_name"]]
    assert correct / len(records) == pytest.approx(eval_top1, abs=1e-4)  # infer's top-1 agrees with eval


@pytest.mark.slow
def test_infer_single_image_and_folder(trained):
    config, data, run = trained
    proc = run_tool("infer.py", "-c", config, "-o", f"Global.pretrained_model={run / 'best_model'}",
                    "-o", f"Infer.infer_imgs={data / 'square' / '1.png'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
    assert len(lines) == 1 and lines[0]["file_name"].endswith("1.png")
    proc = run_tool("infer.py", "-c", config, "-o", f"Global.pretrained_model={run / 'best_model'}",
                    "-o", f"Infer.infer_imgs={data}")
    assert len([l for l in proc.stdout.splitlines() if l.startswith("{")]) == 18


@pytest.mark.slow
def test_tool_errors_are_one_clear_line(trained, tmp_path):
    config, _, _ = trained
    if not paddle.is_compiled_with_cuda():
        proc = run_tool("train.py", "-c", config, "-o", "Global.device=gpu")
        assert proc.returncode == 1
        assert "paddlepaddle-gpu" in proc.stderr and "Global.device=cpu" in proc.stderr
        assert "Traceback" not in proc.stderr
    proc = run_tool("train.py", "-c", config, "-o", f"Global.output_dir={tmp_path / 'empty'}", "--resume", "auto")
    assert proc.returncode == 1 and "without --resume" in proc.stderr and str(tmp_path / "empty") in proc.stderr
    proc = run_tool("eval.py", "-c", config, "-o", f"Global.pretrained_model={tmp_path / 'missing'}")
    assert proc.returncode == 1 and "missing" in proc.stderr
