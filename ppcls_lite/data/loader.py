"""build_dataloader: the YAML `DataLoader.<Train|Eval|Test>` section -> an epoch-aware, reproducible loader.

Reproducibility: each epoch's shuffle depends only on (seed, epoch); each worker's `random` / numpy RNG is
seeded from (seed, epoch, rank, worker id), and with num_workers 0 the main process RNGs are seeded from
(seed, epoch, rank) at the start of the epoch. So epoch k's batches depend only on the seed and k, and a run
resumed at epoch k sees the same data as an uninterrupted one.
"""
import random
import signal
from typing import Optional

import cv2
import numpy as np
import paddle
from paddle.io import BatchSampler, DataLoader, Dataset, DistributedBatchSampler, Sampler

from ppcls_lite.utils.cli import stop_signals
from ppcls_lite.utils.config_rules import COUNT, NON_NEGATIVE_COUNT, check_keys_of
from ppcls_lite.utils.registry import Registry, check_keys

from .dataset import DATASETS, BadSample
from .dataset.common import MISSING, NOT_A_FILE, TOO_LARGE, UNREADABLE, count_kinds, format_file_list, log_warning
from .preprocess import create_batch_operators

# Batch samplers a `DataLoader.<mode>.sampler.name` may name; each takes the keys PaddleClas passes to paddle's
# class of that name (registered below, after SeededRandomSampler).
SAMPLERS = Registry("sampler")
LOADER_KEYS = ("num_workers", "use_shared_memory")
MODES = ("Train", "Eval", "Test")
# Retrieval eval (Global.eval_mode: retrieval) may split DataLoader.Eval into a query and a gallery loader.
RETRIEVAL_PARTS = ("Query", "Gallery")
NOT_EMPTY, EMPTY = -1, -2  # first entry of the bad-index array returned by Collate
# A skipped sample crosses from the workers as index * len(SKIP_KINDS) + the position of its kind.
SKIP_KINDS = (UNREADABLE, TOO_LARGE, NOT_A_FILE, MISSING)
RAISE_LIMIT = "; genuine large images: raise the pixel limit with Global.max_image_pixels"


def derive_seed(*parts: "int | str") -> int:
    """A well-mixed 32-bit seed from integers/strings (SeedSequence, so nearby inputs give unrelated seeds)."""
    words = []
    for part in parts:
        if isinstance(part, str):
            words.extend(part.encode())
        else:
            words.append(int(part) & 0xFFFFFFFF)
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def seed_python_and_numpy(seed: int) -> None:
    """Seed Python's and numpy's global RNGs (the ones the random ops draw from)."""
    random.seed(seed)
    np.random.seed(seed)


class WorkerSeeder:
    """worker_init_fn: seeds `random` and numpy in a worker from (base seed of this epoch and rank, worker id).

    Paddle creates the workers when an epoch's iteration starts, after set_epoch updated `base_seed`, and runs
    this after its own seeding, so ours wins. A terminal's Ctrl-C or a closed terminal reach the whole process
    group: workers ignore SIGINT and SIGHUP (the main process stops training at a safe point and then ends them).
    SIGTERM keeps Paddle's worker handler, which ends the worker quietly (also what ends workers at exit)."""

    def __init__(self):
        self.base_seed = 0

    def __call__(self, worker_id):
        seed_python_and_numpy(derive_seed(self.base_seed, worker_id, "worker"))
        cv2.setNumThreads(1)  # parallelism comes from the workers; OpenCV's own threads would oversubscribe
        for sig in stop_signals():
            if sig != signal.SIGTERM:
                signal.signal(sig, signal.SIG_IGN)


class SeededRandomSampler(Sampler):
    """Random permutation of the dataset indices from an explicit seed (set per epoch)."""

    def __init__(self, data_source):
        super().__init__(data_source)
        self.num_samples = len(data_source)
        self.seed = 0

    def __iter__(self):
        return iter(np.random.default_rng(self.seed).permutation(self.num_samples).tolist())

    def __len__(self):
        return self.num_samples


class MarkerView(Dataset):
    """What the paddle DataLoader reads: the dataset, returning BadSample markers for unreadable files; with
    `index_labels` each image comes with its sample index instead of its label (retrieval eval looks the label,
    camera and file up by index, so skipped images and padding are recognised)."""

    def __init__(self, dataset, index_labels=False):
        super().__init__()
        self.dataset = dataset
        self.index_labels = index_labels

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        sample = self.dataset.load(index, return_bad_sample=True)
        if self.index_labels and not isinstance(sample, BadSample):
            return sample[0], np.int64(index)
        return sample


