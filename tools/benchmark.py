"""Speed measurements on this machine: inference latency, training throughput, data loader throughput, phone files.

    python tools/benchmark.py infer --model MobileNetV3_large_x1_0 --size 224 --threads 2 --runs 50 --csv out.csv
    python tools/benchmark.py infer --model_dir inference/ --threads 2          # an existing export
    python tools/benchmark.py train -c CONFIG [-o KEY=VALUE ...] --steps 20 --threads 2 --csv out.csv
    python tools/benchmark.py data  -c CONFIG [-o KEY=VALUE ...] --batches 20 --num_workers 0 1 2
    python tools/benchmark.py all --threads 2 --csv docs/benchmark.csv     # the docs/BENCHMARK.md figures
    python tools/benchmark.py variants --csv variants.csv      # phone files (docs/BENCHMARK.md 'Phone files')
    python tools/benchmark.py quick_start [--weights PREFIX]  # README quick start: time, test-split top-1
    python tools/benchmark.py compare --paddleclas /work/paddleclas --paddleclas_python PY --timm_python PY
                                                               # side by side (docs/BENCHMARK.md 'Side by side')

What each sub-command measures, and its rows, are described in ppcls_lite/benchmark/ (infer.py, train.py,
data.py, variants.py, figures.py). Results: a table on stdout, and a CSV (--csv FILE) with the columns of
CSV_COLUMNS (VARIANT_COLUMNS for `variants`).
"""
import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any, List, Optional

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run from a checkout without installing

# Plain modules only at import time: paddle must load after main() has set OMP_NUM_THREADS.
from ppcls_lite.benchmark import (CompareOptions, DataOptions, FigureOptions, InferOptions, QuickStart,  # noqa: E402
                                  QuickStartOptions, TrainOptions, VariantOptions, bench_all, bench_compare,
                                  bench_data, bench_infer, bench_quick_start, bench_train, bench_variants,
                                  set_thread_count)
from ppcls_lite.utils.cli import run_cli  # noqa: E402

QUICK_START_CONFIG = REPO_ROOT / "configs" / "quick_start" / "MobileNetV3_small_fashion_mnist.yaml"
COMPARE_CONFIG = REPO_ROOT / "configs" / "quick_start" / "MobileNetV3_large_x1_0.yaml"  # PaddleClas's YAML
TRAIN_SCRIPT = REPO_ROOT / "tools" / "train.py"
COMMANDS = {"infer": (InferOptions, bench_infer), "train": (TrainOptions, bench_train),
            "data": (DataOptions, bench_data), "all": (FigureOptions, bench_all),
            "variants": (VariantOptions, bench_variants), "compare": (CompareOptions, bench_compare),
            "quick_start": (QuickStartOptions, bench_quick_start)}


def _option(parser: Any, options: type, flag: str, **kwargs: Any) -> None:
    """`--flag` for the field of the same name of the `options` dataclass, whose default it takes."""
    field = next(f for f in dataclasses.fields(options) if f.name == flag.lstrip("-"))
    default = field.default
    kwargs.setdefault("default", list(default) if isinstance(default, tuple) else default)
    parser.add_argument(flag, **kwargs)


