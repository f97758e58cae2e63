"""The predictor's command line (deploy/python/predict_cls.py):

    python deploy/python/predict_cls.py --model_dir DIR --input IMG|DIR|LIST [-c CONFIG.yaml [-o KEY=VALUE ...]]
        [--backend paddle|onnxruntime|mnn] [--batch_size N] [--topk K] [--threads N] [--precision fp32|fp16|int8]
        [--output FILE.csv|FILE.jsonl] [--print_format json|paddleclas] [--quiet]

and PaddleClas's own, as it is, from the repository root or from deploy/ (deploy_config.py):

    cd deploy && python python/predict_cls.py -c configs/inference_cls.yaml \
        -o Global.inference_model_dir=DIR -o Global.infer_imgs=IMG|DIR -o Global.use_gpu=False ...

Settings: PredictorSettings defaults < the config's `Runtime` section < its PaddleClas `Global` keys <
command-line flags. With a PaddleClas-layout config, one line per image in PaddleClas's form is printed
(`--print_format json` for ours); `--output` writes CSV / JSON lines either way.
Exit status: 0 all inputs predicted, 3 some inputs could not be read (each named on stderr; the others are
predicted and written), 1 a usage or model error (one line on stderr; PPCLS_DEBUG=1 shows the traceback).
"""
import argparse
import os
import sys
from typing import Callable, List, Optional, Sequence

from .. import pipeline
from .backends import BACKENDS
from .deploy_config import (is_paddleclas_layout, model_and_inputs, paddleclas_line, read_deploy_config,
                            settings_from_global)
from .predictor import Predictor, collect_inputs
from .settings import PRECISIONS, PredictorSettings

EXIT_SOME_FAILED = pipeline.EXIT_SOME_FAILED
EXIT_USER_ERROR = 1
# Errors a user can fix (a path, a key, a missing package): one line on stderr, no traceback.
USER_ERRORS = (ValueError, FileNotFoundError, KeyError, ImportError)


def str2bool(text: str) -> bool:
    """true/false, yes/no, on/off, 1/0 -> bool (argparse type)."""
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; every setting flag defaults to None (= not given, the file or default decides)."""
    parser = argparse.ArgumentParser(description="Classify images with a model exported by tools/export_model.py "
                                                 "(or by PaddleClas)")
    parser.add_argument("--model_dir", help="directory written by tools/export_model.py (or PaddleClas's export "
                                            "folder; default: the config's Global.inference_model_dir)")
    parser.add_argument("--input", help="image file, folder, or list file ('path [label]' lines; default: the "
                                        "config's Global.infer_imgs)")
    parser.add_argument("-c", "--config", help="deploy config YAML: PaddleClas's layout (e.g. "
                        "deploy/configs/inference_cls.yaml: Global, PreProcess, PostProcess) and/or a Runtime "
                        "section; command-line flags win")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                        help="change a value of the -c config, as in PaddleClas (e.g. -o Global.batch_size=8)")
    parser.add_argument("--print_format", choices=("json", "paddleclas"),
                        help="one line per image: JSON, or PaddleClas's 'class id(s): ...' form (the default "
                             "with a PaddleClas-layout -c config)")
    parser.add_argument("--backend", choices=BACKENDS.names())
    parser.add_argument("--batch_size", type=int)
    parser.add_argument("--topk", type=int, help="classes per image (default: the exported Infer.PostProcess.topk)")
    parser.add_argument("--threads", type=int, help="CPU threads of the backend (default: all cores, at most 8)")
    parser.add_argument("--opencv_threads", type=int, help="OpenCV threads for decoding/resizing (default 1)")
    parser.add_argument("--enable_mkldnn", type=str2bool, help="oneDNN for Paddle Inference on CPU (default true)")
    parser.add_argument("--use_gpu", type=str2bool)
    parser.add_argument("--gpu_id", type=int)
    parser.add_argument("--use_tensorrt", type=str2bool)
    parser.add_argument("--precision", choices=PRECISIONS, help="model variant: fp32 (default), fp16 or int8 "
                        "(export with --quantize fp16/int8, --mnn); paddle backend: fp16 only with TensorRT")
    parser.add_argument("--prefetch", type=str2bool, help="preprocess the next images in a thread while the "
                                                          "model runs (default false)")
    parser.add_argument("--output", help="write results to FILE.csv or FILE.jsonl")
    parser.add_argument("--quiet", action="store_true", help="do not print one line per image")
    return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    return build_parser().parse_args(argv)


def deploy_config(args: argparse.Namespace) -> dict:
    """The -c file with the -o overrides applied ({} without -c)."""
    if args.override and not args.config:
        raise ValueError("-o changes a value of the -c config: give -c deploy/configs/inference_cls.yaml too")
    return read_deploy_config(args.config, args.override) if args.config else {}


def runtime_settings(args: argparse.Namespace, config: Optional[dict] = None) -> PredictorSettings:
    """Defaults < the config's Runtime section < its PaddleClas Global keys < command-line flags."""
    config = deploy_config(args) if config is None else config
    settings = PredictorSettings().replace(where=f"{args.config} Runtime", **(config.get("Runtime") or {}))
    if config.get("Global"):
        settings = settings_from_global(config["Global"], settings, f"-c {args.config}")
    flags = {name: getattr(args, name) for name in settings.names() if getattr(args, name, None) is not None}
    return settings.replace(where="the command line", **flags)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Predict every input and print or write the results; returns 0, or 3 when some inputs could not be read."""
    args = parse_args(argv)
    config = deploy_config(args)
    settings = runtime_settings(args, config)
    model_dir, inputs = model_and_inputs(config, args.model_dir, args.input, args.config and f"-c {args.config}")
    if args.output:
        pipeline.check_output_path(args.output)
    paddleclas = is_paddleclas_layout(config)
    predictor = Predictor(model_dir, settings, deploy=config if paddleclas else None)
    files = collect_inputs(inputs)
    line = paddleclas_line if (args.print_format or ("paddleclas" if paddleclas else "json")) == "paddleclas" \
        else pipeline.format_line
    show = None if args.quiet else (lambda result: print(line(result), flush=True))
    results = predictor.predict_files(files, on_result=show)
    if args.output:
        pipeline.write_results(results, args.output)
        print(f"wrote {len(results)} predictions to {args.output}", file=sys.stderr)
    if predictor.failures:
        print(pipeline.format_summary(predictor.failures, len(files)), file=sys.stderr)
        return EXIT_SOME_FAILED
    return 0


def run(entry: Callable[[Optional[List[str]]], int] = main, argv: Optional[List[str]] = None) -> int:
    """`entry(argv)`'s exit status; a user error (bad path, key, missing package) becomes one `error: ...` line on
    stderr and status 1, unless PPCLS_DEBUG is set."""
    try:
        return entry(argv)
    except USER_ERRORS as exc:
        if os.environ.get("PPCLS_DEBUG"):
            raise
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) and exc.args else exc}", file=sys.stderr)
        return EXIT_USER_ERROR