class Collate:
    """Stack (image, label) samples, drop BadSample markers, apply batch ops.

    Returns (images float32 [N, C, H, W], labels int64 [N] or float32 [N, class_num], bad samples int64: each
    index * len(SKIP_KINDS) + its kind). The bad array starts with a sentinel so it is never empty: NOT_EMPTY, or
    EMPTY when every sample of the batch was bad (images/labels are then placeholders the loader wrapper drops).
    """

    def __init__(self, batch_ops=None):
        self.batch_ops = batch_ops or []

    def __call__(self, batch):
        good = [s for s in batch if not isinstance(s, BadSample)]
        bad_indices = [s.index * len(SKIP_KINDS) + SKIP_KINDS.index(s.kind) for s in batch if isinstance(s, BadSample)]
        if not good:  # placeholders: zero-size arrays cannot cross paddle's shared memory
            return np.zeros((1,), np.float32), np.zeros((1,), np.int64), np.array([EMPTY] + bad_indices, np.int64)
        bad = np.array([NOT_EMPTY] + bad_indices, dtype=np.int64)
        try:
            images = np.stack([img for img, _ in good]).astype(np.float32, copy=False)
        except ValueError:
            shapes = sorted({tuple(img.shape) for img, _ in good})
            raise ValueError(f"images in a batch have different shapes {shapes}; the transforms must end with a "
                             "fixed size (e.g. RandCropImage size / CropImage size)") from None
        labels = np.array([label for _, label in good], dtype=np.int64)
        for op in self.batch_ops:
            images, labels = op(images, labels)
        return images, labels, bad


class ClassificationDataLoader:
    """What build_dataloader returns: iterate for (images, labels) paddle tensors; call set_epoch(e) first.

    Attributes: `dataset`, `batch_sampler`, `num_workers`, `bad_images` (descriptions of the images skipped in
    the last completed epoch when `skip_bad_images` is on), `skipped` ({index: kind} of every image skipped while
    reading in this run; `skip_summary()` words them with those dropped when the dataset was built).
    """

    def __init__(self, dataset, batch_sampler, loader, seed, rank, num_workers, worker_seeder, mode):
        self.dataset = dataset
        self.batch_sampler = batch_sampler
        self.loader = loader
        self.seed = 0 if seed is None else int(seed)
        self.rank = rank
        self.num_workers = num_workers
        self.worker_seeder = worker_seeder
        self.mode = mode
        self.epoch = 0
        self._epoch_pending = False  # set_epoch called and not consumed by an iteration yet
        self._iterated = False
        self.bad_images = []
        self.skipped = {}

    def __len__(self):
        return len(self.batch_sampler)

    def set_epoch(self, epoch: int) -> None:
        """Select `epoch`: its shuffle and random ops depend only on (seed, epoch, rank, worker id)."""
        self.epoch = int(epoch)
        self._epoch_pending = True

    def _seed_epoch(self):
        """Applied when the epoch's iteration starts, so nothing in between can consume the seeded RNG."""
        shuffle_seed = derive_seed(self.seed, self.epoch, "shuffle")  # same on every rank: consistent shards
        sampler = self.batch_sampler
        if hasattr(sampler, "set_epoch"):  # DistributedBatchSampler, RandomIdentityBatchSampler
            sampler.set_epoch(shuffle_seed)  # paddle shuffles with RandomState(epoch); feed it our mixed seed
        elif isinstance(getattr(sampler, "sampler", None), SeededRandomSampler):
            sampler.sampler.seed = shuffle_seed
        self.worker_seeder.base_seed = derive_seed(self.seed, self.epoch, self.rank)
        if self.num_workers == 0:
            seed_python_and_numpy(derive_seed(self.worker_seeder.base_seed, "main"))

    def __iter__(self):
        if not self._epoch_pending and self._iterated:
            # set_epoch was not called: move to the next epoch anyway so shuffles differ between epochs.
            self.epoch += 1
        self._epoch_pending = False
        self._iterated = True
        self._seed_epoch()
        skipped = []
        batches = self.loader if self.num_workers > 0 else self._main_process_batches()
        try:
            for images, labels, bad in self._reraise_worker_errors(batches):
                bad = bad.numpy() if isinstance(bad, paddle.Tensor) else bad
                if len(bad) > 1 and not self.dataset.skip_bad_images:
                    index = int(bad[1]) // len(SKIP_KINDS)
                    self.dataset.load(index, return_bad_sample=False)  # raises the precise error (file, line)
                    raise self.dataset.bad_image_error(index, "could not be read in a worker")
                skipped.extend(divmod(int(code), len(SKIP_KINDS)) for code in bad[1:])
                if int(bad[0]) == EMPTY:
                    continue
                yield images, labels
        finally:
            self._report_skipped(skipped)

    def _reraise_worker_errors(self, batches):
        """paddle turns an exception in a worker into an opaque SystemError (the real traceback is printed
        above it by the worker); say what happened and how to see the error directly."""
        iterator = iter(batches)
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                return
            except SystemError as exc:
                if "reader raises an exception" not in str(exc):
                    raise
                raise RuntimeError(
                    f"DataLoader.{self.mode}: a data loader worker failed; its error and traceback are printed "
                    f"above. Rerun with -o DataLoader.{self.mode}.loader.num_workers=0 to get the error directly."
                ) from None
            yield item

    def _main_process_batches(self):
        """num_workers 0: load in this thread. (paddle's single-process iterator prefetches in a helper thread,
        which hangs the training loop when a sample raises, and would make the RNG use order timing-dependent.)"""
        collate, view = self.loader.collate_fn, self.loader.dataset
        for indices in self.batch_sampler:
            images, labels, bad = collate([view[i] for i in indices])
            yield paddle.to_tensor(images), paddle.to_tensor(labels), bad

    def _report_skipped(self, skipped):
        self.bad_images = [self.dataset.describe(i) for i, _ in skipped]
        if not self.bad_images:
            return
        self.skipped.update((i, SKIP_KINDS[kind]) for i, kind in skipped)
        kinds = [SKIP_KINDS[kind] for _, kind in skipped]
        listed = [f"{self.dataset.describe(i)}: {SKIP_KINDS[kind]}" for i, kind in skipped]
        log_warning(f"{self.mode} epoch {self.epoch}: skipped {len(listed)} images ({count_kinds(kinds)}; "
                    f"skip_bad_images is on){RAISE_LIMIT if TOO_LARGE in kinds else ''}:\n"
                    + format_file_list(listed))

    def skip_summary(self) -> str:
        """One line counting the images this loader left out in the run ('' for none): dropped when the dataset
        was built (missing, not regular files) and skipped while reading (unreadable, over the pixel limit)."""
        parts = []
        dropped = list(getattr(self.dataset, "dropped", []))
        if dropped:
            parts.append(f"{len(dropped)} when the dataset was built ({count_kinds(dropped)})")
        if self.skipped:
            parts.append(f"{len(self.skipped)} while reading ({count_kinds(list(self.skipped.values()))})")
        if not parts:
            return ""
        limit = RAISE_LIMIT if TOO_LARGE in dropped + list(self.skipped.values()) else ""
        total = len(dropped) + len(self.skipped)
        return (f"DataLoader.{self.mode} left out {total} images in this run (skip_bad_images is on): "
                f"{' and '.join(parts)}{limit}")


