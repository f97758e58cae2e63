"""Plot the loss / top-1 / lr curves of a training run from its metrics.csv.

    python tools/plot_log.py output/MobileNetV3_small_x0_35            # -> .../training_curves.png
    python tools/plot_log.py output/                                    # every run found below output/
    python tools/plot_log.py output/MobileNetV3_small_x0_35/metrics.csv --out curves.png
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from ppcls_lite.engine.run_log import plot_training_curves  # noqa: E402
from ppcls_lite.utils.cli import run_cli  # noqa: E402


def find_metrics_files(target: str) -> List[Path]:
    """metrics.csv files for a file path, a run directory, or a directory holding several runs."""
    target = Path(target)
    if target.is_file():
        return [target]
    if not target.is_dir():
        raise FileNotFoundError(f"{target} does not exist: give a run directory (Global.output_dir/<Arch.name>) "
                                "or its metrics.csv")
    if (target / "metrics.csv").is_file():
        return [target / "metrics.csv"]
    found = sorted(target.rglob("metrics.csv"))
    if not found:
        raise FileNotFoundError(f"no metrics.csv under {target}: train first with `python tools/train.py -c CONFIG` "
                                "(it writes Global.output_dir/<Arch.name>/metrics.csv)")
    return found


def main(argv: Optional[List[str]] = None) -> None:
    """Write training_curves.png for each metrics.csv found."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", help="run output directory, a directory of runs, or a metrics.csv file")
    parser.add_argument("--out", default=None,
                        help="PNG to write (default: training_curves.png next to each metrics.csv)")
    args = parser.parse_args(argv)

    files = find_metrics_files(args.target)
    if args.out and len(files) > 1:
        raise ValueError(f"--out names one PNG but {len(files)} runs were found under {args.target}: "
                         "point at one run directory, or drop --out")
    for metrics_csv in files:
        png = Path(args.out) if args.out else metrics_csv.parent / "training_curves.png"
        plot_training_curves(metrics_csv, png)
        print(f"wrote {png}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
