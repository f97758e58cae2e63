"""Check a config's datasets before training: unreadable images, labels vs Arch.class_num, class balance,
duplicates within and across splits, image sizes.

    python tools/check_dataset.py -c CONFIG [-o KEY=VALUE ...] [--fix]

Every image of DataLoader.Train and DataLoader.Eval is decoded through the same pipeline as training.
--fix writes a cleaned list beside each list file (train_list.clean.txt beside train_list.txt), never over it;
an earlier cleaned list with other content is kept as train_list.clean.<timestamp>.txt, and when Train and Eval
read one list, one cleaned list serves both.
Exit status 1 when errors were found (or the config is wrong), 0 otherwise.
"""
import argparse
import os
import sys
from typing import List, Optional

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls_lite.data.check import check_dataset  # noqa: E402
from ppcls_lite.utils.cli import run_cli  # noqa: E402
from ppcls_lite.config import get_config, parse_args  # noqa: E402


def add_flags(parser: argparse.ArgumentParser) -> None:
    """This tool's flags besides -c/-o."""
    parser.add_argument("--fix", action="store_true",
                        help="write <list>.clean.txt beside each list file without the bad lines and duplicates")
    parser.add_argument("--no-progress", action="store_true", help="no progress line on stderr")


def main(argv: Optional[List[str]] = None) -> int:
    """Check the dataset of the config; returns the exit status."""
    args = parse_args("Check the datasets of a config (ppcls_lite)", add_flags, argv)
    config = get_config(args.config, args.override)
    return check_dataset(config, fix=args.fix, progress=not args.no_progress)


if __name__ == "__main__":
    sys.exit(run_cli(main))
