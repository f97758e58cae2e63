"""Speed measurements on this machine: inference latency, training throughput, data loader throughput.

    python tools/benchmark.py infer --model MobileNetV3_large_x1_0 --size 224 --threads 2 --runs 50 --csv out.csv
    python tools/benchmark.py infer --model_dir inference/ --threads 2          # an existing export
    python tools/benchmark.py train -c CONFIG [-o KEY=VALUE ...] --steps 20 --threads 2 --csv out.csv
    python tools/benchmark.py data  -c CONFIG [-o KEY=VALUE ...] --batches 20 --num_workers 0 1 2
    python tools/benchmark.py all --threads 2 --csv docs/benchmark.csv     # the docs/BENCHMARK.md figures
    python tools/benchmark.py variants --csv variants.csv      # phone files (docs/BENCHMARK.md 'Phone files')

infer: exports the model (random weights: speed does not depend on them) to a temporary directory with
tools/export_model.py's code, then times, at each batch size (default 1 and 8):
  paddle_dygraph          model(x) in eager mode (no_grad, eval)
  paddle_inference        Paddle Inference predictor, oneDNN on  (paddle_inference_no_onednn: oneDNN off)
  onnxruntime             a bare onnxruntime session on the same export (CPU provider): the predictor's own
                          InferenceSession called directly, so only one onnxruntime thread pool runs
  jpeg_decode             read the file + cv2.imdecode + cv2.cvtColor to RGB: the bare decode (yardstick)
  jpeg_decode_then_onnxruntime   jpeg_decode and then the bare session in one call (the two halves of the
                          yardstick in sequence, each starting on the caches the other left)
  predictor_decode        read the file + the predictor's DecodeImage only
  predictor_preprocess    what the predictor does before inference: read file + decode + resize/crop/normalise
  predictor_<backend>     deploy/python/predict_cls.py end to end: read + decode + preprocess + infer + top-k
  predictor_onnxruntime_decoded   the same from an already decoded image (resize .. top-k): the predictor's
                          own overhead over the bare session, without the JPEG decode
  predictor_onnxruntime_folder[_prefetch]   (batch 1 only) predict_files over 16 images, time per image;
                          _prefetch reads/preprocesses the next image in a thread while the model runs
Model-only engines get the preprocessed tensor of the same real image. Engines are timed in interleaved
blocks of a few runs so a change of machine load affects all of them alike. Latency p50/p90 is per call
(one batch); throughput = batch size / mean latency.

train: img/s of the engine's training step (ppcls_lite.engine.loop.train_one_epoch over a one-batch loader:
forward + loss + backward + optimizer and LR step) for the config's model, loss and optimizer, in dygraph and
with paddle.jit.to_static (what Global.to_static does), on one synthetic batch (random images of the train crop
size and random labels, reused every step) so the number is model compute only, not data loading.

data: img/s of the config's DataLoader (`--mode Train|Eval`) for each `--num_workers`, measured by
tools/benchmark_data.py's measure_loader_throughput (batches only, no model; p50/p90 are not recorded there).

variants: exports the quick-start model (trained now with the README command, or --quick_start_weights) and
--models (random weights) with --quantize int8 fp16 --mnn, then times every ONNX/MNN file with the
predictor's backend classes at each thread count and batch size (interleaved), and takes top-1 and the
agreement with the fp32 model from --verify (trained weights only). CSV columns: VARIANT_COLUMNS.

Results: a table on stdout, and a CSV (--csv FILE) with the columns of CSV_COLUMNS.
"""
import argparse
import csv
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run from a checkout without installing

# Plain modules only at import time: paddle must load after main() has set OMP_NUM_THREADS.
from ppcls_lite.utils.cli import run_cli  # noqa: E402
from ppcls_lite.utils.schema import GLOBAL_DEFAULTS  # noqa: E402

QUICK_START_CONFIG = REPO_ROOT / "configs" / "quick_start" / "MobileNetV3_small_fashion_mnist.yaml"

FOLDER_IMAGES = 16  # images per predict_files call in the *_folder rows
CSV_COLUMNS = ["benchmark", "engine", "model", "image_size", "batch_size", "threads", "runs", "min_ms", "p50_ms",
               "p90_ms", "mean_ms", "throughput_ips", "load_1m"]


# --------------------------------------------------------------------------------------------------------
# Timing helpers


