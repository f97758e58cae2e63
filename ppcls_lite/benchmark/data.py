"""`data`: images/s of a config's data loader (batches only, no model: the most the input pipeline can feed the
trainer). The loader is timed from the end of its first (warm-up) batch, so worker start-up is excluded.
"""
import copy
import os
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from .report import print_table, write_csv
from .timing import load_1m, machine_description


@dataclass
class DataOptions:
    """What `data` measures (the `tools/benchmark.py data` flags)."""

    config: str  # the training config (YAML)
    overrides: Sequence[str] = ()  # -o KEY=VALUE
    mode: str = "Train"  # the DataLoader section
    batches: int = 20
    num_workers: Sequence[int] = (0, 1, 2)
    csv: Optional[str] = None  # also write the rows to this CSV file


def mobilenetv3_recipe_config(image_root: str, list_file: Optional[str] = None, batch_size: int = 64,
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
    from ppcls_lite.data import build_dataloader

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


def bench_data(options: DataOptions) -> List[Dict[str, Any]]:
    """Loader img/s per num_workers (measure_loader_throughput: no model in the loop)."""
    from ppcls_lite.config import get_config

    config = get_config(options.config, list(options.overrides))
    print(machine_description(threads="-"))
    rows = []
    for workers in options.num_workers:
        load = load_1m()
        result = measure_loader_throughput(config, num_workers=workers, batches=options.batches, mode=options.mode)
        per_batch_ms = 1e3 * result["seconds"] / max(result["batches"], 1)
        rows.append({"benchmark": "data", "engine": f"{options.mode}_loader_workers_{result['num_workers']}",
                     "model": "", "image_size": "", "batch_size": result["batch_size"], "threads": "",
                     "runs": result["batches"], "min_ms": "", "p50_ms": "", "p90_ms": "", "mean_ms": per_batch_ms,
                     "throughput_ips": result["images_per_s"], "load_1m": load})
    print_table(rows)
    if options.csv:
        write_csv(rows, options.csv)
    return rows
