"""`compare`: training img/s side by side with PaddleClas and timm on the same photos, and the predictor end to end
against a bare decode + onnxruntime, as ratios measured in one run (docs/BENCHMARK.md, "Side by side").

Training: each engine trains `steps` steps of `batch_size` in a child process of its own, on generated photo-like
JPEGs (photos.py) of each size, from the same YAML (ours: configs/quick_start/MobileNetV3_large_x1_0.yaml, a copy
of PaddleClas's, whose transforms are DecodeImage, RandCropImage 224, RandFlipImage, NormalizeImage; 4 workers),
and the rounds alternate the engines, so a change of machine load hits all of them alike. img/s counts the steps
after the first 5 (data wait included): PaddleClas resets its timers after 5 steps and logs their running
average; ppcls_lite logs every step; timm (timm_reference.py) prints every step. Engines:
  ppcls_lite                tools/train.py as the user runs it (Global.cpu_threads auto, reduced-size decoding)
  ppcls_lite@KEY=VALUE@...  the same with -o overrides, e.g. ppcls_lite@Global.cpu_threads=1
  paddleclas                PaddleClas's tools/train.py in its own environment (`paddleclas`, `paddleclas_python`)
  timm                      timm's mobilenetv3_large_100 (`timm_python`)
`photos: shipped` trains on the config's own dataset instead (e.g. the quick start's).

Predictor: MobileNetV3_large_x1_0 exported with random weights and the ImageNet inference preprocessing, timed
(infer.py's engines, interleaved) on one photo of each size: the bare full decode, the bare onnxruntime session,
the two in sequence, the predictor end to end (reduced-size decoding as exported) and with it turned off.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .photos import make_photo_dataset, parse_size
from .report import write_csv
from .timing import load_1m, summarize, time_interleaved

WARMUP_STEPS = 5  # PaddleClas resets its step timers after 5 iterations; every engine skips as many
COMPARE_COLUMNS = ["benchmark", "engine", "photos", "round", "batch_size", "steps", "throughput_ips", "p50_ms",
                   "min_ms", "load_1m"]
PREDICTOR_ENGINES = ("jpeg_decode", "onnxruntime", "jpeg_decode_then_onnxruntime", "predictor_onnxruntime",
                     "predictor_onnxruntime_full_decode")
_OURS_STEP = re.compile(r"\[Train\]\[Epoch \d+/\d+\]\[Iter (\d+)/\d+\].*?batch_cost: ([\d.]+) s")
_PADDLECLAS_STEP = re.compile(r"\[Train\]\[Epoch \d+/\d+\]\[Iter: (\d+)/\d+\].*?batch_cost: ([\d.]+)")
_TIMM_STEP = re.compile(r"^step (\d+) batch_cost ([\d.]+)", re.M)


@dataclass
class CompareOptions:
    """What `compare` measures (the `tools/benchmark.py compare` flags)."""

    config: str  # our YAML (tools/benchmark.py: configs/quick_start/MobileNetV3_large_x1_0.yaml)
    train_command: Sequence[str] = ()  # how to run our tools/train.py (tools/benchmark.py fills it in)
    repo_root: str = "."  # PYTHONPATH of the timm child process
    engines: Sequence[str] = ("ppcls_lite", "paddleclas", "timm")
    photos: Sequence[str] = ("400x300", "12mp")
    rounds: int = 3
    steps: int = 10
    batch_size: int = 32
    paddleclas: Optional[str] = None  # a PaddleClas checkout (its tools/train.py and the same YAML)
    paddleclas_config: str = "ppcls/configs/quick_start/MobileNetV3_large_x1_0.yaml"
    paddleclas_python: Optional[str] = None  # the python of PaddleClas's environment
    timm_python: Optional[str] = None  # a python with torch and timm
    work_dir: str = os.path.join(tempfile.gettempdir(), "ppcls_lite_compare")  # photos (kept for the next run)
    predictor: bool = True
    predictor_runs: int = 30
    predictor_threads: int = 1
    csv: Optional[str] = None  # also write the rows to this CSV file


def _child_env() -> Dict[str, str]:
    """The user's environment for a training child, without a thread count pinned by the benchmark itself."""
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    return env


