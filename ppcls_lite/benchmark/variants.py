"""`variants`: size, latency and accuracy of every phone file (fp32 / fp16 / int8 x onnxruntime / MNN) of an export.

Exports the quick-start model (trained now with the README command, or given weights) and `models` (random
weights) with --quantize int8 fp16 --mnn, then times every ONNX/MNN file with the predictor's backends at each
thread count and batch size (interleaved, each thread count in a child process of its own), and takes top-1 and
the agreement with the fp32 model from --verify (trained weights only). CSV columns: VARIANT_COLUMNS.
"""
import copy
import json
import multiprocessing
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .infer import imagenet_inference_ops
from .report import write_csv
from .timing import load_1m, machine_description, percentile, set_thread_count, time_interleaved

VARIANT_COLUMNS = ["model", "backend", "precision", "file", "size_mb", "threads", "batch_size", "runs", "p50_ms",
                   "min_ms", "top1", "top1_agreement", "load_1m"]
PRECISION_ORDER = ("fp32", "fp16", "int8")
QUICK_START_OUTPUT = ("MobileNetV3_small_x0_5", "best_model")  # the quick-start run's checkpoint in its output dir


@dataclass
class VariantOptions:
    """What `variants` measures (the `tools/benchmark.py variants` flags)."""

    quick_start_weights: Optional[str] = None  # trained quick-start PREFIX (default: train it now, ~3-5 min)
    skip_quick_start: bool = False  # only the `models` (random weights)
    models: Sequence[str] = ("MobileNetV3_large_x1_0",)  # exported with random weights (speed and size only)
    size: int = 224  # input side of `models`
    batch_sizes: Sequence[int] = (1, 8)
    threads: Sequence[int] = (1, 2)
    calib_images: int = 256
    runs: int = 30
    warmup: int = 3
    csv: Optional[str] = None  # also write the rows to this CSV file


@dataclass
class QuickStart:
    """Where the quick-start model comes from: its config, the folder its relative data paths start from (the
    repository root), the training command (run there), and the environment to train in: the user's, not one with
    the benchmark's thread settings (Paddle's CPU results depend on the thread count); None: this process's."""

    config: str
    root: str
    train_command: Sequence[str]
    train_env: Optional[Mapping[str, str]] = None


def _quick_start_weights(options: VariantOptions, quick_start: QuickStart, tmp: str) -> str:
    """`options.quick_start_weights`, or train the quick-start model with the README command into `tmp`."""
    if options.quick_start_weights:
        return options.quick_start_weights
    out = Path(tmp) / "quick_start_train"
    print(f"training the quick-start model (README command) into {out} ...", flush=True)
    env = dict(quick_start.train_env) if quick_start.train_env is not None else None
    subprocess.run([*quick_start.train_command, "-c", quick_start.config, "-o", f"Global.output_dir={out}/"],
                   check=True, cwd=quick_start.root, env=env)
    return str(out.joinpath(*QUICK_START_OUTPUT))


def variant_models(options: VariantOptions, quick_start: QuickStart,
                   tmp: str) -> List[Tuple[str, Dict[str, Any], bool]]:
    """[(label, config, weights are trained)] for the variants table: the quick-start model and `models`."""
    from ppcls_lite.config import get_config

    base = get_config(quick_start.config)
    # The config's data paths are relative to the repository root; the benchmark may run from anywhere.
    root = Path(quick_start.root)
    for mode in ("Train", "Eval"):
        dataset = base["DataLoader"][mode]["dataset"]
        for key in ("image_root", "cls_label_path"):
            dataset[key] = str(root / dataset[key])
    post = base["Infer"]["PostProcess"]
    post["class_id_map_file"] = str(root / post["class_id_map_file"])
    models = []
    if not options.skip_quick_start:
        quick = copy.deepcopy(base)
        quick["Global"]["pretrained_model"] = _quick_start_weights(options, quick_start, tmp)
        models.append(("quick start (MobileNetV3_small_x0_5, 56 px)", quick, True))
    for name in options.models:
        other = copy.deepcopy(base)  # the shipped Train list calibrates INT8 (through this model's preprocessing)
        other["Global"]["pretrained_model"] = None
        other["Arch"] = {"name": name, "class_num": 1000}
        other["Infer"]["transforms"] = imagenet_inference_ops(options.size)
        other["Infer"]["PostProcess"] = {"name": "Topk", "topk": 5}
        models.append((f"{name} ({options.size} px, random weights)", other, False))
    return models


