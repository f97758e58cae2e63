"""`quick_start`: the README's quick start as a user runs it, timed, and its best_model (chosen on the shipped val
split) scored on the official Fashion-MNIST test split (10,000 images the recipe never trains on or chooses with).

1. train: the README command (`python tools/train.py -c configs/quick_start/MobileNetV3_small_fashion_mnist.yaml`,
   output into a temporary folder), wall time of the whole command; or `weights` given: no training.
2. `tools/prepare_fashion_mnist.py --splits test` writes the test split once into `work_dir` (needs the Debian
   package dataset-fashion-mnist).
3. `tools/eval.py` with the quick-start config, best_model and the test list.
"""
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from .report import write_csv
from .timing import load_1m
from .variants import QUICK_START_OUTPUT, QuickStart

QUICK_START_COLUMNS = ["benchmark", "engine", "seconds", "val_top1", "test_top1", "test_images", "load_1m"]
_BEST = re.compile(r"best (\w+) ([\d.]+) at epoch (\d+)")
_EVAL_TOP1 = re.compile(r"^eval: .*?top1: ([\d.]+)", re.M)


@dataclass
class QuickStartOptions:
    """What `quick_start` measures (the `tools/benchmark.py quick_start` flags)."""

    weights: Optional[str] = None  # a trained quick-start PREFIX: skip training, score it on the test split
    overrides: tuple = ()  # -o KEY=VALUE for the training (e.g. Global.cpu_threads=1)
    work_dir: str = str(Path(tempfile.gettempdir()) / "ppcls_lite_quick_start")  # the test split (kept)
    csv: Optional[str] = None


def _run(command: List[str], quick_start: QuickStart) -> str:
    env = dict(quick_start.train_env) if quick_start.train_env is not None else None
    proc = subprocess.run(command, cwd=quick_start.root, env=env, capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} ... exited with {proc.returncode}:\n"
                           + "\n".join(output.splitlines()[-20:]))
    return output


def bench_quick_start(options: QuickStartOptions, quick_start: QuickStart, prepare_command: List[str],
                      eval_command: List[str]) -> List[Dict[str, Any]]:
    """Train (timed) and score on the test split; one row."""
    seconds, val_top1 = None, None
    with tempfile.TemporaryDirectory(prefix="ppcls_quick_start_") as out:
        weights = options.weights
        load = load_1m()
        if not weights:
            command = [*quick_start.train_command, "-c", quick_start.config, "-o", f"Global.output_dir={out}/"]
            for item in options.overrides:
                command += ["-o", item]
            print(f"training: {' '.join(command)}", flush=True)
            start = time.perf_counter()
            log = _run(command, quick_start)
            seconds = time.perf_counter() - start
            best = _BEST.findall(log)
            val_top1 = float(best[-1][1]) if best else None
            weights = str(Path(out).joinpath(*QUICK_START_OUTPUT))
            print(f"trained in {seconds:.1f} s; best val top-1 {val_top1}", flush=True)
        test_dir = Path(options.work_dir) / "fashion_mnist_test"
        if not (test_dir / "test_list.txt").is_file():
            _run([*prepare_command, "--splits", "test", "--out", str(test_dir)], quick_start)
        test_list = test_dir / "test_list.txt"
        images = sum(1 for line in test_list.read_text(encoding="utf-8").splitlines() if line.strip())
        log = _run([*eval_command, "-c", quick_start.config, "-o", f"Global.pretrained_model={weights}",
                    "-o", f"DataLoader.Eval.dataset.image_root={test_dir}",
                    "-o", f"DataLoader.Eval.dataset.cls_label_path={test_list}"], quick_start)
    found = _EVAL_TOP1.findall(log)
    if not found:
        raise RuntimeError("tools/eval.py printed no top1:\n" + "\n".join(log.splitlines()[-20:]))
    test_top1 = float(found[-1])
    print(f"quick start: {'' if seconds is None else f'{seconds:.0f} s, '}val top-1 {val_top1}, "
          f"test top-1 {test_top1:.4f} on {images} official test images (load {load} at the start)")
    rows = [{"benchmark": "quick_start", "engine": "README command" if options.weights is None else weights,
             "seconds": seconds, "val_top1": val_top1, "test_top1": test_top1, "test_images": images,
             "load_1m": load}]
    if options.csv:
        write_csv(rows, options.csv, QUICK_START_COLUMNS)
    return rows