def _section(config, key, where):
    if key not in config or config[key] is None:
        raise KeyError(f"{where}.{key} is missing from the config")
    return config[key]


def build_dataset(dataset_config: dict, class_num: Optional[int] = None,
                  where: str = "DataLoader.Train.dataset") -> tuple:
    """The `dataset` section -> (dataset object, the batch ops it names)."""
    params = dict(dataset_config)
    name = params.pop("name", None)
    DATASETS.canonical(name, f"{where}.name")
    batch_op_list = params.pop("batch_transform_ops", None)
    DATASETS.check_params(name, params, f"{where} ({name})", injected=["class_num"],
                          extra=["name", "batch_transform_ops"])
    dataset = DATASETS.build(name, params, where, class_num=class_num)
    # Soft targets need the model's class count: the class_num argument or the op's own `class_num`.
    batch_ops = (create_batch_operators(batch_op_list, class_num, f"{where}.batch_transform_ops")
                 if batch_op_list else [])
    return dataset, batch_ops


def _checked_batch_size(batch_size, where):
    if int(batch_size) < 1:
        raise ValueError(f"{where}.batch_size must be >= 1, got {batch_size}")
    return int(batch_size)


@SAMPLERS.register("DistributedBatchSampler")
def distributed_batch_sampler(dataset: Dataset, where: str, batch_size: int = 64, drop_last: bool = False,
                              shuffle: bool = False, num_replicas: Optional[int] = None,
                              rank: Optional[int] = None) -> DistributedBatchSampler:
    """paddle's DistributedBatchSampler; num_replicas / rank default to the launcher's world (its environment)."""
    return DistributedBatchSampler(dataset, batch_size=_checked_batch_size(batch_size, where), shuffle=bool(shuffle),
                                   drop_last=bool(drop_last), num_replicas=num_replicas, rank=rank)


