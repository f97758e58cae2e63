"""Speed measurements on this machine (tools/benchmark.py; docs/BENCHMARK.md): inference latency per engine,
training-step and data-loader throughput, and the phone files' size, latency and accuracy.

The top library layer: it measures the export, the predictor, the engine's training step and the data loader.
Each measurement takes an options dataclass (the sub-command's flags) and returns its rows:

    timing    percentiles, interleaved timing, machine description, thread count of a timing process
    report    text / Markdown tables and CSV (CSV_COLUMNS)
    infer     InferOptions, bench_infer           train    TrainOptions, bench_train
    data      DataOptions, bench_data, measure_loader_throughput
    variants  VariantOptions, QuickStart, bench_variants (VARIANT_COLUMNS)
    figures   FigureOptions, bench_all (infer + train: the docs/BENCHMARK.md figures)
    quick_start  QuickStartOptions, bench_quick_start (the README quick start timed, scored on the official test split)
    compare   CompareOptions, bench_compare (training side by side with PaddleClas and timm on generated photos
              (photos.py; timm_reference.py runs in timm's environment), the predictor against decode + onnxruntime)

No module imports paddle or onnxruntime at import time: their thread pools are sized when they load.
"""
from .compare import CompareOptions, bench_compare
from .data import DataOptions, bench_data, measure_loader_throughput, mobilenetv3_recipe_config
from .figures import FigureOptions, bench_all
from .infer import InferOptions, bench_infer
from .quick_start import QuickStartOptions, bench_quick_start
from .report import CSV_COLUMNS, print_markdown, print_table, write_csv
from .timing import CPU_COUNT, percentile, set_thread_count, summarize, time_interleaved
from .train import TrainOptions, bench_train
from .variants import VARIANT_COLUMNS, QuickStart, VariantOptions, bench_variants

__all__ = ["CPU_COUNT", "CSV_COLUMNS", "CompareOptions", "DataOptions", "FigureOptions", "InferOptions", "QuickStart",
           "QuickStartOptions", "TrainOptions", "VARIANT_COLUMNS", "VariantOptions", "bench_all", "bench_compare", "bench_data",
           "bench_infer", "bench_quick_start", "bench_train", "bench_variants", "measure_loader_throughput", "mobilenetv3_recipe_config",
           "percentile", "print_markdown", "print_table", "set_thread_count", "summarize", "time_interleaved",
           "write_csv"]
