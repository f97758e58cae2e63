"""Retrieval eval (`Global.eval_mode: retrieval`): embed the query and gallery sets, rank the gallery for every
query, score the rankings with the Metric.Eval retrieval metrics (Recallk, mAP, mINP, Precisionk).

    DataLoader.Eval: {Query: {dataset, sampler, loader}, Gallery: {dataset, sampler, loader}}
    (or a plain DataLoader.Eval, or Query and Gallery with the same dataset section: every image is a query
    against all the others, itself excluded, and is embedded once)

Steps, each once per eval:
1. Features: the model's `Global.retrieval_feature_from` output (`features`: the neck's, or `backbone`) for every
   image, finished as `Global.feature_normalize` / `feature_binarize` say (pipeline.finish_features, the same
   function tools/infer.py and the deployed predictor use). The gallery is embedded once; with one Eval set
   it serves as both. In data parallel each rank embeds its shard and the (sample index, feature) pairs are
   all-gathered, so every rank holds the whole set in dataset order (padding duplicates land on their own
   index; images skipped as unreadable are left out of the query and gallery).
2. Ranking, `Global.sim_block_size` queries at a time: similarity = inner product with every gallery feature
   (memory: block x gallery, never query x gallery), excluded gallery images pushed to the end, a stable sort.
   Excluded for a query: its own image file, and when both lists give cameras, images of its identity taken by
   its camera. In data parallel the blocks are dealt out over the ranks and the metric sums all-reduced.
3. The metrics' sums give the result, e.g. {"recall1": ..., "recall5": ..., "mAP": ...}; the first Eval metric's
   first key picks best_model.
"""
import os
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np
import paddle

from ppcls_lite.data import RETRIEVAL_PARTS, build_dataloader
from ppcls_lite.engine.amp import AmpContext
from ppcls_lite.engine.distributed import all_reduce_sum
from ppcls_lite.engine.loop import require_batches
from ppcls_lite.engine.run_dir import check_dataset_present
from ppcls_lite.engine.run_log import format_metrics
from ppcls_lite.pipeline import finish_features
from ppcls_lite.utils import logger


class RetrievalEvalData:
    """The eval loaders of a retrieval run: `query` and `gallery` (None: the query set is its own gallery)."""

    def __init__(self, query: Any, gallery: Optional[Any] = None):
        self.query, self.gallery = query, gallery

    def __len__(self) -> int:
        return len(self.query) + (len(self.gallery) if self.gallery is not None else 0)

    def parts(self) -> List[tuple]:
        """[(name, loader)] to embed: the gallery first (it is computed once), then the query."""
        if self.gallery is None:
            return [("query+gallery", self.query)]
        return [("gallery", self.gallery), ("query", self.query)]


def _index_loader(dataloader_config: dict, part: Optional[str], device: str, seed: int) -> Any:
    """The DataLoader.Eval (or DataLoader.Eval.<part>) loader, yielding sample indices; its files must exist and
    it must give batches."""
    where = "Eval" if part is None else f"Eval.{part}"
    section = dataloader_config if part is None else {where: dataloader_config["Eval"][part]}
    check_dataset_present(section, where)
    loader = build_dataloader(dataloader_config, "Eval", device, seed, None, part=part, index_labels=True)
    require_batches(loader, where)
    return loader


def build_retrieval_data(dataloader_config: dict, device: str = "cpu", seed: int = 0) -> RetrievalEvalData:
    """DataLoader.Eval.Query / .Gallery (or a plain DataLoader.Eval) -> RetrievalEvalData. Labels are identities,
    not checked against a class count; the loaders yield sample indices (see MarkerView)."""
    eval_section = dataloader_config.get("Eval") or {}
    parts = [p for p in RETRIEVAL_PARTS if eval_section.get(p)]
    if not parts:
        return RetrievalEvalData(_index_loader(dataloader_config, None, device, seed))
    if len(parts) != len(RETRIEVAL_PARTS):
        missing = [p for p in RETRIEVAL_PARTS if p not in parts][0]
        raise KeyError(f"DataLoader.Eval has {parts[0]} but no {missing}: retrieval eval needs both (or neither, "
                       f"to use DataLoader.Eval as query and gallery)")
    if eval_section["Query"].get("dataset") == eval_section["Gallery"].get("dataset"):
        # The same images preprocessed the same way: embed them once, each query against all the others.
        return RetrievalEvalData(_index_loader(dataloader_config, "Query", device, seed))
    return RetrievalEvalData(_index_loader(dataloader_config, "Query", device, seed),
                             _index_loader(dataloader_config, "Gallery", device, seed))


@dataclass
class FeatureSet:
    """The embedded images of one list, in dataset order: `present[i]` is False for an image not embedded."""

    features: np.ndarray  # float32 [N, D]
    present: np.ndarray   # bool [N]
    labels: np.ndarray    # int64 [N]
    cameras: Optional[np.ndarray]  # int64 [N], or None when the list has no camera column
    files: List[str]      # normalised absolute paths (a query never retrieves its own file)


def _all_gather(indices: np.ndarray, features: np.ndarray, world_size: int) -> tuple:
    """Every rank's (indices, features), concatenated on every rank (shards of unequal size are padded)."""
    if world_size <= 1:
        return indices, features
    shape = paddle.to_tensor(np.array([len(indices), features.shape[1] if features.ndim == 2 else 0], np.int64))
    shapes = []
    paddle.distributed.all_gather(shapes, shape)
    shapes = np.stack([s.numpy() for s in shapes])
    longest, dim = int(shapes[:, 0].max()), int(shapes[:, 1].max())
    padded_idx = np.full(longest, -1, np.int64)
    padded_idx[:len(indices)] = indices
    padded = np.zeros((longest, dim), np.float32)
    padded[:len(indices)] = features.reshape(len(indices), dim)
    gathered_idx, gathered = [], []
    paddle.distributed.all_gather(gathered_idx, paddle.to_tensor(padded_idx))
    paddle.distributed.all_gather(gathered, paddle.to_tensor(padded))
    out_idx = np.concatenate([t.numpy() for t in gathered_idx])
    keep = out_idx >= 0
    return out_idx[keep], np.concatenate([t.numpy() for t in gathered])[keep]


