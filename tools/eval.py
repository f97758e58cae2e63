"""Evaluate trained weights on the config's DataLoader.Eval set.

    python tools/eval.py -c CONFIG -o Global.pretrained_model=PREFIX [--report] [--allow-random]

PREFIX is a checkpoint path without extension, e.g. output/MobileNetV3_small_x1_0/best_model.
--report writes per-class precision/recall/F1 (report.csv, report.txt) and confusion_matrix.png to
<output_dir>/<Arch.name>/eval_report/. Without weights the tool refuses to run unless --allow-random.
With Global.eval_mode: retrieval it prints the retrieval metrics (recall1, recall5, mAP, ...; docs/RETRIEVAL.md).
"""
import argparse
import os
import sys
from typing import List, Optional

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls_lite.engine import build_engine  # noqa: E402
from ppcls_lite.utils.cli import run_cli  # noqa: E402
from ppcls_lite.config import get_config, parse_args  # noqa: E402


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The flags eval.py adds to -c/-o: --report and --allow-random."""
    parser.add_argument("--report", action="store_true",
                        help="also write per-class precision/recall/F1 and a confusion matrix to eval_report/")
    parser.add_argument("--allow-random", action="store_true",
                        help="evaluate even when no trained weights are given (random initialisation)")


def main(argv: Optional[List[str]] = None) -> None:
    """Evaluate trained weights and print one `eval:` line (rank 0)."""
    args = parse_args("Evaluate a classifier (ppcls_lite)", add_flags, argv)
    config = get_config(args.config, args.override)
    engine = build_engine(config, "eval")
    result = engine.evaluate_report(allow_random=args.allow_random, report=args.report)
    if engine.is_main:  # one line per run, also under paddle.distributed.launch
        print("eval: " + ", ".join(f"{k}: {v:.5f}" if isinstance(v, float) else f"{k}: {v}"
                                 for k, v in result.items()))


if __name__ == "__main__":
    sys.exit(run_cli(main, output_option="-o Global.output_dir=DIR"))