@SAMPLERS.register("BatchSampler")
def batch_sampler(dataset: Dataset, where: str, batch_size: int = 64, drop_last: bool = False,
                  shuffle: bool = False) -> BatchSampler:
    """One-process batches; shuffled with the per-epoch seed of SeededRandomSampler."""
    batch_size = _checked_batch_size(batch_size, where)
    if not shuffle:
        return BatchSampler(dataset, batch_size=batch_size, shuffle=False, drop_last=bool(drop_last))
    return BatchSampler(sampler=SeededRandomSampler(dataset), batch_size=batch_size, drop_last=bool(drop_last))


def build_batch_sampler(sampler_config: dict, dataset: Dataset, mode: str, where: str) -> BatchSampler:
    """The `sampler` section -> a paddle batch sampler over `dataset`."""
    params = dict(sampler_config)
    # PaddleClas: a sampler section without a name batches in one process (what DistributedBatchSampler does
    # with one rank).
    name = params.pop("name", "DistributedBatchSampler")
    SAMPLERS.canonical(name, f"{where}.name")
    SAMPLERS.check_params(name, params, f"{where} ({name})", injected=["dataset", "where"], extra=["name"])
    params.setdefault("shuffle", mode == "Train")  # PaddleClas: training batches are shuffled unless said otherwise
    return SAMPLERS.build(name, params, where, dataset=dataset, where=where)


def check_data_values(config: dict, problems: list) -> None:
    """Append a message for each DataLoader batch size and worker count out of range (the op lists are checked
    item by item with their name check, data/__init__.py)."""
    sections = []
    for mode, section in (config.get("DataLoader") or {}).items():
        if isinstance(section, dict):
            sections.append((f"DataLoader.{mode}", section))
            sections += [(f"DataLoader.{mode}.{part}", section[part]) for part in RETRIEVAL_PARTS
                         if isinstance(section.get(part), dict)]
    for where, section in sections:
        check_keys_of(problems, section.get("sampler"), {"batch_size": COUNT}, f"{where}.sampler")
        check_keys_of(problems, section.get("loader"), {"num_workers": NON_NEGATIVE_COUNT}, f"{where}.loader")


def build_dataloader(dataloader_config: dict, mode: str, device: str = "cpu", seed: int = 0,
                     class_num: Optional[int] = None, part: Optional[str] = None,
                     index_labels: bool = False) -> "ClassificationDataLoader":
    """Build the loader for `mode` ("Train" | "Eval" | "Test") from the YAML `DataLoader` section.

    `class_num` (normally Arch.class_num) validates labels and sizes the soft targets of Mixup/Cutmix.
    `part` ("Query" | "Gallery") builds `DataLoader.<mode>.<part>` instead (retrieval eval); `index_labels`
    makes the loader yield each image's sample index in place of its label.
    `device` is accepted for interface stability; batches are produced on CPU and paddle moves them on use.
    """
    if mode not in MODES:
        raise ValueError(f"build_dataloader: mode must be one of {list(MODES)}, got {mode!r}")
    if not dataloader_config or mode not in dataloader_config or dataloader_config[mode] is None:
        have = sorted(dataloader_config or {})
        raise KeyError(f"DataLoader.{mode} is missing from the config (present: {have})")
    section, where = dataloader_config[mode], f"DataLoader.{mode}"
    if part is not None:
        section, where = _section(section, part, where), f"{where}.{part}"
    dataset, batch_ops = build_dataset(_section(section, "dataset", where), class_num, f"{where}.dataset")
    batch_sampler = build_batch_sampler(section.get("sampler") or {}, dataset, mode, f"{where}.sampler")

    loader_config = dict(section.get("loader") or {})
    check_keys(loader_config, LOADER_KEYS, f"{where}.loader")
    num_workers = int(loader_config.get("num_workers", 0))
    if num_workers < 0:
        raise ValueError(f"{where}.loader.num_workers must be >= 0, got {num_workers}")
    worker_seeder = WorkerSeeder()
    loader = DataLoader(
        MarkerView(dataset, index_labels),
        batch_sampler=batch_sampler,
        num_workers=num_workers,
        use_shared_memory=bool(loader_config.get("use_shared_memory", True)),
        collate_fn=Collate(batch_ops),
        worker_init_fn=worker_seeder,
        return_list=True,
    )
    # The rank that picks this process's shard (paddle's sampler reads it from the launcher's environment).
    rank = getattr(batch_sampler, "local_rank", None)
    if rank is None:
        rank = paddle.distributed.ParallelEnv().local_rank
    wrapper = ClassificationDataLoader(dataset, batch_sampler, loader, seed, rank, num_workers, worker_seeder, mode)
    return wrapper
