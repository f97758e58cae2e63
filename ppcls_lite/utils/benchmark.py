"""Speed measurements on this machine (the code behind tools/benchmark.py): inference latency, training
throughput, data loader throughput.

    python tools/benchmark.py infer --model MobileNetV3_large_x1_0 --size 224 --threads 2 --runs 50 --csv out.csv
    python tools/benchmark.py infer --model_dir inference/ --threads 2          # an existing export
    python tools/benchmark.py train -c CONFIG [-o KEY=VALUE ...] --steps 20 --threads 2 --csv out.csv
    python tools/benchmark.py data  -c CONFIG [-o KEY=VALUE ...] --batches 20 --num_workers 0 1 2
    python tools/benchmark.py all --threads 2 --csv docs/benchmark.csv     # the docs/BENCHMARK.md figures

infer: exports the model (random weights: speed does not depend on them) to a temporary directory with
tools/export_model.py's code, then times, at each batch size (default 1 and 8):
  paddle_dygraph          model(x) in eager mode (no_grad, eval)
  paddle_inference        Paddle Inference predictor, oneDNN on  (paddle_inference_no_onednn: oneDNN off)
  onnxruntime             a bare onnxruntime session on the same export (CPU provider)
  predictor_decode        read the file + DecodeImage only (the JPEG decode)
  predictor_preprocess    what the predictor does before inference: read file + decode + resize/crop/normalise
  predictor_<backend>     deploy/python/predict_cls.py end to end: read + decode + preprocess + infer + top-k
  predictor_onnxruntime_decoded   the same from an already decoded image (resize .. top-k): the predictor's
                          own overhead over the bare session, without the JPEG decode
  predictor_onnxruntime_folder[_prefetch]   (batch 1 only) predict_files over 16 images, time per image;
                          _prefetch reads/preprocesses the next image in a thread while the model runs
Model-only engines get the preprocessed tensor of the same real image. Engines are timed in interleaved
blocks of a few runs so a change of machine load affects all of them alike. Latency p50/p90 is per call
(one batch); throughput = batch size / mean latency.

train: img/s of forward + loss + backward + optimizer step for the config's model, loss and optimizer, in
dygraph and with paddle.jit.to_static (what Global.to_static does), on one synthetic batch (random images of
the train crop size and random labels, reused every step) so the number is model compute only, not data loading.

data: img/s of the config's DataLoader (`--mode Train|Eval`) for each `--num_workers`, measured by
ppcls_lite.data.bench.measure_loader_throughput (batches only, no model; p50/p90 are not recorded there).

Results: a table on stdout, and a CSV (--csv FILE) with the columns of CSV_COLUMNS.
"""
import argparse
import csv
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# The predictor is a standalone script (it must not import ppcls_lite), not a package module.
PREDICTOR_DIR = str(REPO_ROOT / "deploy" / "python")
if PREDICTOR_DIR not in sys.path:
    sys.path.insert(0, PREDICTOR_DIR)

FOLDER_IMAGES = 16  # images per predict_files call in the *_folder rows
CSV_COLUMNS = ["benchmark", "engine", "model", "image_size", "batch_size", "threads", "runs", "min_ms", "p50_ms",
               "p90_ms", "mean_ms", "throughput_ips", "load_1m"]


# --------------------------------------------------------------------------------------------------------
# Timing helpers