def percentile(values: Sequence[float], q: float) -> float:
    """q in [0, 100], linear interpolation between the closest ranks."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(times_s: Sequence[float], batch_size: int) -> Dict[str, float]:
    """min/p50/p90/mean in ms, throughput (images/s) and the number of runs of per-call times in seconds."""
    mean = statistics.fmean(times_s)
    return {"min_ms": 1e3 * min(times_s), "p50_ms": 1e3 * percentile(times_s, 50),
            "p90_ms": 1e3 * percentile(times_s, 90),
            "mean_ms": 1e3 * mean, "throughput_ips": batch_size / mean, "runs": len(times_s)}


def time_interleaved(engines: Dict[Any, Callable[[], Any]], runs: int, warmup: int,
                     block: int = 10) -> Dict[Any, List[float]]:
    """engines: {name: fn}. Warm each up, then time `runs` calls each, cycling through the engines in blocks of
    `block` calls. Each block starts with one untimed call: the previous engine's thread pool may still be
    spinning on the cores, and its data has pushed this engine's weights out of the caches.
    Returns {name: [seconds, ...]}."""
    for fn in engines.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in engines}
    while any(len(t) < runs for t in times.values()):
        for name, fn in engines.items():
            if len(times[name]) >= runs:
                continue
            fn()
            for _ in range(min(block, runs - len(times[name]))):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return times


def load_1m() -> Union[float, str]:
    """The 1-minute load average ("" where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return ""


def machine_description(threads: Any) -> str:
    """One line: CPU model and cores, threads, paddle/onnxruntime/Python versions, load average."""
    cpu = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
        cpu = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), cpu)
    except (OSError, subprocess.SubprocessError):
        pass
    import paddle
    versions = f"paddle {paddle.__version__}"
    try:
        import onnxruntime
        versions += f", onnxruntime {onnxruntime.__version__}"
    except ImportError:
        pass
    return (f"CPU: {cpu} ({os.cpu_count()} logical cores), threads: {threads}, {versions}, "
            f"Python {platform.python_version()}, load average (1 min) at start: {load_1m()}")


def print_table(rows: List[Dict[str, Any]]) -> None:
    """The rows as an aligned text table on stdout."""
    header = ["benchmark", "engine", "batch_size", "min_ms", "p50_ms", "p90_ms", "mean_ms", "throughput_ips"]
    widths = [max(len(h), *(len(_fmt(r[h])) for r in rows)) for h in header]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(_fmt(row[h]).ljust(w) for h, w in zip(header, widths)))


def print_markdown(rows: List[Dict[str, Any]]) -> None:
    """The rows as a Markdown table (what docs/BENCHMARK.md shows)."""
    print("| benchmark | engine | batch | min ms | p50 ms | p90 ms | mean ms | img/s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [r["benchmark"], r["engine"], r["batch_size"], r["min_ms"], r["p50_ms"], r["p90_ms"], r["mean_ms"],
                 r["throughput_ips"]]
        print("| " + " | ".join(f"{c:.1f}" if isinstance(c, float) else str(c) for c in cells) + " |")


def _fmt(value):
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def write_csv(rows: List[Dict[str, Any]], path: Union[str, Path]) -> None:
    """The rows as CSV with the columns of CSV_COLUMNS."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()})
    print(f"wrote {path}")


# --------------------------------------------------------------------------------------------------------
# infer


def default_image() -> Optional[str]:
    """A real photograph shipped with matplotlib (a dependency): Grace Hopper, 512x600 JPEG."""
    try:
        from matplotlib import cbook
        return cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    except Exception:  # matplotlib missing or built without sample data
        return None


def imagenet_inference_ops(size: int) -> List[Dict[str, Any]]:
    """PaddleClas's ImageNet inference preprocessing scaled to `size` (resize short side, centre crop)."""
    return [
        {"DecodeImage": {"to_rgb": True, "channel_first": False}},
        {"ResizeImage": {"resize_short": int(round(size * 256 / 224))}},
        {"CropImage": {"size": size}},
        {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                            "order": ""}},
        {"ToCHWImage": None},
    ]


def export_for_benchmark(model_name: str, size: int, save_dir: Union[str, Path]) -> Any:
    """Random-weight export of `model_name` at size x size with the ImageNet inference preprocessing."""
    from ppcls_lite.arch import build_model
    from ppcls_lite.export import export_model, normalize_transform_ops

    ops = normalize_transform_ops(imagenet_inference_ops(size))
    model = build_model({"name": model_name, "class_num": 1000})
    model.eval()
    export_model(model, save_dir, (size, size), ops, class_num=1000, topk=5, model_name=model_name, onnx=True)
    return model


