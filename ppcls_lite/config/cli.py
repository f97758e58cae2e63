"""The command line the tools share: -c/--config, -o/--override (repeatable), --debug, plus each tool's flags."""
from __future__ import annotations

import argparse
from typing import Callable, List, Optional


def parse_args(description: Optional[str] = None, extra_args: Optional[Callable[[argparse.ArgumentParser], None]] = None,
               argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Shared command line of the tools: -c/--config (required), -o/--override (repeatable).

    `extra_args(parser)` may add tool-specific flags; `argv` defaults to sys.argv[1:].
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("-c", "--config", required=True, help="path to the YAML config, e.g. configs/MobileNetV2.yaml")
    parser.add_argument(
        "-o", "--override", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, repeatable: -o Global.epochs=3 "
             "-o DataLoader.Train.dataset.transform_ops.1.RandCropImage.size=96",
    )
    # Acted on by utils.cli.run_cli (which takes it out of argv first); listed here so that --help shows it.
    parser.add_argument("--debug", action="store_true",
                        help="print the full traceback of an error instead of one line (or set PPCLS_LITE_DEBUG=1)")
    if extra_args is not None:
        extra_args(parser)
    return parser.parse_args(argv)
