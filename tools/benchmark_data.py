"""Data loader throughput (images/s), for docs/BENCHMARK.md (`tools/benchmark.py data` for any config).

    python tools/benchmark_data.py --num_workers 0 1 2 --batches 10     # MobileNetV3 recipe on the quick-start data

The loader is timed from the end of its first (warm-up) batch, so worker start-up is excluded; the loop only
fetches batches (no model), so this is the most the input pipeline can feed the trainer
(ppcls_lite.benchmark.data.measure_loader_throughput).
"""
import argparse
import os
import platform
import sys
from typing import List, Optional

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, REPO_ROOT)  # run from a checkout without installing

from ppcls_lite.benchmark import measure_loader_throughput, mobilenetv3_recipe_config  # noqa: E402
from ppcls_lite.utils.cli import run_cli  # noqa: E402

QUICK_START = os.path.join(REPO_ROOT, "dataset", "fashion_mnist_mini")


def main(argv: Optional[List[str]] = None) -> None:
    """Print a Markdown row of loader throughput per --num_workers (MobileNetV3 recipe transforms)."""
    parser = argparse.ArgumentParser(description="Data loader throughput, MobileNetV3 recipe transforms")
    parser.add_argument("--image_root", default=QUICK_START)
    parser.add_argument("--num_workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args(argv)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    config = mobilenetv3_recipe_config(args.image_root, batch_size=args.batch_size, size=args.size)
    print("| num_workers | batches x batch size | seconds | images/s |")
    print("|---|---|---|---|")
    for workers in args.num_workers:
        r = measure_loader_throughput(config, workers, args.batches)
        print(f"| {workers} | {r['batches']} x {r['batch_size']} | {r['seconds']:.2f} | {r['images_per_s']:.0f} |",
              flush=True)


if __name__ == "__main__":
    sys.exit(run_cli(main))