def infer_engines(model_dir: Path, info: Dict[str, Any], image: str, batch_size: int, threads: int,
                  model: Any = None) -> Dict[str, Callable[[], Any]]:
    """{engine name: zero-argument callable running one batch} for the rows listed in the module docstring."""
    import cv2
    import numpy as np
    import paddle
    from ppcls_lite import predict as predict_cls

    reference = predict_cls.Predictor(model_dir, backend="onnxruntime", batch_size=batch_size, threads=threads)
    with open(image, "rb") as f:
        data = f.read()
    batch = np.ascontiguousarray(np.stack([reference.preprocess(data)] * batch_size), dtype=np.float32)
    files = [image] * batch_size
    engines = {}

    if model is not None:
        x = paddle.to_tensor(batch)

        def dygraph():
            with paddle.no_grad():
                return model(x).numpy()
        engines["paddle_dygraph"] = dygraph

    model_file, params_file = model_dir / info["model_file"], model_dir / info["params_file"]
    with_onednn = predict_cls.PaddleBackend(model_file, params_file, threads=threads, enable_mkldnn=True)
    without_onednn = predict_cls.PaddleBackend(model_file, params_file, threads=threads, enable_mkldnn=False)
    engines["paddle_inference"] = lambda: with_onednn.run(batch)
    engines["paddle_inference_no_onednn"] = lambda: without_onednn.run(batch)

    # The yardstick for the predictor's overhead: the predictor's own InferenceSession (intra-op threads as given,
    # everything else onnxruntime's defaults) called directly. One session means one intra-op thread pool in the
    # process: with a second session, each pool's threads spin after its runs and slow the other's next runs at
    # 2 threads (docs/BENCHMARK.md, "Predictor scaling").
    session = reference.backend.session
    engines["onnxruntime"] = lambda: session.run(None, {session.get_inputs()[0].name: batch})[0]

    decode = reference.ops[0]  # DecodeImage as exported
    def jpeg_decode():
        return [cv2.cvtColor(cv2.imdecode(np.fromfile(f, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                for f in files]
    engines["jpeg_decode"] = jpeg_decode
    engines["jpeg_decode_then_onnxruntime"] = lambda: (jpeg_decode(), engines["onnxruntime"]())
    engines["predictor_decode"] = lambda: [decode(open(f, "rb").read()) for f in files]
    engines["predictor_preprocess"] = lambda: [reference.preprocess(open(f, "rb").read()) for f in files]
    engines["predictor_onnxruntime"] = lambda: reference.predict_files(files)
    decoded = [decode(data)] * batch_size
    engines["predictor_onnxruntime_decoded"] = lambda: reference.predict(decoded)
    with_paddle = predict_cls.Predictor(model_dir, backend="paddle", batch_size=batch_size, threads=threads)
    engines["predictor_paddle"] = lambda: with_paddle.predict_files(files)

    if batch_size == 1:  # a folder of images predicted one at a time, without and with prefetching
        folder = [image] * FOLDER_IMAGES
        prefetching = predict_cls.Predictor(model_dir, backend="onnxruntime", batch_size=1, threads=threads,
                                            prefetch=True)
        prefetching.backend = reference.backend  # the same session (see the yardstick above)
        engines["predictor_onnxruntime_folder"] = lambda: reference.predict_files(folder)
        engines["predictor_onnxruntime_folder_prefetch"] = lambda: prefetching.predict_files(folder)
    return engines


def synthetic_image(directory: Union[str, Path]) -> str:
    """Fallback when no photograph is available: a smooth 640x480 JPEG."""
    import cv2
    import numpy as np

    yy, xx = np.mgrid[0:480, 0:640]
    path = str(Path(directory) / "synthetic.jpg")
    cv2.imwrite(path, np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype("uint8"))
    return path


def bench_infer(args: argparse.Namespace) -> List[Dict[str, Any]]:
    """The `infer` rows (see the module docstring) for each batch size."""
    import paddle
    from ppcls_lite import predict as predict_cls

    paddle.set_device("cpu")
    paddle.base.core.set_num_threads(args.threads)  # eager-mode CPU kernels
    print(machine_description(args.threads))
    with tempfile.TemporaryDirectory(prefix="ppcls_bench_") as tmp:
        model = None
        if args.model_dir:
            model_dir = Path(args.model_dir)
        else:
            model_dir = Path(tmp)
            print(f"exporting {args.model} at {args.size}px (random weights) to {model_dir} ...")
            model = export_for_benchmark(args.model, args.size, model_dir)
        image = args.image or default_image() or synthetic_image(tmp)
        if args.photo_size:
            image = resized_photo(image, args.photo_size, tmp)
        print(f"image: {image}")
        info = predict_cls.load_inference_config(model_dir)["Global"]
        model_name = info.get("model_name") or args.model
        wanted = set(args.engines.split(",")) if args.engines else None

        rows = []
        for batch_size in args.batch_sizes:
            engines = infer_engines(model_dir, info, image, batch_size, args.threads, model)
            if wanted:
                engines = {name: fn for name, fn in engines.items() if name in wanted}
            load = load_1m()
            print(f"batch {batch_size}: timing {', '.join(engines)} ({args.runs} runs each after {args.warmup} "
                  f"warm-up)")
            for name, times in time_interleaved(engines, args.runs, args.warmup).items():
                if name.endswith(("_folder", "_folder_prefetch")):
                    times = [seconds / FOLDER_IMAGES for seconds in times]  # per image
                rows.append({"benchmark": "infer", "engine": name, "model": model_name,
                             "image_size": info["input_shape"][1], "batch_size": batch_size, "threads": args.threads,
                             "load_1m": load, **summarize(times, batch_size)})
    print_table(rows)
    print_ratios(rows)
    if args.csv:
        write_csv(rows, args.csv)
    return rows


def print_ratios(rows: List[Dict[str, Any]]) -> None:
    """The deploy speed targets as latency ratios (docs/BENCHMARK.md): of p50s, and of minimums (the minimum is
    the run least disturbed by other processes, so it is the steadier figure on a shared machine)."""
    by_key = {(r["engine"], r["batch_size"]): r for r in rows}
    pairs = (("predictor_onnxruntime", "predictor end-to-end / bare onnxruntime (target <= 1.15)"),
             ("predictor_onnxruntime_decoded", "predictor from a decoded image / bare onnxruntime"),
             ("predictor_onnxruntime_folder_prefetch", "predictor on a folder, prefetch, per image / bare onnxruntime"),
             ("paddle_inference", "Paddle Inference (oneDNN) / onnxruntime (target >= 2)"),
             ("paddle_inference_no_onednn", "Paddle Inference (no oneDNN) / onnxruntime"))
    for bs in sorted({r["batch_size"] for r in rows}):
        ort_row = by_key.get(("onnxruntime", bs))
        if not ort_row:
            continue
        for engine, label in pairs:
            row = by_key.get((engine, bs))
            if row:
                print(f"batch {bs}: {label}: p50 {row['p50_ms'] / ort_row['p50_ms']:.2f}, "
                      f"min {row['min_ms'] / ort_row['min_ms']:.2f}")
        end_to_end, decode = by_key.get(("predictor_onnxruntime", bs)), by_key.get(("jpeg_decode", bs))
        if end_to_end and decode:
            print(f"batch {bs}: predictor end-to-end / (JPEG decode + bare onnxruntime) (target <= 1.10): p50 "
                  f"{end_to_end['p50_ms'] / (decode['p50_ms'] + ort_row['p50_ms']):.2f}, min "
                  f"{end_to_end['min_ms'] / (decode['min_ms'] + ort_row['min_ms']):.2f}")
        in_sequence = by_key.get(("jpeg_decode_then_onnxruntime", bs))
        if end_to_end and in_sequence:
            print(f"batch {bs}: predictor end-to-end / (JPEG decode then bare onnxruntime, one call): p50 "
                  f"{end_to_end['p50_ms'] / in_sequence['p50_ms']:.2f}, min "
                  f"{end_to_end['min_ms'] / in_sequence['min_ms']:.2f}")


def resized_photo(image: str, size: str, directory: Union[str, Path]) -> str:
    """`image` resized to `size` ('640x480': width x height) and saved as a quality-90 JPEG in `directory`."""
    import cv2

    width, height = (int(v) for v in size.lower().split("x"))
    photo = cv2.resize(cv2.imread(str(image)), (width, height), interpolation=cv2.INTER_AREA)
    path = str(Path(directory) / f"photo_{width}x{height}.jpg")
    cv2.imwrite(path, photo, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


# --------------------------------------------------------------------------------------------------------
# train


def _train_image_size(config):
    """Side of the train crop (RandCropImage.size), else Global.image_shape."""
    ops = (((config.get("DataLoader") or {}).get("Train") or {}).get("dataset") or {}).get("transform_ops") or []
    for op in ops:
        if isinstance(op, dict) and "RandCropImage" in op:
            size = (op["RandCropImage"] or {}).get("size")
            if size:
                return (size, size) if isinstance(size, int) else (int(size[1]), int(size[0]))
    shape = (config.get("Global") or {}).get("image_shape") or GLOBAL_DEFAULTS["image_shape"]
    return int(shape[1]), int(shape[2])


class OneBatch:
    """A loader that yields the same (images, labels) batch once per pass: with it, one `train_one_epoch` call
    is one training step on data already in memory."""

    def __init__(self, images: Any, labels: Any) -> None:
        self.batch = (images, labels)

    def set_epoch(self, epoch: int) -> None:
        """Nothing to reshuffle."""

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Any:
        yield self.batch


def bench_train(args: argparse.Namespace) -> List[Dict[str, Any]]:
    """img/s of the engine's training step (train_one_epoch) on one synthetic batch, dygraph and to_static."""
    import paddle

    from ppcls_lite.arch import build_model
    from ppcls_lite.engine.amp import AmpContext
    from ppcls_lite.engine.checkpoint import TrainState
    from ppcls_lite.engine.loop import train_one_epoch
    from ppcls_lite.engine.run_log import RunLog
    from ppcls_lite.loss import build_loss
    from ppcls_lite.optimizer import build_optimizer
    from ppcls_lite.utils.config import get_config

    paddle.set_device("cpu")
    paddle.base.core.set_num_threads(args.threads)
    print(machine_description(args.threads))
    config = get_config(args.config, args.override)
    arch = dict(config["Arch"])
    arch.pop("pretrained", None)  # speed does not depend on the weights
    class_num = int(arch.get("class_num", 1000))
    height, width = (args.size, args.size) if args.size else _train_image_size(config)
    batch_size = args.batch_size or int(config["DataLoader"]["Train"]["sampler"]["batch_size"])
    print(f"{arch['name']}: synthetic batch of {batch_size} x 3 x {height} x {width}, {class_num} classes")

    paddle.seed(0)
    batch = OneBatch(paddle.randn([batch_size, 3, height, width], dtype="float32"),
                     paddle.randint(0, class_num, [batch_size], dtype="int64"))
    amp = AmpContext(use_amp=False, level="O1", device="cpu")
    rows = []
    modes = ["dygraph", "to_static"] if args.mode == "both" else [args.mode]
    with tempfile.TemporaryDirectory(prefix="ppcls_bench_train_") as run_dir:
        # A log that never prints: the step count it is told is never reached, and it writes no files.
        quiet_log = RunLog(run_dir, epochs=1, steps_per_epoch=10 ** 9, print_batch_step=10 ** 9, is_main=False)
        for mode in modes:
            model = build_model(arch)
            loss_fn = build_loss(config["Loss"]["Train"])
            epochs = int((config.get("Global") or {}).get("epochs") or GLOBAL_DEFAULTS["epochs"])  # e.g. warm-up
            optimizer, scheduler = build_optimizer(config["Optimizer"], epochs=epochs,
                                                   steps_per_epoch=args.steps + args.warmup, model=model)
            state = TrainState(model=model, optimizer=optimizer, lr_scheduler=scheduler)
            net = model
            if mode == "to_static":  # what the engine does for Global.to_static
                spec = [paddle.static.InputSpec([None, 3, None, None], "float32", "x")]
                net = paddle.jit.to_static(model, input_spec=spec, full_graph=True)
            by_epoch = bool(getattr(scheduler, "by_epoch", False))

            def step(net=net, state=state, loss_fn=loss_fn, by_epoch=by_epoch):
                return train_one_epoch(state, net, batch, loss_fn, None, amp, quiet_log, epoch=1, by_epoch=by_epoch)

            load = load_1m()
            times = time_interleaved({mode: step}, args.steps, args.warmup)[mode]
            rows.append({"benchmark": "train", "engine": mode, "model": arch["name"], "image_size": height,
                         "batch_size": batch_size, "threads": args.threads, "load_1m": load,
                         **summarize(times, batch_size)})
    print_table(rows)
    if args.csv:
        write_csv(rows, args.csv)
    return rows


# --------------------------------------------------------------------------------------------------------
# data


def bench_data(args: argparse.Namespace) -> List[Dict[str, Any]]:
    """Loader img/s per num_workers, measured by the data package's own benchmark (no model in the loop)."""
    from benchmark_data import measure_loader_throughput
    from ppcls_lite.utils.config import get_config

    config = get_config(args.config, args.override)
    print(machine_description(threads="-"))
    rows = []
    for workers in args.num_workers:
        load = load_1m()
        result = measure_loader_throughput(config, num_workers=workers, batches=args.batches, mode=args.mode)
        per_batch_ms = 1e3 * result["seconds"] / max(result["batches"], 1)
        rows.append({"benchmark": "data", "engine": f"{args.mode}_loader_workers_{result['num_workers']}",
                     "model": "", "image_size": "", "batch_size": result["batch_size"], "threads": "",
                     "runs": result["batches"], "min_ms": "", "p50_ms": "", "p90_ms": "", "mean_ms": per_batch_ms,
                     "throughput_ips": result["images_per_s"], "load_1m": load})
    print_table(rows)
    if args.csv:
        write_csv(rows, args.csv)
    return rows


# --------------------------------------------------------------------------------------------------------
# variants: the phone files (fp32 / fp16 / int8 x onnxruntime / MNN)

# Environment variables main() changed for the timings, with their values before (None: unset).
USER_ENV: Dict[str, Optional[str]] = {}

VARIANT_COLUMNS = ["model", "backend", "precision", "file", "size_mb", "threads", "batch_size", "runs", "p50_ms",
                   "min_ms", "top1", "top1_agreement", "load_1m"]
PRECISION_ORDER = ("fp32", "fp16", "int8")


def _quick_start_weights(args, tmp):
    """--quick_start_weights, or train the quick-start model with the README command into `tmp`."""
    if args.quick_start_weights:
        return args.quick_start_weights
    out = Path(tmp) / "quick_start_train"
    print(f"training the quick-start model (README command) into {out} ...", flush=True)
    # In the user's environment, not with the thread count set for the timings: Paddle's CPU results depend on it.
    env = {key: value for key, value in os.environ.items() if key not in USER_ENV}
    env.update({key: value for key, value in USER_ENV.items() if value is not None})
    subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "train.py"), "-c", str(QUICK_START_CONFIG),
                    "-o", f"Global.output_dir={out}/"], check=True, cwd=REPO_ROOT, env=env)
    return str(out / "MobileNetV3_small_x0_5" / "best_model")


def variant_models(args: argparse.Namespace, tmp: str) -> List[Tuple[str, Dict[str, Any], bool]]:
    """[(label, config, weights are trained)] for the variants table: the quick-start model and --model."""
    import copy

    from ppcls_lite.utils.config import get_config

    base = get_config(str(QUICK_START_CONFIG))
    # The config's data paths are relative to the repository root; the benchmark may run from anywhere.
    for mode in ("Train", "Eval"):
        dataset = base["DataLoader"][mode]["dataset"]
        for key in ("image_root", "cls_label_path"):
            dataset[key] = str(REPO_ROOT / dataset[key])
    post = base["Infer"]["PostProcess"]
    post["class_id_map_file"] = str(REPO_ROOT / post["class_id_map_file"])
    models = []
    if not args.skip_quick_start:
        quick = copy.deepcopy(base)
        quick["Global"]["pretrained_model"] = _quick_start_weights(args, tmp)
        models.append(("quick start (MobileNetV3_small_x0_5, 56 px)", quick, True))
    for name in args.models:
        other = copy.deepcopy(base)  # the shipped Train list calibrates INT8 (through this model's preprocessing)
        other["Global"]["pretrained_model"] = None
        other["Arch"] = {"name": name, "class_num": 1000}
        other["Infer"]["transforms"] = imagenet_inference_ops(args.size)
        other["Infer"]["PostProcess"] = {"name": "Topk", "topk": 5}
        models.append((f"{name} ({args.size} px, random weights)", other, False))
    return models


def _variant_engines(model_dir, info, threads):
    """{(backend, precision): (file name, run(batch))} for every exported ONNX/MNN file, the onnxruntime sessions
    on the process's global thread pool (time_variant_files sets it up)."""
    from ppcls_lite import predict as predict_cls

    engines = {}
    for backend, files in (info.get("variants") or {}).items():
        for precision in PRECISION_ORDER:
            if precision not in files:
                continue
            path = predict_cls.model_variant_file(model_dir, info, backend, precision)
            if backend == "mnn":
                runner = predict_cls.MnnBackend(path, threads=threads, precision=precision)
            else:
                runner = predict_cls.OnnxRuntimeBackend(path, threads=threads, global_thread_pool=True)
            engines[(backend, precision)] = (path.name, runner.run)
    return engines


def time_variant_files(model_dir: str, threads: int, batches: Dict[int, Any], runs: int,
                       warmup: int) -> Dict[Tuple[str, str, int], Tuple[str, List[float]]]:
    """{(backend, precision, batch size): (file name, [seconds])} for every file of the export at `threads`, timed in
    interleaved blocks. Runs in a child process (bench_variants) so that its onnxruntime sessions can share one
    thread pool of `threads` threads, which is fixed per process: with a pool per session, the pools' spinning
    threads slow each other's runs down (measured 1.4-2.7x at 2 threads)."""
    import onnxruntime as ort

    from ppcls_lite.export import read_inference_config

    ort.set_global_thread_pool_sizes(threads, 1)
    info = read_inference_config(model_dir)["Global"]
    engines = _variant_engines(Path(model_dir), info, threads)
    times = {}
    for batch_size, batch in batches.items():
        calls = {key: (lambda run=run: run(batch)) for key, (_, run) in engines.items()}
        print(f"  {threads} thread(s), batch {batch_size}: timing {len(calls)} files", flush=True)
        for (backend, precision), seconds in time_interleaved(calls, runs, warmup).items():
            times[(backend, precision, batch_size)] = (engines[(backend, precision)][0], seconds)
    return times


def bench_variants(args: argparse.Namespace) -> List[Dict[str, Any]]:
    """Size, latency (batch sizes x threads) and accuracy of every phone file of each model."""
    import numpy as np

    from ppcls_lite.export import export_from_config
    from ppcls_lite.export.samples import dataset_samples, preprocess_files

    print(machine_description(",".join(map(str, args.threads))))
    rows = []
    with tempfile.TemporaryDirectory(prefix="ppcls_bench_variants_") as tmp:
        for label, config, trained in variant_models(args, tmp):
            model_dir = Path(tmp) / f"export_{len(rows)}"
            print(f"{label}: exporting fp32/fp16/int8 ONNX and MNN to {model_dir} ...", flush=True)
            export_from_config(config, save_dir=str(model_dir), onnx=True, allow_random=not trained,
                               quantize=("int8", "fp16"), mnn=True, calib_images=args.calib_images,
                               verify_report=trained)  # accuracy only means something for trained weights
            accuracy = {}
            if trained:
                report = json.loads((model_dir / "export_report.json").read_text(encoding="utf-8"))
                accuracy = {(r["backend"], r["precision"]): r for r in report["variants"] if r["input"] == "float32"}
            val = [path for path, _ in dataset_samples(config, "Eval", limit=max(args.batch_sizes))]
            images = preprocess_files(model_dir, val).astype(np.float32)
            batches = {size: np.ascontiguousarray(np.resize(images, (size, *images.shape[1:])))
                       for size in args.batch_sizes}
            for threads in args.threads:
                load = load_1m()
                with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
                    timed = child.submit(time_variant_files, str(model_dir), threads, batches, args.runs,
                                         args.warmup).result()
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
    if args.csv:
        path = Path(args.csv)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=VARIANT_COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()})
        print(f"wrote {path}")
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
            line += f"; top-1 {fp32['top1']:.3f} -> {int8['top1']:.3f} ({100 * (int8['top1'] - fp32['top1']):+.1f} points)"
        print(line)


