"""Build the quick-start data dataset/fashion_mnist_mini/ from Debian's Fashion-MNIST files.

    sudo apt-get install dataset-fashion-mnist
    python tools/prepare_fashion_mnist.py [--out dataset/fashion_mnist_mini] [--train_per_class 500]
        [--val_per_class 100] [--full] [--source /usr/share/datasets/fashion-mnist]

Deterministic (first N images of each class, in file order); val images come from the Fashion-MNIST test split.
--full writes all 60000 train + 10000 val images. See the README.md written into --out for the layout.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls_lite.data.fashion_mnist import DEFAULT_SOURCE, build  # noqa: E402
from ppcls_lite.utils.cli import run_cli  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "dataset", "fashion_mnist_mini"),
                        help="output folder (default: dataset/fashion_mnist_mini in the repo)")
    parser.add_argument("--train_per_class", type=int, default=500, help="train images per class (500)")
    parser.add_argument("--val_per_class", type=int, default=100, help="val images per class (100)")
    parser.add_argument("--full", action="store_true", help="all 60000 train and 10000 val images")
    parser.add_argument("--source", default=DEFAULT_SOURCE, help=f"folder with the idx .gz files ({DEFAULT_SOURCE})")
    args = parser.parse_args(argv)
    build(args.out, args.source, args.train_per_class, args.val_per_class, args.full)


if __name__ == "__main__":
    sys.exit(run_cli(main))