def percentile(values, q):
    """q in [0, 100], linear interpolation between the closest ranks."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(times_s, batch_size):
    mean = statistics.fmean(times_s)
    return {"min_ms": 1e3 * min(times_s), "p50_ms": 1e3 * percentile(times_s, 50),
            "p90_ms": 1e3 * percentile(times_s, 90),
            "mean_ms": 1e3 * mean, "throughput_ips": batch_size / mean, "runs": len(times_s)}


def time_interleaved(engines, runs, warmup, block=10):
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


def load_1m():
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return ""


def machine_description(threads):
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


def print_table(rows):
    header = ["benchmark", "engine", "batch_size", "min_ms", "p50_ms", "p90_ms", "mean_ms", "throughput_ips"]
    widths = [max(len(h), *(len(_fmt(r[h])) for r in rows)) for h in header]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(_fmt(row[h]).ljust(w) for h, w in zip(header, widths)))


def print_markdown(rows):
    """The rows as a Markdown table (what docs/BENCHMARK.md shows)."""
    print("| benchmark | engine | batch | min ms | p50 ms | p90 ms | mean ms | img/s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [r["benchmark"], r["engine"], r["batch_size"], r["min_ms"], r["p50_ms"], r["p90_ms"], r["mean_ms"],
                 r["throughput_ips"]]
        print("| " + " | ".join(f"{c:.1f}" if isinstance(c, float) else str(c) for c in cells) + " |")


def _fmt(value):
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def write_csv(rows, path):
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


def default_image():
    """A real photograph shipped with matplotlib (a dependency): Grace Hopper, 512x600 JPEG."""
    try:
        from matplotlib import cbook
        return cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    except Exception:  # matplotlib missing or built without sample data
        return None


def export_for_benchmark(model_name, size, save_dir):
    """Random-weight export of `model_name` at size x size with the ImageNet inference preprocessing."""
    from ppcls_lite.arch import build_model
    from ppcls_lite.export import export_model, normalize_transform_ops

    ops = normalize_transform_ops([
        {"DecodeImage": {"to_rgb": True, "channel_first": False}},
        {"ResizeImage": {"resize_short": int(round(size * 256 / 224))}},
        {"CropImage": {"size": size}},
        {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                            "order": ""}},
        {"ToCHWImage": None},
    ])
    model = build_model({"name": model_name, "class_num": 1000})
    model.eval()
    export_model(model, save_dir, (size, size), ops, class_num=1000, topk=5, model_name=model_name, onnx=True)
    return model


def infer_engines(model_dir, info, image, batch_size, threads, model=None):
    """{engine name: zero-argument callable running one batch} for the rows listed in the module docstring."""
    import numpy as np
    import onnxruntime as ort
    import paddle
    import predict_cls

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

    options = ort.SessionOptions()  # a plain session: the yardstick for the predictor's overhead
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(str(model_dir / info["onnx_file"]), options, providers=["CPUExecutionProvider"])
    engines["onnxruntime"] = lambda: session.run(None, {session.get_inputs()[0].name: batch})[0]

    decode = reference.ops[0]  # DecodeImage as exported
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
        engines["predictor_onnxruntime_folder"] = lambda: reference.predict_files(folder)
        engines["predictor_onnxruntime_folder_prefetch"] = lambda: prefetching.predict_files(folder)
    return engines


def synthetic_image(directory):
    """Fallback when no photograph is available: a smooth 640x480 JPEG."""
    import cv2
    import numpy as np

    yy, xx = np.mgrid[0:480, 0:640]
    path = str(Path(directory) / "synthetic.jpg")
    cv2.imwrite(path, np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype("uint8"))
    return path


def bench_infer(args):
    import paddle
    import predict_cls

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


def print_ratios(rows):
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
    shape = (config.get("Global") or {}).get("image_shape") or [3, 224, 224]
    return int(shape[1]), int(shape[2])


def bench_train(args):
    import paddle

    from ppcls_lite.arch import build_model
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
    images = paddle.randn([batch_size, 3, height, width], dtype="float32")
    labels = paddle.randint(0, class_num, [batch_size], dtype="int64")
    rows = []
    modes = ["dygraph", "to_static"] if args.mode == "both" else [args.mode]
    for mode in modes:
        model = build_model(arch)
        model.train()
        loss_fn = build_loss(config["Loss"]["Train"])
        epochs = int((config.get("Global") or {}).get("epochs") or 10)  # the schedule's shape, e.g. warm-up
        optimizer, scheduler = build_optimizer(config["Optimizer"], epochs=epochs,
                                               steps_per_epoch=args.steps + args.warmup, model=model)
        net = model
        if mode == "to_static":  # what the engine does for Global.to_static
            spec = [paddle.static.InputSpec([None, 3, None, None], "float32", "x")]
            net = paddle.jit.to_static(model, input_spec=spec, full_graph=True)

        def step(net=net, loss_fn=loss_fn, optimizer=optimizer, scheduler=scheduler):
            out = net(images)
            if isinstance(out, dict):
                out = out["logits"]
            loss = loss_fn(out, labels)["loss"]
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
            if not getattr(scheduler, "by_epoch", False):
                scheduler.step()
            return float(loss)  # waits for the step to finish

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


def bench_data(args):
    """Loader img/s per num_workers, measured by the data package's own benchmark (no model in the loop)."""
    try:
        from ppcls_lite.data.bench import measure_loader_throughput
    except ImportError:
        print("ppcls_lite.data.bench.measure_loader_throughput is not available in this checkout; "
              "nothing to measure", file=sys.stderr)
        return 2
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


def bench_all(args):
    """The figures of docs/BENCHMARK.md in one run: infer (all engines, batch 1 and 8) + train (both modes)."""
    infer_args = argparse.Namespace(model=args.model, model_dir=None, size=args.size, batch_sizes=[1, 8],
                                    image=args.image, engines=None, runs=args.runs, warmup=args.warmup,
                                    threads=args.threads, csv=None)
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


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="ppcls_lite speed measurements (see docs/BENCHMARK.md)")
    sub = parser.add_subparsers(dest="command", required=True)

    infer = sub.add_parser("infer", help="inference latency/throughput per engine")
    infer.add_argument("--model", default="MobileNetV3_large_x1_0", help="model name to export (random weights)")
    infer.add_argument("--model_dir", help="benchmark this export instead of exporting --model (no dygraph row)")
    infer.add_argument("--size", type=int, default=224, help="input side in pixels")
    infer.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 8])
    infer.add_argument("--image", help="image for the end-to-end rows (default: matplotlib's grace_hopper.jpg)")
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

    data = sub.add_parser("data", help="data loader throughput (ppcls_lite.data.bench)")
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
    quick_start = REPO_ROOT / "configs" / "quick_start" / "MobileNetV3_small_fashion_mnist.yaml"
    everything.add_argument("--train_configs", nargs="+", default=[str(quick_start)])
    everything.add_argument("--train_steps", type=int, default=20)
    everything.add_argument("--markdown", action="store_true", help="also print the results as a Markdown table")

    for p in (infer, train, everything):
        p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads (default: all)")
        p.add_argument("--csv", help="also write the results to this CSV file")
    args = parser.parse_args(argv)
    if getattr(args, "runs", 1) < 1 or getattr(args, "steps", 1) < 1:
        parser.error("--runs/--steps must be >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    # Thread pools of the math libraries are sized when they load, so set this before importing paddle.
    if getattr(args, "threads", None):
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    handler = {"infer": bench_infer, "train": bench_train, "data": bench_data, "all": bench_all}[args.command]
    result = handler(args)
    return result if isinstance(result, int) else 0