def _ips(output: str, pattern: "re.Pattern", batch_size: int, first_index: int, running_average: bool) -> float:
    """img/s over the steps from `first_index` on, from the per-step lines of a training log."""
    steps = [(int(i), float(cost)) for i, cost in pattern.findall(output)]
    timed = [cost for i, cost in steps if i >= first_index]
    if not timed:
        tail = "\n".join(output.splitlines()[-15:])
        raise RuntimeError(f"no timed training steps in the output (need more than {WARMUP_STEPS} steps):\n{tail}")
    mean = timed[-1] if running_average else statistics.fmean(timed)
    return batch_size / mean


def _dataset_overrides(root: Path, list_file: Optional[Path]) -> List[str]:
    if list_file is None:
        return []
    return [f"DataLoader.Train.dataset.image_root={root}", f"DataLoader.Train.dataset.cls_label_path={list_file}"]


def train_once(engine: str, options: CompareOptions, root: Path, list_file: Optional[Path], out: str) -> float:
    """img/s of one training run of `engine` (see the module docstring) in a child process."""
    common = ["Global.device=cpu", "Global.epochs=1", "Global.eval_during_train=False", "Global.print_batch_step=1",
              f"Global.output_dir={out}", f"DataLoader.Train.sampler.batch_size={options.batch_size}"]
    common += _dataset_overrides(root, list_file)
    if engine.startswith("ppcls_lite"):
        extra = engine.split("@")[1:]
        args = [*options.train_command, "-c", options.config]
        for item in common + extra:
            args += ["-o", item]
        output = _run(args, cwd=options.repo_root)
        return _ips(output, _OURS_STEP, options.batch_size, WARMUP_STEPS + 1, running_average=False)
    if engine == "paddleclas":
        if not (options.paddleclas and options.paddleclas_python):
            raise ValueError("the paddleclas engine needs --paddleclas CHECKOUT and --paddleclas_python PYTHON")
        args = [options.paddleclas_python, "tools/train.py", "-c", options.paddleclas_config]
        for item in common:
            args += ["-o", item]
        output = _run(args, cwd=options.paddleclas)
        return _ips(output, _PADDLECLAS_STEP, options.batch_size, options.steps - 1, running_average=True)
    if engine == "timm":
        if not options.timm_python:
            raise ValueError("the timm engine needs --timm_python PYTHON (an environment with torch and timm)")
        if list_file is None:
            raise ValueError("the timm engine trains on photos only (not --photos shipped)")
        env = {**_child_env(), "PYTHONPATH": str(options.repo_root)}
        args = [options.timm_python, "-m", "ppcls_lite.benchmark.timm_reference", "--root", str(root),
                "--list", str(list_file), "--steps", str(options.steps), "--batch_size", str(options.batch_size)]
        output = _run(args, cwd=options.repo_root, env=env)
        return _ips(output, _TIMM_STEP, options.batch_size, WARMUP_STEPS + 1, running_average=False)
    raise ValueError(f"unknown engine {engine!r}: use ppcls_lite, ppcls_lite@KEY=VALUE..., paddleclas or timm")


