"""Batch samplers beyond paddle's: MultiScaleSampler (PaddleClas's multi-resolution training) and
ClassBalancedSampler (imbalanced data). loader.py registers them in SAMPLERS.

Both are reproducible the way the other loaders are: what an epoch yields depends only on the seed the loader
passes to `set_epoch_seed` (derived from Global.seed and the epoch), so a resumed run sees the same batches.
Under data parallelism each rank takes its own share (`num_replicas`/`rank` default to the launcher's).
"""
import math
import random
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import paddle


def label_counts(dataset: Any, class_num: Optional[int] = None) -> np.ndarray:
    """Images per class of a single-label dataset (int64 [class_num]), e.g. for `class_weights: auto`."""
    if getattr(dataset, "multilabel", False):
        raise ValueError("class counts are for single-label datasets; MultiLabelLoss weighs rare labels with "
                         "weight_ratio: True instead")
    labels = np.array([int(label) for _, label in dataset.samples], dtype=np.int64)
    return np.bincount(labels, minlength=int(class_num or 0)).astype(np.int64)


def _world(num_replicas: Optional[int], rank: Optional[int]) -> Tuple[int, int]:
    world = int(num_replicas) if num_replicas is not None else paddle.distributed.get_world_size()
    rank = int(rank) if rank is not None else paddle.distributed.get_rank()
    return max(world, 1), rank


def scale_batch_sizes(scales: Sequence[Union[int, Sequence[int]]], first_bs: int, divided_factor: int = 32,
                      is_training: bool = True) -> List[Tuple[int, int, int]]:
    """PaddleClas's rule: [(width, height, batch size)] per scale, every batch holding about as many pixels as
    `first_bs` images of the first scale (at least 1 image); training scales are rounded down to a multiple of
    `divided_factor`. Not training: only the first scale, at `first_bs`."""
    sizes = [(int(s), int(s)) if isinstance(s, (int, np.integer)) else (int(s[0]), int(s[1])) for s in scales]
    base_w, base_h = sizes[0]
    if not is_training:
        return [(base_w, base_h, int(first_bs))]
    pixels = base_w * base_h * int(first_bs)
    pairs = []
    for w, h in sizes:
        w, h = (w // divided_factor) * divided_factor, (h // divided_factor) * divided_factor
        if w < 1 or h < 1:
            raise ValueError(f"MultiScaleSampler: scale {w}x{h} rounds down to 0 with divided_factor "
                             f"{divided_factor}; use scales >= divided_factor")
        pairs.append((w, h, int(max(1, pixels / (h * w)))))
    return pairs


class MultiScaleSampler:
    """Batches of `(width, height, index)` for MultiScaleDataset, each batch at one of `scales` (an int: square, or
    [width, height]) with its batch size scaled so every batch has about as many pixels (`first_bs` images at
    the first scale).

    The sequence of (scale, batch size) is drawn once, from `seed` (PaddleClas's key; default 0), so every epoch
    has the same number of batches (the LR schedule counts them); each epoch shuffles the images and the order
    of that sequence. A rank's last batch is completed with its first images (PaddleClas does the same)."""

    def __init__(self, dataset, scales: Sequence, first_bs: int, divided_factor: int = 32, is_training: bool = True,
                 shuffle: bool = True, seed: Optional[int] = None, num_replicas: Optional[int] = None,
                 rank: Optional[int] = None):
        if not scales:
            raise ValueError("MultiScaleSampler.scales is empty: list the resolutions, e.g. [160, 192, 224]")
        self.pairs = scale_batch_sizes(scales, first_bs, int(divided_factor), bool(is_training))
        self.shuffle = bool(shuffle)
        self.batch_size = int(first_bs)
        self.drop_last = False
        self.num_replicas, self.rank = _world(num_replicas, rank)
        self.num_samples = len(dataset)
        self.per_rank = int(math.ceil(self.num_samples / self.num_replicas))
        plan_rng = random.Random(0 if seed is None else int(seed))
        self.plan, taken = [], 0
        while taken < self.per_rank:
            w, h, size = plan_rng.choice(self.pairs)
            self.plan.append((w, h, size))
            taken += size
        self.epoch_seed = 0

    def set_epoch_seed(self, seed: int) -> None:
        """The seed of the next epoch's shuffle (the loader derives it from Global.seed and the epoch)."""
        self.epoch_seed = int(seed)

    def __iter__(self) -> Iterator[List[Tuple[int, int, int]]]:
        order = np.arange(self.num_samples)
        plan = list(self.plan)
        if self.shuffle:
            rng = np.random.default_rng(self.epoch_seed)
            order = rng.permutation(self.num_samples)
            plan = [plan[i] for i in rng.permutation(len(plan))]
        mine = order[self.rank::self.num_replicas].tolist()
        start = 0
        for w, h, size in plan:
            ids = mine[start:start + size]
            if len(ids) < size:  # the rank's last batch: completed with its first images
                ids += (mine * (size // max(len(mine), 1) + 1))[:size - len(ids)]
            start += size
            yield [(w, h, i) for i in ids]

    def __len__(self) -> int:
        return len(self.plan)


class ClassBalancedSampler:
    """Every epoch draws (with replacement) as many images as the list has, each class equally likely: an image
    of class c is picked with probability proportional to 1 / (images of class c). Rare classes are seen as often
    as common ones (their images repeat); `drop_last` as for the other samplers."""

    def __init__(self, dataset, batch_size: int, drop_last: bool = False, shuffle: bool = True,
                 num_replicas: Optional[int] = None, rank: Optional[int] = None, where: str = "sampler"):
        if not shuffle:
            raise ValueError(f"{where}: ClassBalancedSampler draws images at random; shuffle: False is not possible "
                             f"(use it for DataLoader.Train only)")
        if getattr(dataset, "multilabel", False):
            raise ValueError(f"{where}: ClassBalancedSampler balances single-label classes; for multi-label data use "
                             f"MultiLabelLoss with weight_ratio: True (and dataset label_ratio: True)")
        labels = np.array([int(label) for _, label in dataset.samples], dtype=np.int64)
        weights = 1.0 / label_counts(dataset)[labels]
        self.probabilities = weights / weights.sum()
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)
        self.num_replicas, self.rank = _world(num_replicas, rank)
        self.per_rank = int(math.ceil(len(labels) / self.num_replicas))
        self.epoch_seed = 0

    def set_epoch_seed(self, seed: int) -> None:
        """The seed of the next epoch's draw (the loader derives it from Global.seed and the epoch)."""
        self.epoch_seed = int(seed)

    def __iter__(self) -> Iterator[List[int]]:
        rng = np.random.default_rng([self.epoch_seed, self.rank])  # each rank draws its own share
        drawn = rng.choice(len(self.probabilities), size=self.per_rank, p=self.probabilities).tolist()
        for start in range(0, len(drawn), self.batch_size):
            batch = drawn[start:start + self.batch_size]
            if len(batch) == self.batch_size or not self.drop_last:
                yield batch

    def __len__(self) -> int:
        full, rest = divmod(self.per_rank, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)
