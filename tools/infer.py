"""Classify images with trained weights.

    python tools/infer.py -c CONFIG -o Global.pretrained_model=PREFIX -o Infer.infer_imgs=IMG|DIR|LIST \
        [--output FILE.csv|FILE.jsonl]

Infer.infer_imgs is one image, a folder (searched recursively for images) or a list file (`path [label]`
lines, paths relative to the list file). Prints one JSON line per image: file_name, class_ids, scores
(softmax probabilities of the top-k classes), label_names. --output writes the same as CSV (lists joined by
spaces) or JSON lines. An input that cannot be read is reported with its path and reason, the others are
still predicted and written, and the exit status is 3. A retrieval model (Arch.infer_output_key: features) prints
file_name and features (its embedding) instead (docs/RETRIEVAL.md).
"""
import argparse
import os
import sys
from typing import List, Optional

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls_lite.engine import build_engine  # noqa: E402
from ppcls_lite.pipeline import EXIT_SOME_FAILED, check_output_path  # noqa: E402
from ppcls_lite.utils.cli import run_cli, writes_to  # noqa: E402
from ppcls_lite.config import get_config, parse_args  # noqa: E402


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The flag infer.py adds to -c/-o: --output."""
    parser.add_argument("--output", metavar="FILE.csv|FILE.jsonl", default=None,
                        help="also write the predictions to this file (format from the extension)")


def main(argv: Optional[List[str]] = None) -> int:
    """Classify the inputs; returns the exit status (3 when some inputs could not be read)."""
    args = parse_args("Classify images (ppcls_lite)", add_flags, argv)
    if args.output:
        check_output_path(args.output)
    config = get_config(args.config, args.override)
    with writes_to(args.output):  # a write that hits a full disk names no file
        engine = build_engine(config, "infer")
        engine.infer(output=args.output)
    return EXIT_SOME_FAILED if engine.infer_failures else 0


if __name__ == "__main__":
    sys.exit(run_cli(main, output_option="--output FILE"))