def _config_args(parser: Any) -> None:
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("-o", "--override", dest="overrides", action="append", default=[], metavar="KEY=VALUE")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line: one sub-command per benchmark; each flag is a field of the sub-command's options."""
    parser = argparse.ArgumentParser(description="ppcls_lite speed measurements (see docs/BENCHMARK.md)")
    sub = parser.add_subparsers(dest="command", required=True)

    infer = sub.add_parser("infer", help="inference latency/throughput per engine")
    _option(infer, InferOptions, "--model", help="model name to export (random weights)")
    _option(infer, InferOptions, "--model_dir", help="benchmark this export instead of exporting --model "
                                                     "(no dygraph row)")
    _option(infer, InferOptions, "--size", type=int, help="input side in pixels")
    _option(infer, InferOptions, "--batch_sizes", type=int, nargs="+")
    _option(infer, InferOptions, "--image", help="image for the end-to-end rows (default: matplotlib's "
                                                 "grace_hopper.jpg)")
    _option(infer, InferOptions, "--photo_size", help="resize the image to WIDTHxHEIGHT and save it as JPEG "
                                                      "first, e.g. 640x480")
    _option(infer, InferOptions, "--engines", help="comma-separated subset of the engines (default: all)")
    _option(infer, InferOptions, "--runs", type=int)
    _option(infer, InferOptions, "--warmup", type=int)

    train = sub.add_parser("train", help="training throughput (img/s), dygraph and to_static")
    _config_args(train)
    _option(train, TrainOptions, "--mode", choices=("dygraph", "to_static", "both"))
    _option(train, TrainOptions, "--batch_size", type=int, help="default: DataLoader.Train.sampler.batch_size")
    _option(train, TrainOptions, "--size", type=int, help="image side (default: the train crop size)")
    _option(train, TrainOptions, "--steps", type=int)
    _option(train, TrainOptions, "--warmup", type=int)

    data = sub.add_parser("data", help="data loader throughput (no model in the loop)")
    _config_args(data)
    _option(data, DataOptions, "--mode")
    _option(data, DataOptions, "--batches", type=int)
    _option(data, DataOptions, "--num_workers", type=int, nargs="+")
    _option(data, DataOptions, "--csv", help="also write the results to this CSV file")

    everything = sub.add_parser("all", help="infer + train in one run (the docs/BENCHMARK.md figures)")
    for flag, kwargs in (("--model", {}), ("--size", {"type": int}), ("--image", {}), ("--runs", {"type": int}),
                         ("--warmup", {"type": int}), ("--train_steps", {"type": int})):
        _option(everything, FigureOptions, flag, **kwargs)
    everything.add_argument("--train_configs", nargs="+", default=[str(QUICK_START_CONFIG)])
    _option(everything, FigureOptions, "--markdown", action="store_true",
            help="also print the results as a Markdown table")

    variants = sub.add_parser("variants", help="phone files: fp32/fp16/int8 x onnxruntime/MNN size, latency, "
                                               "accuracy (docs/BENCHMARK.md 'Phone files')")
    _option(variants, VariantOptions, "--quick_start_weights", help="trained quick-start checkpoint PREFIX "
                                                                    "(default: train it now with the README "
                                                                    "command, ~3-5 min)")
    _option(variants, VariantOptions, "--skip_quick_start", action="store_true",
            help="only the --models (random weights)")
    _option(variants, VariantOptions, "--models", nargs="*",
            help="models exported with random weights (speed and size only)")
    _option(variants, VariantOptions, "--size", type=int, help="input side of --models")
    for flag in ("--batch_sizes", "--threads"):
        _option(variants, VariantOptions, flag, type=int, nargs="+")
    for flag in ("--calib_images", "--runs", "--warmup"):
        _option(variants, VariantOptions, flag, type=int)
    _option(variants, VariantOptions, "--csv", help="also write the results to this CSV file")

    compare = sub.add_parser("compare", help="training img/s side by side with PaddleClas and timm on photos, the "
                                             "predictor against decode + onnxruntime (docs/BENCHMARK.md 'Side by side')")
    compare.add_argument("-c", "--config", default=str(COMPARE_CONFIG))
    _option(compare, CompareOptions, "--engines", nargs="+",
            help="ppcls_lite, ppcls_lite@KEY=VALUE@... (with -o overrides), paddleclas, timm")
    _option(compare, CompareOptions, "--photos", nargs="+", help="photo sizes (400x300, 12mp, WxH) or 'shipped' "
                                                                 "(the config's own dataset)")
    for flag in ("--rounds", "--steps", "--batch_size", "--predictor_runs", "--predictor_threads"):
        _option(compare, CompareOptions, flag, type=int)
    for flag in ("--paddleclas", "--paddleclas_config", "--paddleclas_python", "--timm_python", "--work_dir",
                 "--csv"):
        _option(compare, CompareOptions, flag)
    compare.add_argument("--no_predictor", dest="predictor", action="store_false", help="skip the predictor rows")

    quick = sub.add_parser("quick_start", help="the README quick start, timed, scored on the official Fashion-MNIST "
                                               "test split (docs/BENCHMARK.md 'Quick start')")
    _option(quick, QuickStartOptions, "--weights", help="a trained quick-start PREFIX (default: train it now)")
    quick.add_argument("-o", "--override", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="added to the training command")
    _option(quick, QuickStartOptions, "--work_dir", help="where the test split is written (once)")
    _option(quick, QuickStartOptions, "--phone_photos", type=int,
            help="also score N test images as 12 MP JPEGs with reduced-size decoding on and off")
    _option(quick, QuickStartOptions, "--csv", help="also write the result to this CSV file")

    for p, options in ((infer, InferOptions), (train, TrainOptions), (everything, FigureOptions)):
        _option(p, options, "--threads", type=int, help="CPU threads (default: all)")
        _option(p, options, "--csv", help="also write the results to this CSV file")
    args = parser.parse_args(argv)
    if getattr(args, "runs", 1) < 1 or getattr(args, "steps", 1) < 1:
        parser.error("--runs/--steps must be >= 1")
    return args


def options_of(args: argparse.Namespace) -> Any:
    """The options dataclass of the chosen sub-command, from its flags."""
    options = COMMANDS[args.command][0]
    if args.command == "compare":  # how to run this checkout's training
        args.train_command, args.repo_root = [sys.executable, str(REPO_ROOT / "tools" / "train.py")], str(REPO_ROOT)
    return options(**{f.name: getattr(args, f.name) for f in dataclasses.fields(options)})


def main(argv: Optional[List[str]] = None) -> int:
    """Run the chosen benchmark; returns the exit status."""
    args = parse_args(argv)
    user_env = dict(os.environ)  # before the thread setting below: the quick-start training runs in it
    threads = getattr(args, "threads", None)
    if threads:  # thread pools of the math libraries are sized when they load: before paddle is imported
        set_thread_count(max(threads) if isinstance(threads, list) else threads)
    options = options_of(args)
    quick_start = QuickStart(config=str(QUICK_START_CONFIG), root=str(REPO_ROOT),
                             train_command=[sys.executable, str(TRAIN_SCRIPT)], train_env=user_env)
    if args.command == "variants":
        bench_variants(options, quick_start)
    elif args.command == "quick_start":
        tool = [sys.executable, str(REPO_ROOT / "tools" / "prepare_fashion_mnist.py")]
        bench_quick_start(options, quick_start, tool, [sys.executable, str(REPO_ROOT / "tools" / "eval.py")])
    else:
        COMMANDS[args.command][1](options)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
