"""Is the exported model the trained model? The quick ONNX check of every --onnx export, and --verify.

`verify_onnx`: the Paddle and ONNX models on one random batch (tools/export_model.py runs it after --onnx).

`tools/export_model.py --verify`: runs the Eval set (or `--verify_images N` of it) through the dygraph model
and through every exported file with every backend that can run it here (Paddle Inference; onnxruntime
fp32/fp16/int8; MNN; the uint8-input model), all fed by the predictor's own preprocessing, and writes
`export_report.json` beside the model: per variant top-1 accuracy, top-1 agreement with dygraph, max
|probability difference|, file size and latency. An embedding model (`output: features`) has no top-1: its
entries compare the L2-normalised features (max |difference|; top-1 fields null), whose scale does not depend on
the model's raw feature magnitude. Fails (ExportError: the tool exits 1) when no trained weights
were loaded, or when a float32 export differs from dygraph by more than the parity tolerance — the usual causes
of "the exported model is worse than training" are weights that were never loaded and a wrong class_num.
"""
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from ppcls_lite.pipeline import finish_features, softmax
from ppcls_lite.predict import Predictor, PredictorSettings, open_backend
from ppcls_lite.utils import logger
from ppcls_lite.utils.files import write_text_atomic

from .folder import REPORT_FILE, ExportError, read_inference_config, record_in_manifest
from .paddle_model import InferenceNet, run_paddle_inference
from .samples import dataset_samples, preprocess_files

# Max |probability difference| to dygraph allowed for float32 files, per backend.
PARITY_TOLERANCE = {"paddle": 1e-4, "onnxruntime": 1e-3, "mnn": 1e-3}
LATENCY_RUNS = 10


def verify_onnx(save_dir: Union[str, Path], batch_size: int = 2, seed: int = 0) -> float:
    """Run the Paddle and ONNX models of `save_dir` on the same random batch; return max |difference| of outputs."""
    import onnxruntime as ort

    save_dir = Path(save_dir)
    info = read_inference_config(save_dir)["Global"]
    x = np.random.default_rng(seed).standard_normal((batch_size, *info["input_shape"])).astype("float32")
    paddle_out = run_paddle_inference(save_dir, x, info)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(save_dir / info["onnx_file"]), options, providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: x})[0]
    return float(np.abs(paddle_out - onnx_out).max())


def _dygraph_probabilities(model, images, output, batch_size):
    import paddle

    net = InferenceNet(model, output)
    net.eval()
    outs = []
    with paddle.no_grad():
        for start in range(0, len(images), batch_size):
            outs.append(net(paddle.to_tensor(images[start:start + batch_size])).numpy())
    probs = np.concatenate(outs)
    return softmax(probs) if output == "logits" else _comparable(probs, output)


def _comparable(outputs, output):
    """What --verify compares: the outputs, an embedding L2-normalised (its raw scale is arbitrary)."""
    return finish_features(outputs, normalize=True) if output == "features" else outputs


def _run_batches(run, images, batch_size):
    return np.concatenate([run(np.ascontiguousarray(images[i:i + batch_size]))
                           for i in range(0, len(images), batch_size)])


def _latency_ms(run, one_image):
    run(one_image)  # warm-up: first-call allocations and kernel selection
    times = []
    for _ in range(LATENCY_RUNS):
        start = time.perf_counter()
        run(one_image)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def _variant_runs(save_dir, info, settings):
    """[(backend, precision, file name, input kind, run(batch) -> probabilities)] for what is exported, each run by
    the predictor's code with `settings` (threads, batch size)."""
    runs = []
    candidates = [("paddle", "fp32")]
    for backend, files in (info.get("variants") or {"onnxruntime": {"fp32": info.get("onnx_file")}}).items():
        candidates += [(backend, precision) for precision, name in files.items() if name]
    for backend, precision in candidates:
        if backend == "onnxruntime" and not info.get("onnx_file"):
            continue
        try:
            predictor = Predictor(save_dir, settings, backend=backend, precision=precision)
        except ImportError as exc:
            logger.warning(f"--verify: skipping {backend} {precision}: {exc}")
            continue
        runs.append((backend, precision, predictor.model_file.name, "float32", predictor.infer))
    uint8 = info.get("uint8_input") or {}
    for backend, files in (uint8.get("files") or {}).items():
        for precision, name in files.items():
            try:
                engine = open_backend(backend, [Path(save_dir) / name],
                                      settings.replace(backend=backend, precision=precision))
            except ImportError as exc:
                logger.warning(f"--verify: skipping {name}: {exc}")
                continue
            run = engine.run
            if info.get("output", "probabilities") == "logits":
                run = lambda batch, run=engine.run: softmax(run(batch))  # noqa: E731
            runs.append((backend, precision, name, "uint8", run))
    return runs


