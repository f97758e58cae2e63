"""`Global.cpu_threads`: how many threads Paddle's CPU kernels (the training step, eval and infer forward passes)
use in this process.

`auto` (the default): the environment variable OMP_NUM_THREADS when it is set (the usual way to pin a process's
math threads, which the test suite uses), else this process's share of the cores: the cores it may run on (its
CPU affinity) divided by the number of `paddle.distributed.launch` ranks on the machine (they share the cores).
The data-loader workers are not subtracted (measured on 2 cores, docs/BENCHMARK.md, "Threads"). A number sets
the count exactly, e.g. 1 on a machine whose cores are busy with other work, where a second thread that has to
wait for a core slows every step down.

Results depend on the thread count: Paddle's CPU kernels split their sums differently, so float rounding differs
and the weights drift apart after a few steps (the same run at the same thread count is bit-identical, and exact
resume holds). The count in force is logged once when the engine starts.
"""
import os
from typing import Any, Tuple

AUTO = "auto"
KEY = "Global.cpu_threads"
LOCAL_RANKS_ENV = "PADDLE_LOCAL_SIZE"  # set by paddle.distributed.launch: ranks on this machine
OMP_ENV = "OMP_NUM_THREADS"


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one, else the CPU count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def local_ranks() -> int:
    """How many training processes of this job run on this machine (1 without paddle.distributed.launch)."""
    try:
        return max(1, int(os.environ.get(LOCAL_RANKS_ENV) or 1))
    except ValueError:
        return 1


def check_cpu_threads(value: Any) -> str:
    """'' when `value` is a valid Global.cpu_threads (auto, or a whole number >= 1), else the problem."""
    if value is None or (isinstance(value, str) and value.strip().lower() == AUTO):
        return ""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return ""
    return f"{KEY} must be auto or a whole number of threads >= 1, got {value!r}"


def resolve_cpu_threads(value: Any) -> Tuple[int, str]:
    """(thread count, how it was chosen) for a Global.cpu_threads value (None means auto)."""
    problem = check_cpu_threads(value)
    if problem:
        raise ValueError(problem)
    if value is not None and not isinstance(value, str):
        return int(value), f"{KEY}={value}"
    pinned = os.environ.get(OMP_ENV, "").strip()
    if pinned.isdigit() and int(pinned) >= 1:
        return int(pinned), f"{KEY}=auto: {OMP_ENV}={pinned}"
    cores, ranks = available_cores(), local_ranks()
    threads = max(1, cores // ranks)
    ranks_note = f" shared by {ranks} ranks" if ranks > 1 else ""
    return threads, f"{KEY}=auto: {cores} cores{ranks_note}"


def busy_machine_note(threads: int) -> str:
    """A hint when more than one thread was chosen on a machine whose cores are already busy ('' otherwise):
    each step then waits for a second core (measured 2-10x slower at a load of 12 on 2 cores)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return ""
    cores = available_cores()
    if threads < 2 or load < cores:
        return ""
    return (f"the machine is busy (load average {load:.1f} on {cores} cores): with {threads} threads each step "
            f"waits for free cores; -o {KEY}=1 is faster until the load drops")


def set_cpu_threads(value: Any) -> Tuple[int, str]:
    """Apply Global.cpu_threads to this process's Paddle CPU kernels; returns (threads, how chosen).

    On a GPU/XPU the value still sizes the CPU kernels (the few ops that run there)."""
    import paddle

    threads, how = resolve_cpu_threads(value)
    paddle.base.core.set_num_threads(threads)
    return threads, how
