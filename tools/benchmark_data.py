"""Data loader throughput (images/s), for docs/BENCHMARK.md and `tools/benchmark.py data`.

    python tools/benchmark_data.py --num_workers 0 1 2 --batches 10     # MobileNetV3 recipe on the quick-start data

The loader is timed from the end of its first (warm-up) batch, so worker start-up is excluded; the loop only
fetches batches (no model), so this is the most the input pipeline can feed the trainer.
"""
import argparse
import copy
import os
import platform
import sys
import time
from typing import Any, Dict, List, Optional

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, REPO_ROOT)  # run from a checkout without installing

from ppcls_lite.data import build_dataloader  # noqa: E402
from ppcls_lite.utils.cli import run_cli  # noqa: E402

QUICK_START = os.path.join(REPO_ROOT, "dataset", "fashion_mnist_mini")


def mobilenetv3_recipe_config(image_root: str = QUICK_START, list_file: Optional[str] = None, batch_size: int = 64,
                              size: int = 224) -> Dict[str, Any]:
    """DataLoader section with PaddleClas's MobileNetV3 ImageNet train transforms (+ AutoAugment)."""
    return {"Train": {
        "dataset": {
            "name": "ImageNetDataset",
            "image_root": image_root,
            "cls_label_path": list_file or os.path.join(image_root, "train_list.txt"),
            "transform_ops": [
                {"DecodeImage": {"to_rgb": True, "channel_first": False}},
                {"RandCropImage": {"size": size}},
                {"RandFlipImage": {"flip_code": 1}},
                {"AutoAugment": None},
                {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406],
                                    "std": [0.229, 0.224, 0.225], "order": ""}},
            ],
        },
        "sampler": {"name": "DistributedBatchSampler", "batch_size": batch_size, "drop_last": True, "shuffle": True},
        "loader": {"num_workers": 0, "use_shared_memory": True},
    }}


def measure_loader_throughput(dataloader_config: Dict[str, Any], num_workers: Optional[int] = None, batches: int = 20,
                              mode: str = "Train", class_num: Optional[int] = None, seed: int = 0) -> Dict[str, Any]:
    """Time `batches` batches (after one warm-up batch) of the `mode` loader; returns a dict with images_per_s.

    `dataloader_config` is the DataLoader section or a whole config (then Arch.class_num is used for batch
    ops). `num_workers` overrides the config's loader.num_workers.
    """
    if "DataLoader" in dataloader_config:
        class_num = class_num if class_num is not None else (dataloader_config.get("Arch") or {}).get("class_num")
        dataloader_config = dataloader_config["DataLoader"]
    dataloader_config = copy.deepcopy(dataloader_config)
    if num_workers is not None:
        dataloader_config[mode].setdefault("loader", {})["num_workers"] = int(num_workers)
    loader = build_dataloader(dataloader_config, mode, seed=seed, class_num=class_num)
    if len(loader) == 0:
        raise ValueError(f"DataLoader.{mode} yields no batches (dataset smaller than batch_size with drop_last)")

    images, timed_batches, epoch, start = 0, 0, 0, None
    while timed_batches < batches:
        loader.set_epoch(epoch)
        for x, _ in loader:
            if start is None:  # the first batch includes worker start-up: not timed
                start = time.perf_counter()
                continue
            images += x.shape[0]
            timed_batches += 1
            if timed_batches >= batches:
                break
        epoch += 1
    seconds = time.perf_counter() - start
    return {"mode": mode, "num_workers": loader.num_workers, "batch_size": loader.batch_sampler.batch_size,
            "batches": timed_batches, "images": images, "seconds": seconds, "images_per_s": images / seconds}


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
