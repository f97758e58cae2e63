"""Data-parallel helpers: sums over ranks, and which eval samples of a rank are DistributedBatchSampler padding.

With one process every helper is the identity, so the single-process path runs no collective.
"""
import math
from typing import Any, Dict, List, Optional

import numpy as np
import paddle


def all_reduce_sum(values: Dict[str, Any], world_size: int) -> Dict[str, np.ndarray]:
    """Sum a dict of numpy arrays/numbers over ranks (integers stay integers)."""
    if world_size <= 1:
        return {k: np.asarray(v) for k, v in values.items()}
    out = {}
    for key, value in values.items():
        arr = np.asarray(value)
        dtype = "int64" if np.issubdtype(arr.dtype, np.integer) else "float64"
        tensor = paddle.to_tensor(arr.astype(dtype))
        paddle.distributed.all_reduce(tensor)
        out[key] = tensor.numpy()
    return out


def any_rank(flag: bool, world_size: int) -> bool:
    """True when `flag` is true on any rank (e.g. a non-finite loss: all ranks must stop together)."""
    return any_rank_each([flag], world_size)[0]


def any_rank_each(flags: List[bool], world_size: int) -> List[bool]:
    """For each flag, whether it is true on any rank (one all-reduce for all of them)."""
    if world_size <= 1:
        return [bool(f) for f in flags]
    tensor = paddle.to_tensor([1 if f else 0 for f in flags], dtype="int64")
    paddle.distributed.all_reduce(tensor)
    return [int(v) > 0 for v in tensor.numpy()]


def global_metrics(metric_set: Optional[Any], loss_sum: float, count: int, world_size: int) -> Dict[str, float]:
    """{"loss": mean loss, <metric>: value, ...} over all ranks, from each rank's metric state and loss sum."""
    state = metric_set.state() if metric_set is not None else {}
    summed = all_reduce_sum({**{f"m/{k}": v for k, v in state.items()},
                             "loss_sum": np.float64(loss_sum), "count": np.int64(count)}, world_size)
    n = int(summed.pop("count"))
    result = {"loss": float(summed.pop("loss_sum")) / max(n, 1)}
    if metric_set is not None:
        result.update(metric_set.result_from_state({k[2:]: v for k, v in summed.items()}))
    return result


def real_samples_on_rank(num_samples: int, nranks: int, rank: int, batch_size: int) -> int:
    """How many of this rank's eval samples are real (not DistributedBatchSampler padding).

    Mirrors paddle.io.DistributedBatchSampler (no shuffle): indices 0..total-1 (total = ceil(n / nranks) *
    nranks, positions >= n are padding) are dealt out in batch-size blocks round-robin, the remainder split
    evenly. Positions stay increasing on each rank, so the padding is at the end of the rank's sequence.
    """
    per_rank = int(math.ceil(num_samples / nranks))
    total = per_rank * nranks
    positions = np.arange(total)
    last = total % (batch_size * nranks)
    mine = []
    for start in range(rank * batch_size, total - last, batch_size * nranks):
        mine.extend(positions[start:start + batch_size])
    tail = positions[total - last:]
    share = last // nranks
    mine.extend(tail[rank * share:(rank + 1) * share])
    return int(np.sum(np.asarray(mine) < num_samples))
