"""Train a classifier from a YAML config.

    python tools/train.py -c CONFIG [-o KEY=VALUE ...] [--resume auto|PREFIX] [--overwrite]
    python -m paddle.distributed.launch --nproc_per_node N tools/train.py -c CONFIG ...   (data parallel)

Outputs go to <Global.output_dir>/<Arch.name>/ (checkpoints, metrics.csv, train.log, config.yaml).
`--resume auto` continues from <output_dir>/<Arch.name>/latest (same as -o Global.checkpoints=auto); a resume
with more epochs or other Optimizer values re-plans the LR schedule from the saved step. A new run refuses a
folder that holds checkpoints; `--overwrite` moves the earlier run aside to <run>.old-<timestamp>/ first.
Only one training writes into a run folder (a lock file beside it names the holder to a second one). Ctrl-C,
SIGTERM and SIGHUP stop at a safe point and print the command that continues the run (exit 130 / 143 / 129).
"""
import argparse
import os
import sys
from typing import List, Optional

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls_lite.engine import build_engine  # noqa: E402
from ppcls_lite.utils.cli import run_cli, writes_to  # noqa: E402
from ppcls_lite.config import get_config, parse_args  # noqa: E402


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The flags train.py adds to -c/-o: --resume and --overwrite."""
    parser.add_argument("--resume", metavar="auto|PREFIX", default=None,
                        help="continue a run: 'auto' takes <output_dir>/<Arch.name>/latest, or give a checkpoint "
                             "prefix (same as -o Global.checkpoints=...)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start a new run even if <output_dir>/<Arch.name>/ holds checkpoints: the earlier "
                             "run is moved aside to <run>.old-<timestamp>/ (nothing is deleted)")


def main(argv: Optional[List[str]] = None) -> None:
    """Train the model the config describes (resuming or overwriting as the flags say)."""
    args = parse_args("Train a classifier (ppcls_lite)", add_flags, argv)
    overrides = list(args.override)
    if args.resume:
        overrides.append(f"Global.checkpoints={args.resume}")
    config = get_config(args.config, overrides)
    with writes_to(config["Global"].get("output_dir")):  # a write that hits a full disk names no file
        build_engine(config, "train", overwrite=args.overwrite).train()


if __name__ == "__main__":
    sys.exit(run_cli(main, output_option="-o Global.output_dir=DIR"))