def _run(args: Sequence[str], cwd: str, env: Optional[Dict[str, str]] = None) -> str:
    proc = subprocess.run(list(args), cwd=cwd, env=env or _child_env(), capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        tail = "\n".join(output.splitlines()[-20:])
        raise RuntimeError(f"{' '.join(args[:4])} ... exited with {proc.returncode}:\n{tail}")
    return output


def _photo_set(options: CompareOptions, photos: str) -> Tuple[Path, Optional[Path]]:
    if photos == "shipped":
        return Path(options.repo_root), None
    list_file = make_photo_dataset(options.work_dir, photos, list_length=options.steps * options.batch_size)
    return list_file.parent, list_file


def bench_train_side_by_side(options: CompareOptions) -> List[Dict[str, Any]]:
    """One row per (photo size, round, engine): img/s of the steps after the first 5."""
    rows = []
    for photos in options.photos:
        root, list_file = _photo_set(options, photos)
        for round_index in range(1, options.rounds + 1):
            for engine in options.engines:
                load = load_1m()
                with tempfile.TemporaryDirectory(prefix="ppcls_compare_") as out:
                    ips = train_once(engine, options, root, list_file, out)
                print(f"{photos} round {round_index}: {engine} {ips:.2f} img/s (load {load})", flush=True)
                rows.append({"benchmark": "train", "engine": engine, "photos": photos, "round": round_index,
                             "batch_size": options.batch_size, "steps": options.steps - WARMUP_STEPS,
                             "throughput_ips": ips, "load_1m": load})
    return rows


def bench_predictor_side_by_side(options: CompareOptions) -> List[Dict[str, Any]]:
    """The predictor rows (module docstring) for one photo of each size, batch 1."""
    from ppcls_lite.predict import load_inference_config

    from .infer import export_for_benchmark, infer_engines

    rows = []
    with tempfile.TemporaryDirectory(prefix="ppcls_compare_export_") as model_dir:
        export_for_benchmark("MobileNetV3_large_x1_0", 224, model_dir)
        info = load_inference_config(model_dir)["Global"]
        for photos in options.photos:
            if photos == "shipped":
                continue
            root, list_file = _photo_set(options, photos)
            image = str(root / list_file.read_text(encoding="utf-8").split()[0])
            engines = infer_engines(Path(model_dir), info, image, 1, options.predictor_threads)
            engines = {name: engines[name] for name in PREDICTOR_ENGINES}
            load = load_1m()
            width, height = parse_size(photos)
            print(f"predictor on a {width}x{height} JPEG: timing {', '.join(engines)}", flush=True)
            for name, times in time_interleaved(engines, options.predictor_runs, 3).items():
                stats = summarize(times, 1)
                rows.append({"benchmark": "predictor", "engine": name, "photos": photos, "round": "",
                             "batch_size": 1, "steps": stats["runs"], "throughput_ips": stats["throughput_ips"],
                             "p50_ms": stats["p50_ms"], "min_ms": stats["min_ms"], "load_1m": load})
    return rows


def ratios(rows: List[Dict[str, Any]]) -> List[str]:
    """The side-by-side ratios and targets, one line each (medians over the rounds)."""
    lines = []
    train = [r for r in rows if r["benchmark"] == "train"]
    for photos in dict.fromkeys(r["photos"] for r in train):
        by_engine: Dict[str, List[float]] = {}
        for r in train:
            if r["photos"] == photos:
                by_engine.setdefault(r["engine"], []).append(r["throughput_ips"])
        base = by_engine.get("paddleclas")
        for engine, values in by_engine.items():
            line = f"train {photos}: {engine} median {statistics.median(values):.2f} img/s over {len(values)} rounds"
            if base and engine != "paddleclas":
                paired = [v / b for v, b in zip(values, base)]
                line += (f"; / PaddleClas: median {statistics.median(paired):.2f} (rounds "
                         f"{', '.join(f'{p:.2f}' for p in paired)})")
            lines.append(line)
    predictor = {(r["photos"], r["engine"]): r for r in rows if r["benchmark"] == "predictor"}
    for photos in dict.fromkeys(p for p, _ in predictor):
        end_to_end, bare = predictor[(photos, "predictor_onnxruntime")], predictor[(photos, "jpeg_decode")]
        ort = predictor[(photos, "onnxruntime")]
        for stat in ("p50_ms", "min_ms"):
            yardstick = bare[stat] + ort[stat]
            lines.append(f"predictor {photos} ({stat[:-3]}): end to end {end_to_end[stat]:.1f} ms, full decode + bare "
                         f"onnxruntime {yardstick:.1f} ms: speed-up {yardstick / end_to_end[stat]:.2f}x, "
                         f"ratio {end_to_end[stat] / yardstick:.2f}")
    return lines


def bench_compare(options: CompareOptions) -> List[Dict[str, Any]]:
    """Training side by side, then the predictor rows; prints the ratios; returns every row."""
    rows = bench_train_side_by_side(options) if options.engines and options.rounds else []
    if options.predictor:
        rows += bench_predictor_side_by_side(options)
    for line in ratios(rows):
        print(line)
    if options.csv:
        write_csv(rows, options.csv, COMPARE_COLUMNS)
    print(f"python {sys.version.split()[0]}; load average (1 min) at the end: {load_1m()}")
    return rows