def _variant_engines(model_dir, info, threads):
    """{(backend, precision): (file name, run(batch))} for every exported ONNX/MNN file, the onnxruntime sessions
    on the process's global thread pool (time_variant_files sets it up)."""
    from ppcls_lite.predict import PredictorSettings, model_variant_file, open_backend

    engines = {}
    for backend, files in (info.get("variants") or {}).items():
        for precision in PRECISION_ORDER:
            if precision not in files:
                continue
            path = model_variant_file(model_dir, info, backend, precision)
            settings = PredictorSettings(backend=backend, precision=precision, threads=threads,
                                         global_thread_pool=backend == "onnxruntime")
            engines[(backend, precision)] = (path.name, open_backend(backend, [path], settings).run)
    return engines


def time_variant_files(model_dir: str, threads: int, batches: Dict[int, Any], runs: int,
                       warmup: int) -> Dict[Tuple[str, str, int], Tuple[str, List[float]]]:
    """{(backend, precision, batch size): (file name, [seconds])} for every file of the export at `threads`, timed in
    interleaved blocks. Runs in a child process (bench_variants) so that its onnxruntime sessions can share one
    thread pool of `threads` threads, which is fixed per process: with a pool per session, the pools' spinning
    threads slow each other's runs down (measured 1.4-2.7x at 2 threads)."""
    import onnxruntime as ort

    from ppcls_lite.predict import load_inference_config

    ort.set_global_thread_pool_sizes(threads, 1)
    info = load_inference_config(model_dir)["Global"]
    engines = _variant_engines(Path(model_dir), info, threads)
    times = {}
    for batch_size, batch in batches.items():
        calls = {key: (lambda run=run: run(batch)) for key, (_, run) in engines.items()}
        print(f"  {threads} thread(s), batch {batch_size}: timing {len(calls)} files", flush=True)
        for (backend, precision), seconds in time_interleaved(calls, runs, warmup).items():
            times[(backend, precision, batch_size)] = (engines[(backend, precision)][0], seconds)
    return times


def bench_variants(options: VariantOptions, quick_start: QuickStart) -> List[Dict[str, Any]]:
    """Size, latency (batch sizes x threads) and accuracy of every phone file of each model."""
    import numpy as np

    from ppcls_lite.export import export_from_config
    from ppcls_lite.export.samples import dataset_samples, preprocess_files

    print(machine_description(",".join(map(str, options.threads))))
    rows = []
    with tempfile.TemporaryDirectory(prefix="ppcls_bench_variants_") as tmp:
        for label, config, trained in variant_models(options, quick_start, tmp):
            model_dir = Path(tmp) / f"export_{len(rows)}"
            print(f"{label}: exporting fp32/fp16/int8 ONNX and MNN to {model_dir} ...", flush=True)
            export_from_config(config, save_dir=str(model_dir), onnx=True, allow_random=not trained,
                               quantize=("int8", "fp16"), mnn=True, calib_images=options.calib_images,
                               verify_report=trained)  # accuracy only means something for trained weights
            accuracy = {}
            if trained:
                report = json.loads((model_dir / "export_report.json").read_text(encoding="utf-8"))
                accuracy = {(r["backend"], r["precision"]): r for r in report["variants"] if r["input"] == "float32"}
            val = [path for path, _ in dataset_samples(config, "Eval", limit=max(options.batch_sizes))]
            images = preprocess_files(model_dir, val).astype(np.float32)
            batches = {size: np.ascontiguousarray(np.resize(images, (size, *images.shape[1:])))
                       for size in options.batch_sizes}
            for threads in options.threads:
                load = load_1m()
                # The child's thread settings are passed to it, not inherited from whatever this process set.
                with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=set_thread_count, initargs=(threads,)) as child:
                    timed = child.submit(time_variant_files, str(model_dir), threads, batches, options.runs,
                                         options.warmup).result()
                for (backend, precision, batch_size), (name, times) in timed.items():
                    acc = accuracy.get((backend, precision), {})
                    rows.append({"model": label, "backend": backend, "precision": precision, "file": name,
                                 "size_mb": (model_dir / name).stat().st_size / 1e6, "threads": threads,
                                 "batch_size": batch_size, "runs": len(times),
                                 "p50_ms": 1e3 * percentile(times, 50), "min_ms": 1e3 * min(times),
                                 "top1": acc.get("top1", ""), "top1_agreement": acc.get("top1_agreement", ""),
                                 "load_1m": load})
    print_variants_markdown(rows)
    print_variant_targets(rows)
    if options.csv:
        write_csv(rows, options.csv, VARIANT_COLUMNS, decimals=4)
    return rows


