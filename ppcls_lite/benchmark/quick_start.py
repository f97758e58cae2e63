"""`quick_start`: the README's quick start as a user runs it, timed, and its best_model (chosen on the shipped val
split) scored on the official Fashion-MNIST test split (10,000 images the recipe never trains on or chooses with).

1. train: the README command (`python tools/train.py -c configs/quick_start/MobileNetV3_small_fashion_mnist.yaml`,
   output into a temporary folder), wall time of the whole command; or `weights` given: no training.
2. `tools/prepare_fashion_mnist.py --splits test` writes the test split once into `work_dir` (needs the Debian
   package dataset-fashion-mnist).
3. `tools/eval.py` with the quick-start config, best_model and the test list.
4. with `phone_photos` N: every (10000/N)-th test image enlarged to a 4032x3024 JPEG (bicubic, quality 90, as a
   12-megapixel phone photo of the garment would be decoded and shrunk), scored with reduced-size decoding on and
   off: the accuracy effect of `DecodeImage.reduced_decode`.
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
PHONE_SIZE = (4032, 3024)
_BEST = re.compile(r"best (\w+) (?:so far )?([\d.]+)")  # the engine's "new best top1 X" / "best top1 so far X"
_EVAL_TOP1 = re.compile(r"^eval: .*?top1: ([\d.]+)", re.M)


@dataclass
class QuickStartOptions:
    """What `quick_start` measures (the `tools/benchmark.py quick_start` flags)."""

    weights: Optional[str] = None  # a trained quick-start PREFIX: skip training, score it on the test split
    overrides: tuple = ()  # -o KEY=VALUE for the training (e.g. Global.cpu_threads=1)
    work_dir: str = str(Path(tempfile.gettempdir()) / "ppcls_lite_quick_start")  # the test split (kept)
    phone_photos: int = 0  # also score N test images as 12 MP JPEGs, reduced-size decoding on and off
    csv: Optional[str] = None


def _run(command: List[str], quick_start: QuickStart) -> str:
    env = dict(quick_start.train_env) if quick_start.train_env is not None else None
    proc = subprocess.run(command, cwd=quick_start.root, env=env, capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} ... exited with {proc.returncode}:\n"
                           + "\n".join(output.splitlines()[-20:]))
    return output


def phone_photo_set(test_dir: Path, count: int) -> Path:
    """Every (n/count)-th image of test_dir's list as a 4032x3024 JPEG under test_dir/../phone_<count>/ (written
    once); returns its list file."""
    import cv2

    out = test_dir.parent / f"phone_{count}"
    listing = out / "list.txt"
    if listing.is_file():
        return listing
    lines = [line for line in (test_dir / "test_list.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    chosen = lines[::max(1, len(lines) // count)][:count]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, line in enumerate(chosen):
        rel, label = line.rsplit(None, 1)
        big = cv2.resize(cv2.imread(str(test_dir / rel)), PHONE_SIZE, interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(out / f"{i:05d}.jpg"), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
        written.append(f"{i:05d}.jpg {label}")
    listing.write_text("".join(line + "\n" for line in written), encoding="utf-8")
    return listing


def _top1(eval_command: List[str], quick_start: QuickStart, weights: str, root: Path, listing: Path,
          extra: tuple = ()) -> float:
    command = [*eval_command, "-c", quick_start.config, "-o", f"Global.pretrained_model={weights}",
               "-o", f"DataLoader.Eval.dataset.image_root={root}", "-o", f"DataLoader.Eval.dataset.cls_label_path={listing}"]
    for item in extra:
        command += ["-o", item]
    log = _run(command, quick_start)
    found = _EVAL_TOP1.findall(log)
    if not found:
        raise RuntimeError("tools/eval.py printed no top1:\n" + "\n".join(log.splitlines()[-20:]))
    return float(found[-1])


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
        test_top1 = _top1(eval_command, quick_start, weights, test_dir, test_list)
        print(f"quick start: {'' if seconds is None else f'{seconds:.0f} s, '}val top-1 {val_top1}, "
              f"test top-1 {test_top1:.4f} on {images} official test images (load {load} at the start)")
        rows = [{"benchmark": "quick_start", "engine": "README command" if options.weights is None else weights,
                 "seconds": seconds, "val_top1": val_top1, "test_top1": test_top1, "test_images": images,
                 "load_1m": load}]
        if options.phone_photos:
            phone = phone_photo_set(test_dir, options.phone_photos)
            for reduced in (True, False):
                key = "DataLoader.Eval.dataset.transform_ops.0.DecodeImage.reduced_decode"
                top1 = _top1(eval_command, quick_start, weights, phone.parent, phone, (f"{key}={reduced}",))
                print(f"{options.phone_photos} test images as 4032x3024 JPEGs, reduced_decode={reduced}: "
                      f"top-1 {top1:.4f}")
                rows.append({"benchmark": "quick_start_phone_photos", "engine": f"reduced_decode={reduced}",
                             "test_top1": top1, "test_images": options.phone_photos, "load_1m": load_1m()})
    if options.csv:
        write_csv(rows, options.csv, QUICK_START_COLUMNS)
    return rows
