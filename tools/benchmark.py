"""Speed measurements on this machine: inference latency, training throughput, data loader throughput.

    python tools/benchmark.py infer --model MobileNetV3_large_x1_0 --size 224 --threads 2 --runs 50 --csv out.csv
    python tools/benchmark.py infer --model_dir inference/ --threads 2          # an existing export
    python tools/benchmark.py train -c CONFIG [-o KEY=VALUE ...] --steps 20 --threads 2 --csv out.csv
    python tools/benchmark.py data  -c CONFIG [-o KEY=VALUE ...] --batches 20 --num_workers 0 1 2
    python tools/benchmark.py all --threads 1 --csv benchmark.csv --markdown   # the docs/BENCHMARK.md figures
    python tools/benchmark.py variants --csv variants.csv   # phone files: fp32/fp16/int8 x onnxruntime/MNN
    python tools/benchmark.py infer --threads 2 --batch_sizes 1 --photo_size 640x480   # predictor scaling

What each row measures: ppcls_lite/utils/benchmark.py and docs/BENCHMARK.md.
"""
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls_lite.utils.benchmark import main  # noqa: E402
from ppcls_lite.utils.cli import run_cli  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_cli(main))
