"""`all`: the figures of docs/BENCHMARK.md in one run: infer (every engine, batch 1 and 8) + train (both modes)."""
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from .infer import InferOptions, bench_infer
from .report import print_markdown, write_csv
from .timing import CPU_COUNT
from .train import TrainOptions, bench_train

DOC_BATCH_SIZES = (1, 8)


@dataclass
class FigureOptions:
    """What `all` measures (the `tools/benchmark.py all` flags)."""

    train_configs: Sequence[str]  # configs whose training step is timed (tools/benchmark.py: the quick start)
    model: str = "MobileNetV3_large_x1_0"
    size: int = 224
    image: Optional[str] = None
    runs: int = 50
    warmup: int = 5
    train_steps: int = 20
    threads: int = CPU_COUNT
    csv: Optional[str] = None  # also write the rows to this CSV file
    markdown: bool = False  # also print the rows as a Markdown table


def bench_all(options: FigureOptions) -> List[Dict[str, Any]]:
    """The infer rows at batch 1 and 8, then the train rows (dygraph and to_static) of each training config."""
    rows = bench_infer(InferOptions(model=options.model, size=options.size, batch_sizes=DOC_BATCH_SIZES,
                                    image=options.image, runs=options.runs, warmup=options.warmup,
                                    threads=options.threads))
    for config in options.train_configs:
        rows += bench_train(TrainOptions(config=config, mode="both", steps=options.train_steps,
                                         threads=options.threads))
    if options.csv:
        write_csv(rows, options.csv)
    if options.markdown:
        print_markdown(rows)
    return rows
