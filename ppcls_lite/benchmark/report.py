"""Benchmark results as an aligned text table, a Markdown table and CSV (docs/BENCHMARK.md)."""
import csv
from pathlib import Path
from typing import Any, Dict, List, Sequence, Union

CSV_COLUMNS = ["benchmark", "engine", "model", "image_size", "batch_size", "threads", "runs", "min_ms", "p50_ms",
               "p90_ms", "mean_ms", "throughput_ips", "load_1m"]


def print_table(rows: List[Dict[str, Any]]) -> None:
    """The rows as an aligned text table on stdout."""
    header = ["benchmark", "engine", "batch_size", "min_ms", "p50_ms", "p90_ms", "mean_ms", "throughput_ips"]
    widths = [max(len(h), *(len(_fmt(r[h])) for r in rows)) for h in header]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(_fmt(row[h]).ljust(w) for h, w in zip(header, widths)))


def print_markdown(rows: List[Dict[str, Any]]) -> None:
    """The rows as a Markdown table (what docs/BENCHMARK.md shows)."""
    print("| benchmark | engine | batch | min ms | p50 ms | p90 ms | mean ms | img/s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [r["benchmark"], r["engine"], r["batch_size"], r["min_ms"], r["p50_ms"], r["p90_ms"], r["mean_ms"],
                 r["throughput_ips"]]
        print("| " + " | ".join(f"{c:.1f}" if isinstance(c, float) else str(c) for c in cells) + " |")


def _fmt(value):
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def write_csv(rows: List[Dict[str, Any]], path: Union[str, Path], columns: Sequence[str] = tuple(CSV_COLUMNS),
              decimals: int = 3) -> None:
    """The rows as CSV with `columns` (default CSV_COLUMNS), floats rounded to `decimals`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (round(v, decimals) if isinstance(v, float) else v) for k, v in row.items()})
    print(f"wrote {path}")