def _cell(value, fmt):
    return format(value, fmt) if isinstance(value, (int, float)) and value != "" else "n/a"


def print_variants_markdown(rows: List[Dict[str, Any]]) -> None:
    """One line per model file: size, p50 latency for each (threads, batch), accuracy (docs/BENCHMARK.md)."""
    settings = sorted({(r["threads"], r["batch_size"]) for r in rows})
    head = " | ".join(f"p50 ms b{b} t{t}" for t, b in settings)
    print(f"| model | backend | precision | file | MB | {head} | top-1 | agreement with fp32 |")
    print("|---|---|---|---|---|" + "---|" * len(settings) + "---|---|")
    seen = []
    for r in rows:
        key = (r["model"], r["backend"], r["precision"])
        if key in seen:
            continue
        seen.append(key)
        same = {(x["threads"], x["batch_size"]): x for x in rows if (x["model"], x["backend"], x["precision"]) == key}
        times = " | ".join(_cell(same[s]["p50_ms"], ".2f") if s in same else "" for s in settings)
        top1 = _cell(r["top1"], ".3f")
        agree = _cell(r["top1_agreement"], ".3f")
        print(f"| {r['model']} | {r['backend']} | {r['precision']} | {r['file']} | {r['size_mb']:.2f} | {times} | "
              f"{top1} | {agree} |")


def print_variant_targets(rows: List[Dict[str, Any]]) -> None:
    """The phone targets as ratios within this run: INT8 size and speed against fp32 onnxruntime, top-1 drop."""
    by_key = {(r["model"], r["backend"], r["precision"], r["threads"], r["batch_size"]): r for r in rows}
    for model in dict.fromkeys(r["model"] for r in rows):
        fp32 = next(r for r in rows if r["model"] == model and r["backend"] == "onnxruntime"
                    and r["precision"] == "fp32")
        int8 = next((r for r in rows if r["model"] == model and r["backend"] == "onnxruntime"
                     and r["precision"] == "int8"), None)
        if int8 is None:
            continue
        line = f"{model}: int8 / fp32 onnxruntime size 1/{fp32['size_mb'] / int8['size_mb']:.2f}"
        for (m, backend, precision, threads, batch), row in sorted(by_key.items(), key=lambda kv: kv[0][3:]):
            if (m, backend, precision) == (model, "onnxruntime", "int8"):
                base = by_key[(model, "onnxruntime", "fp32", threads, batch)]
                line += (f"; speed-up b{batch} t{threads}: p50 {base['p50_ms'] / row['p50_ms']:.2f}, "
                         f"min {base['min_ms'] / row['min_ms']:.2f}")
        if isinstance(int8["top1"], float) and isinstance(fp32["top1"], float):
            drop = 100 * (int8["top1"] - fp32["top1"])
            line += f"; top-1 {fp32['top1']:.3f} -> {int8['top1']:.3f} ({drop:+.1f} points)"
        print(line)