@paddle.no_grad()
def compute_features(model: paddle.nn.Layer, loader: Any, amp: AmpContext, settings: Any, *, name: str,
                     world_size: int = 1, epoch: Optional[int] = None, print_batch_step: int = 10) -> FeatureSet:
    """Embed every image of `loader` (a loader built with index_labels) on every rank; see the module docstring."""
    indices, chunks = [], []
    total = len(loader)
    for iter_id, (images, sample_ids) in enumerate(loader, 1):
        with amp.autocast(training=False):
            outputs = model(images)
        if not isinstance(outputs, dict) or settings.retrieval_feature_from not in outputs:
            raise ValueError(f"retrieval eval reads the model output '{settings.retrieval_feature_from}' "
                             f"(Global.retrieval_feature_from) but the model gives "
                             f"{sorted(outputs) if isinstance(outputs, dict) else type(outputs).__name__}")
        raw = outputs[settings.retrieval_feature_from].astype("float32").numpy()
        chunks.append(finish_features(raw, settings.feature_normalize, settings.feature_binarize))
        indices.append(np.asarray(sample_ids.numpy() if hasattr(sample_ids, "numpy") else sample_ids).reshape(-1))
        if iter_id % max(int(print_batch_step), 1) == 0 or iter_id == total:
            logger.info(f"[Eval][Epoch {epoch or 0}] {name} features: [{iter_id}/{total}]")
    index = np.concatenate(indices).astype(np.int64) if indices else np.zeros(0, np.int64)
    feats = np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)
    index, feats = _all_gather(index, feats, world_size)
    dataset = loader.dataset
    n = len(dataset)
    features = np.zeros((n, feats.shape[1] if feats.ndim == 2 else 0), np.float32)
    features[index] = feats
    present = np.zeros(n, bool)
    present[index] = True
    cameras = getattr(dataset, "cameras", None)
    return FeatureSet(features, present, np.array([int(label) for _, label in dataset.samples], np.int64),
                      None if cameras is None else np.asarray(cameras, np.int64),
                      [os.path.normcase(os.path.abspath(str(path))) for path, _ in dataset.samples])


def own_images(query: FeatureSet, gallery: FeatureSet) -> Dict[int, List[int]]:
    """{query index: positions of the same image file in the gallery} (only queries that are in it)."""
    positions: Dict[str, List[int]] = {}
    for j, path in enumerate(gallery.files):
        positions.setdefault(path, []).append(j)
    return {i: positions[path] for i, path in enumerate(query.files) if path in positions}


def rank_block(query: FeatureSet, gallery: FeatureSet, rows: np.ndarray,
               own: Dict[int, List[int]]) -> np.ndarray:
    """bool [len(rows), gallery]: for the queries `rows`, True where the gallery image at that rank (highest
    similarity first, ties by gallery order) has the query's identity. Excluded images (the query's own file
    `own`, its identity under its camera, images not embedded) rank last and are never True."""
    similarity = query.features[rows] @ gallery.features.T
    excluded = np.broadcast_to(~gallery.present, similarity.shape).copy()
    for r, i in enumerate(rows):
        excluded[r, own.get(int(i), [])] = True
    same_identity = query.labels[rows, None] == gallery.labels[None, :]
    if query.cameras is not None and gallery.cameras is not None:
        excluded |= same_identity & (query.cameras[rows, None] == gallery.cameras[None, :])
    similarity[excluded] = -np.inf
    order = np.argsort(-similarity, axis=1, kind="stable")
    return np.take_along_axis(same_identity & ~excluded, order, axis=1)


def evaluate_retrieval(model: paddle.nn.Layer, data: RetrievalEvalData, metrics: Any, amp: AmpContext,
                       settings: Any, *, epoch: Optional[int] = None, world_size: int = 1, rank: int = 0,
                       print_batch_step: int = 10) -> Dict[str, float]:
    """The Metric.Eval retrieval metrics of `model` on `data` (all ranks); `settings` is the GlobalSettings."""
    was_training = model.training
    model.eval()
    start = time.time()
    sets = {name: compute_features(model, loader, amp, settings, name=name, world_size=world_size, epoch=epoch,
                                   print_batch_step=print_batch_step) for name, loader in data.parts()}
    gallery = sets.get("gallery", sets.get("query+gallery"))
    query = sets.get("query", gallery)
    metrics.reset()
    queries = np.flatnonzero(query.present)
    own = own_images(query, gallery)
    block = max(int(settings.sim_block_size), 1)
    blocks = [queries[i:i + block] for i in range(0, len(queries), block)]
    for rows in blocks[rank::max(world_size, 1)]:
        metrics.update_ranked(rank_block(query, gallery, rows, own))
    result = metrics.result_from_state(all_reduce_sum(metrics.state(), world_size))
    logger.info(f"[Eval][Epoch {epoch or 0}][Avg] {format_metrics(result)} ({len(queries)} queries, "
                f"{int(gallery.present.sum())} gallery images, {time.time() - start:.1f} s)")
    if was_training:
        model.train()
    return result