# --------------------------------------------------------------------------------------------------------


def bench_all(args: argparse.Namespace) -> List[Dict[str, Any]]:
    """The figures of docs/BENCHMARK.md in one run: infer (all engines, batch 1 and 8) + train (both modes)."""
    infer_args = argparse.Namespace(model=args.model, model_dir=None, size=args.size, batch_sizes=[1, 8],
                                    image=args.image, photo_size=None, engines=None, runs=args.runs,
                                    warmup=args.warmup, threads=args.threads, csv=None)
    rows = bench_infer(infer_args)
    for config in args.train_configs:
        train_args = argparse.Namespace(config=config, override=[], mode="both", batch_size=None, size=None,
                                        steps=args.train_steps, warmup=3, threads=args.threads, csv=None)
        rows += bench_train(train_args)
    if args.csv:
        write_csv(rows, args.csv)
    if args.markdown:
        print_markdown(rows)
    return rows


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line: one sub-command per benchmark."""
    parser = argparse.ArgumentParser(description="ppcls_lite speed measurements (see docs/BENCHMARK.md)")
    sub = parser.add_subparsers(dest="command", required=True)

    infer = sub.add_parser("infer", help="inference latency/throughput per engine")
    infer.add_argument("--model", default="MobileNetV3_large_x1_0", help="model name to export (random weights)")
    infer.add_argument("--model_dir", help="benchmark this export instead of exporting --model (no dygraph row)")
    infer.add_argument("--size", type=int, default=224, help="input side in pixels")
    infer.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 8])
    infer.add_argument("--image", help="image for the end-to-end rows (default: matplotlib's grace_hopper.jpg)")
    infer.add_argument("--photo_size", help="resize the image to WIDTHxHEIGHT and save it as JPEG first, e.g. 640x480")
    infer.add_argument("--engines", help="comma-separated subset of the engines (default: all)")
    infer.add_argument("--runs", type=int, default=50)
    infer.add_argument("--warmup", type=int, default=5)

    train = sub.add_parser("train", help="training throughput (img/s), dygraph and to_static")
    train.add_argument("-c", "--config", required=True)
    train.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE")
    train.add_argument("--mode", choices=("dygraph", "to_static", "both"), default="both")
    train.add_argument("--batch_size", type=int, help="default: DataLoader.Train.sampler.batch_size")
    train.add_argument("--size", type=int, help="image side (default: the train crop size)")
    train.add_argument("--steps", type=int, default=20)
    train.add_argument("--warmup", type=int, default=3)

    data = sub.add_parser("data", help="data loader throughput (tools/benchmark_data.py)")
    data.add_argument("-c", "--config", required=True)
    data.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE")
    data.add_argument("--mode", default="Train")
    data.add_argument("--batches", type=int, default=20)
    data.add_argument("--num_workers", type=int, nargs="+", default=[0, 1, 2])
    data.add_argument("--csv", help="also write the results to this CSV file")

    everything = sub.add_parser("all", help="infer + train in one run (the docs/BENCHMARK.md figures)")
    everything.add_argument("--model", default="MobileNetV3_large_x1_0")
    everything.add_argument("--size", type=int, default=224)
    everything.add_argument("--image")
    everything.add_argument("--runs", type=int, default=50)
    everything.add_argument("--warmup", type=int, default=5)
    everything.add_argument("--train_configs", nargs="+", default=[str(QUICK_START_CONFIG)])
    everything.add_argument("--train_steps", type=int, default=20)
    everything.add_argument("--markdown", action="store_true", help="also print the results as a Markdown table")

    variants = sub.add_parser("variants", help="phone files: fp32/fp16/int8 x onnxruntime/MNN size, latency, "
                                               "accuracy (docs/BENCHMARK.md 'Phone files')")
    variants.add_argument("--quick_start_weights", help="trained quick-start checkpoint PREFIX (default: train it "
                                                        "now with the README command, ~3-5 min)")
    variants.add_argument("--skip_quick_start", action="store_true", help="only the --models (random weights)")
    variants.add_argument("--models", nargs="*", default=["MobileNetV3_large_x1_0"],
                          help="models exported with random weights (speed and size only)")
    variants.add_argument("--size", type=int, default=224, help="input side of --models")
    variants.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 8])
    variants.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    variants.add_argument("--calib_images", type=int, default=256)
    variants.add_argument("--runs", type=int, default=30)
    variants.add_argument("--warmup", type=int, default=3)
    variants.add_argument("--csv", help="also write the results to this CSV file")

    for p in (infer, train, everything):
        p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads (default: all)")
        p.add_argument("--csv", help="also write the results to this CSV file")
    args = parser.parse_args(argv)
    if getattr(args, "runs", 1) < 1 or getattr(args, "steps", 1) < 1:
        parser.error("--runs/--steps must be >= 1")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    """Run the chosen benchmark; returns the exit status."""
    args = parse_args(argv)
    # Thread pools of the math libraries are sized when they load, so set this before importing paddle.
    if getattr(args, "threads", None):
        USER_ENV.setdefault("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS"))
        os.environ["OMP_NUM_THREADS"] = str(max(args.threads) if isinstance(args.threads, list) else args.threads)
    handler = {"infer": bench_infer, "train": bench_train, "data": bench_data, "all": bench_all,
               "variants": bench_variants}[args.command]
    result = handler(args)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
