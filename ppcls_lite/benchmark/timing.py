"""Timing helpers of the benchmarks: percentiles, interleaved timing of several engines, machine description.

Nothing here imports paddle or onnxruntime at import time: their thread pools are sized when they load, so a
benchmark process sets its thread count first (`set_thread_count`) and imports them after.
"""
import os
import platform
import statistics
import subprocess
import time
from typing import Any, Callable, Dict, List, Sequence, Union

CPU_COUNT = os.cpu_count() or 1


def set_thread_count(threads: int) -> None:
    """Size the math libraries' thread pools of this process (OMP_NUM_THREADS) before paddle is imported; the
    initializer of the benchmarks' timing child processes."""
    os.environ["OMP_NUM_THREADS"] = str(int(threads))


def percentile(values: Sequence[float], q: float) -> float:
    """q in [0, 100], linear interpolation between the closest ranks."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(times_s: Sequence[float], batch_size: int) -> Dict[str, float]:
    """min/p50/p90/mean in ms, throughput (images/s) and the number of runs of per-call times in seconds."""
    mean = statistics.fmean(times_s)
    return {"min_ms": 1e3 * min(times_s), "p50_ms": 1e3 * percentile(times_s, 50),
            "p90_ms": 1e3 * percentile(times_s, 90),
            "mean_ms": 1e3 * mean, "throughput_ips": batch_size / mean, "runs": len(times_s)}


def time_interleaved(engines: Dict[Any, Callable[[], Any]], runs: int, warmup: int,
                     block: int = 10) -> Dict[Any, List[float]]:
    """engines: {name: fn}. Warm each up, then time `runs` calls each, cycling through the engines in blocks of
    `block` calls. Each block starts with one untimed call: the previous engine's thread pool may still be
    spinning on the cores, and its data has pushed this engine's weights out of the caches.
    Returns {name: [seconds, ...]}."""
    for fn in engines.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in engines}
    while any(len(t) < runs for t in times.values()):
        for name, fn in engines.items():
            if len(times[name]) >= runs:
                continue
            fn()
            for _ in range(min(block, runs - len(times[name]))):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return times


def load_1m() -> Union[float, str]:
    """The 1-minute load average ("" where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return ""


def machine_description(threads: Any) -> str:
    """One line: CPU model and cores, threads, paddle/onnxruntime/Python versions, load average."""
    cpu = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
        cpu = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), cpu)
    except (OSError, subprocess.SubprocessError):
        pass
    import paddle
    versions = f"paddle {paddle.__version__}"
    try:
        import onnxruntime
        versions += f", onnxruntime {onnxruntime.__version__}"
    except ImportError:
        pass
    return (f"CPU: {cpu} ({os.cpu_count()} logical cores), threads: {threads}, {versions}, "
            f"Python {platform.python_version()}, load average (1 min) at start: {load_1m()}")
