"""DistributedRandomIdentitySampler: batches of `batch_size / num_instances` identities x `num_instances` images
each (the "PK" batches triplet and contrastive losses need), reproducible per epoch and split over ranks.

    sampler: {name: DistributedRandomIdentitySampler, batch_size: 64, num_instances: 2, drop_last: False,
              shuffle: True}

Each identity's images are shuffled and cut into chunks of `num_instances` (an identity with fewer images is
filled up by drawing its images again). A batch takes one chunk from each of P = batch_size / num_instances
different identities, drawn with probability proportional to the chunks they have left, so an epoch uses every
chunk about once. Unlike PaddleClas's sampler, whose epoch length depends on the draw, an epoch here is always
`sum(chunks) // P` batches (identities that run out are refilled with new chunks near the end), because the LR
schedule and resume need a fixed number of steps; with `max_iters` it is that many batches per rank.
Data parallel: the epoch's batches are dealt out round-robin, every rank getting the same number; the draw
depends only on (seed, epoch), the same on every rank.
"""
from typing import Dict, Iterator, List, Optional

import numpy as np
import paddle
from paddle.io import BatchSampler, Dataset

from .loader import SAMPLERS, _checked_batch_size


class RandomIdentityBatchSampler(BatchSampler):
    """The batch sampler (built by `distributed_random_identity_sampler`); call `set_epoch(seed)` per epoch."""

    def __init__(self, dataset: Dataset, batch_size: int, num_instances: int, max_iters: Optional[int] = None,
                 nranks: int = 1, rank: int = 0, where: str = "DataLoader.Train.sampler"):
        labels = [int(label) for _, label in getattr(dataset, "samples", [])]
        if not labels:
            raise ValueError(f"{where}: DistributedRandomIdentitySampler needs a list dataset with labels "
                             f"(ImageNetDataset, VeriWild); got {type(dataset).__name__} with no samples")
        if num_instances < 1 or batch_size % num_instances:
            raise ValueError(f"{where}: batch_size ({batch_size}) must be a multiple of num_instances "
                             f"({num_instances}) for DistributedRandomIdentitySampler")
        self.dataset, self.batch_size, self.num_instances = dataset, batch_size, num_instances
        self.ids_per_batch = batch_size // num_instances
        self.images_of: Dict[int, List[int]] = {}
        for index, label in enumerate(labels):
            self.images_of.setdefault(label, []).append(index)
        if len(self.images_of) < self.ids_per_batch:
            raise ValueError(f"{where}: a batch holds batch_size / num_instances = {self.ids_per_batch} different "
                             f"identities but the list has only {len(self.images_of)}; lower batch_size or raise "
                             f"num_instances")
        self.identities = sorted(self.images_of)
        chunks = sum(max(len(v), num_instances) // num_instances for v in self.images_of.values())
        self.nranks, self.local_rank = max(int(nranks), 1), int(rank)
        if max_iters is not None:
            self.batches_per_rank = int(max_iters)
        else:
            self.batches_per_rank = -(-max(chunks // self.ids_per_batch, 1) // self.nranks)
        self.seed = 0
        self.drop_last = True  # every batch is full
        self.shuffle = True

    def set_epoch(self, seed: int) -> None:
        """The seed of this epoch's draw (the data loader passes one derived from (Global.seed, epoch))."""
        self.seed = int(seed)

    def __len__(self) -> int:
        return self.batches_per_rank

    def _chunks(self, identity: int, rng: np.random.Generator) -> List[List[int]]:
        """The identity's images, shuffled (drawn again up to num_instances when it has fewer), in chunks."""
        images = self.images_of[identity]
        if len(images) < self.num_instances:
            images = rng.choice(images, size=self.num_instances, replace=True).tolist()
        images = rng.permutation(images).tolist()
        k = self.num_instances
        return [images[i:i + k] for i in range(0, len(images) - k + 1, k)]

    def epoch_batches(self) -> List[List[int]]:
        """Every batch of the epoch, all ranks together (rank r takes those at r, r + nranks, ...)."""
        rng = np.random.default_rng(self.seed)
        pending = {identity: self._chunks(identity, rng) for identity in self.identities}
        batches = []
        for _ in range(self.batches_per_rank * self.nranks):
            alive = [i for i in self.identities if pending[i]]
            if len(alive) < self.ids_per_batch:  # refill the identities that ran out
                for identity in self.identities:
                    pending[identity] = pending[identity] or self._chunks(identity, rng)
                alive = list(self.identities)
            counts = np.array([len(pending[i]) for i in alive], dtype=np.float64)
            picked = rng.choice(len(alive), size=self.ids_per_batch, replace=False, p=counts / counts.sum())
            batches.append([int(j) for p in picked for j in pending[alive[p]].pop()])
        return batches

    def __iter__(self) -> Iterator[List[int]]:
        yield from self.epoch_batches()[self.local_rank::self.nranks]


@SAMPLERS.register("DistributedRandomIdentitySampler")
def distributed_random_identity_sampler(dataset: Dataset, where: str, batch_size: int = 64, num_instances: int = 4,
                                        drop_last: bool = False, shuffle: bool = True, max_iters: Optional[int] = None,
                                        num_replicas: Optional[int] = None,
                                        rank: Optional[int] = None) -> RandomIdentityBatchSampler:
    """PaddleClas's identity sampler (`drop_last` and `shuffle` are accepted: batches are always full and drawn
    at random); `num_replicas` / `rank` default to the launcher's world."""
    nranks = paddle.distributed.get_world_size() if num_replicas is None else int(num_replicas)
    rank = paddle.distributed.get_rank() if rank is None else int(rank)
    return RandomIdentityBatchSampler(dataset, _checked_batch_size(batch_size, where), int(num_instances),
                                      max_iters=max_iters, nranks=nranks, rank=rank, where=where)