def verify_export(save_dir: Union[str, Path], model: Any, samples: List[Tuple[str, int]], weights_loaded: bool = True,
                  batch_size: int = 16, threads: Optional[int] = None) -> dict:
    """Compare every exported variant in `save_dir` with the dygraph `model` on `samples` [(path, label)];
    write and return the report. Raises ExportError when the export must not be deployed."""
    save_dir = Path(save_dir)
    if not samples:
        raise ExportError("--verify has no images: the Eval list is empty")
    info = read_inference_config(save_dir)["Global"]
    paths = [path for path, _ in samples]
    labels = np.array([label for _, label in samples])
    images = preprocess_files(save_dir, paths).astype(np.float32)
    images_uint8 = (preprocess_files(save_dir, paths, stop_before="NormalizeImage")
                    if info.get("uint8_input") else None)
    reference = _dygraph_probabilities(model, images, info.get("output", "probabilities"), batch_size)
    classes = info.get("output", "probabilities") != "features"  # an embedding has no top-1
    reference_top1 = reference.argmax(-1)

    def top1(probs, against):
        return float((probs.argmax(-1) == against).mean()) if classes else None

    entries = [{"backend": "paddle_dygraph", "precision": "fp32", "file": None, "input": "float32",
                "size_bytes": None, "top1": top1(reference, labels), "top1_agreement": 1.0 if classes else None,
                "max_prob_diff": 0.0, "latency_ms_batch1": None}]
    failures = []
    settings = PredictorSettings(threads=threads, batch_size=batch_size)
    for backend, precision, name, kind, run in _variant_runs(save_dir, info, settings):
        inputs = images_uint8 if kind == "uint8" else images
        probs = _comparable(_run_batches(run, inputs, batch_size), info.get("output"))
        diff = float(np.abs(probs - reference).max())
        entry = {"backend": backend, "precision": precision, "file": name, "input": kind,
                 "size_bytes": os.path.getsize(save_dir / name) if backend != "paddle" else
                 sum(os.path.getsize(save_dir / f) for f in (info["model_file"], info["params_file"])),
                 "top1": top1(probs, labels), "top1_agreement": top1(probs, reference_top1),
                 "max_prob_diff": diff, "latency_ms_batch1": _latency_ms(run, np.ascontiguousarray(inputs[:1]))}
        entries.append(entry)
        tolerance = PARITY_TOLERANCE.get(backend)
        if precision == "fp32" and tolerance is not None and diff > tolerance:
            failures.append(f"{name} on {backend} differs from the dygraph model by {diff:.2e} (tolerance "
                            f"{tolerance:.0e})")
    if not weights_loaded:
        failures.append("no trained weights were loaded (random weights): set -o Global.pretrained_model=PREFIX")
    report = {"model_name": info.get("model_name"), "weights": info.get("weights"),
              "weights_loaded": bool(weights_loaded), "images": len(samples), "threads": threads,
              "parity_tolerance": PARITY_TOLERANCE, "passed": not failures, "failures": failures,
              "variants": entries}
    write_text_atomic(save_dir / REPORT_FILE, json.dumps(report, indent=2) + "\n")
    record_in_manifest(save_dir, [REPORT_FILE])  # ours, when checking a finished export
    print(format_report(report))
    if failures:
        raise ExportError(f"--verify failed ({save_dir / REPORT_FILE}): " + "; ".join(failures)
                          + ". Do not deploy this export.")
    return report


def format_report(report: Dict[str, Any]) -> str:
    """The export check as a table for the terminal (one row per exported file and input)."""
    lines = [f"export check on {report['images']} images ({report['model_name']}, weights: {report['weights']})",
             f"{'backend':<15} {'precision':<9} {'input':<7} {'file':<24} {'MB':>6} {'top-1':>6} {'agree':>6} "
             f"{'max |dp|':>9} {'ms (b1)':>8}"]
    for e in report["variants"]:
        size = f"{e['size_bytes'] / 1e6:.2f}" if e["size_bytes"] else "-"
        latency = f"{e['latency_ms_batch1']:.2f}" if e["latency_ms_batch1"] is not None else "-"
        top1, agree = (f"{e[k]:.3f}" if e[k] is not None else "-" for k in ("top1", "top1_agreement"))
        lines.append(f"{e['backend']:<15} {e['precision']:<9} {e['input']:<7} {str(e['file'] or '-'):<24} "
                     f"{size:>6} {top1:>6} {agree:>6} {e['max_prob_diff']:>9.2e} {latency:>8}")
    lines.append("PASSED" if report["passed"] else "FAILED: " + "; ".join(report["failures"]))
    return "\n".join(lines)


def verify_from_config(save_dir: Union[str, Path], config: Dict[str, Any], model: Any, weights_loaded: bool,
                       verify_images: Optional[int] = None, threads: Optional[int] = None) -> dict:
    """--verify for tools/export_model.py: the Eval set of `config` (first `verify_images`, spread evenly)."""
    class_num = (config.get("Arch") or {}).get("class_num")
    samples = dataset_samples(config, "Eval", class_num, limit=verify_images, purpose="--verify")
    return verify_export(save_dir, model, samples, weights_loaded=weights_loaded, threads=threads)
