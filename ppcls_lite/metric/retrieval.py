"""Retrieval metrics (`Global.eval_mode: retrieval`): each query's gallery ranking scored by Recall@k, mAP, mINP
and Precision@k, with PaddleClas's names and result keys (`recall1`, `mAP`, `mINP`, `precision@1`).

The engine (engine/retrieval.py) ranks the gallery for a block of queries at a time and hands every metric the
same `ranked` array: bool [queries, gallery], True where the gallery image at that rank has the query's identity
(gallery images excluded for a query - the query image itself, the same identity seen by the same camera - are
ranked last and never relevant). Each metric keeps sums and counts, so the result does not depend on the block
size, and ranks split over processes add up exactly (`state` / `result_from_state`, as TopkAcc).

Queries without any relevant gallery image are left out of Recall@k, mAP and mINP (PaddleClas's rule); their
number is still counted by Precision@k, which averages over every query as PaddleClas's Precisionk does.
Differences from PaddleClas: it averages the per-block values weighted by block size (its Recall@k is then not
exact when some queries have no match), and its mINP divides by the 0-based position of the hardest match (a
query whose only match is ranked first gives infinity); here the sums are exact and mINP uses the rank
(1-based), as in Ye et al. 2021, "Deep Learning for Person Re-identification", eq. 9.
"""
from typing import Any, Dict, List

import numpy as np

from .topk import METRICS


class RetrievalMetric:
    """Common part: a `retrieval` marker, the best-model direction, and the refusal of classification batches."""

    retrieval = True  # scored on gallery rankings (engine/retrieval.py), not on classification batches
    higher_is_better = True
    name = "retrieval metric"

    @property
    def primary_key(self) -> str:
        """The result that ranks models when this metric comes first in Metric.Eval."""
        return self.keys[0]

    def update(self, outputs: Any, labels: Any) -> Dict[str, float]:
        """Not a classification metric: say how to use it."""
        raise ValueError(f"{self.name} is a retrieval metric: it needs Global.eval_mode: retrieval (query and "
                         f"gallery features), not a classification batch; use TopkAcc in Metric.Train")

    def accumulate(self) -> Dict[str, float]:
        """The metric over every query ranked since the last reset."""
        return self.result_from_state(self.state())


def _valid(ranked: np.ndarray) -> np.ndarray:
    """Queries with at least one relevant gallery image."""
    return ranked.any(axis=1)


@METRICS.register()
class Recallk(RetrievalMetric):
    """Fraction of the queries (with a match) whose first match is within the top k, for each k in `topk`
    (PaddleClas's CMC top-k, keys `recall1`, `recall5`, ...). `descending: False` ranks by ascending score
    (for distances); the engine ranks by similarity, so only True is supported."""

    name = "Recallk"

    def __init__(self, topk=(1, 5), descending: bool = True, class_num=None):
        ks = [topk] if isinstance(topk, int) else list(topk)
        if not ks or any(isinstance(k, bool) or int(k) < 1 for k in ks):
            raise ValueError(f"Recallk.topk must be whole numbers >= 1, got {topk!r} (Metric.Eval.Recallk.topk)")
        _check_descending(descending, self.name)
        self.topk = [int(k) for k in ks]
        self.keys = [f"recall{k}" for k in self.topk]
        self.reset()

    def reset(self) -> None:
        """Zero the counts."""
        self.hits = np.zeros(len(self.topk), dtype=np.int64)
        self.queries = np.zeros(1, dtype=np.int64)

    def update_ranked(self, ranked: np.ndarray) -> None:
        """Count one block of ranked queries."""
        valid = _valid(ranked)
        first = np.where(valid, ranked.argmax(axis=1), ranked.shape[1])
        self.hits += np.array([(first[valid] < k).sum() for k in self.topk], dtype=np.int64)
        self.queries += int(valid.sum())

    def state(self) -> Dict[str, np.ndarray]:
        """{"recall/hits": int64 [len(topk)], "recall/queries": int64 [1]}."""
        return {"recall/hits": self.hits.copy(), "recall/queries": self.queries.copy()}

    def set_state(self, state: Dict[str, Any]) -> None:
        """Replace the counts with those of `state`."""
        self.hits = np.asarray(state["recall/hits"], dtype=np.int64).reshape(-1).copy()
        self.queries = np.asarray(state["recall/queries"], dtype=np.int64).reshape(1).copy()

    def result_from_state(self, state: Dict[str, Any]) -> Dict[str, float]:
        """Recall@k from the counts in `state`."""
        n = int(np.asarray(state["recall/queries"]).reshape(-1)[0])
        hits = np.asarray(state["recall/hits"]).reshape(-1)
        return {key: (float(h) / n if n else float("nan")) for key, h in zip(self.keys, hits)}


class _MeanOverQueries(RetrievalMetric):
    """A per-query value averaged over the queries with a match: `per_query(ranked rows with a match)`."""

    key = ""

    def __init__(self, descending: bool = True, class_num=None):
        _check_descending(descending, self.name)
        self.keys = [self.key]
        self.reset()

    def reset(self) -> None:
        """Zero the sums."""
        self.total = np.zeros(1, dtype=np.float64)
        self.queries = np.zeros(1, dtype=np.int64)

    def update_ranked(self, ranked: np.ndarray) -> None:
        """Add one block of ranked queries."""
        rows = ranked[_valid(ranked)]
        if len(rows):
            self.total += float(self.per_query(rows).sum())
            self.queries += len(rows)

    def per_query(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def state(self) -> Dict[str, np.ndarray]:
        """{"<key>/sum": float64 [1], "<key>/queries": int64 [1]}."""
        return {f"{self.key}/sum": self.total.copy(), f"{self.key}/queries": self.queries.copy()}

    def set_state(self, state: Dict[str, Any]) -> None:
        """Replace the sums with those of `state`."""
        self.total = np.asarray(state[f"{self.key}/sum"], dtype=np.float64).reshape(1).copy()
        self.queries = np.asarray(state[f"{self.key}/queries"], dtype=np.int64).reshape(1).copy()

    def result_from_state(self, state: Dict[str, Any]) -> Dict[str, float]:
        """The mean from the sums in `state` (nan when no query has a match)."""
        n = int(np.asarray(state[f"{self.key}/queries"]).reshape(-1)[0])
        total = float(np.asarray(state[f"{self.key}/sum"]).reshape(-1)[0])
        return {self.key: total / n if n else float("nan")}


@METRICS.register()
class mAP(_MeanOverQueries):  # noqa: N801 (PaddleClas's name)
    """Mean average precision: per query, the precision at each match's rank, averaged over its matches."""

    name, key = "mAP", "mAP"

    def per_query(self, rows: np.ndarray) -> np.ndarray:
        """Average precision of each row."""
        ranks = np.arange(1, rows.shape[1] + 1)
        precision_at_hits = np.cumsum(rows, axis=1) / ranks * rows
        return precision_at_hits.sum(axis=1) / rows.sum(axis=1)


@METRICS.register()
class mINP(_MeanOverQueries):  # noqa: N801 (PaddleClas's name)
    """Mean inverse negative penalty: per query, matches / rank of its hardest (last-ranked) match."""

    name, key = "mINP", "mINP"

    def per_query(self, rows: np.ndarray) -> np.ndarray:
        """Inverse negative penalty of each row."""
        last = rows.shape[1] - np.argmax(rows[:, ::-1], axis=1)  # 1-based rank of the last match
        return rows.sum(axis=1) / last


@METRICS.register()
class Precisionk(RetrievalMetric):
    """Matches among the top k divided by k, averaged over every query (PaddleClas: keys `precision@1`, ...)."""

    name = "Precisionk"

    def __init__(self, topk=(1, 5), descending: bool = True, class_num=None):
        ks = [topk] if isinstance(topk, int) else list(topk)
        if not ks or any(isinstance(k, bool) or int(k) < 1 for k in ks):
            raise ValueError(f"Precisionk.topk must be whole numbers >= 1, got {topk!r}")
        _check_descending(descending, self.name)
        self.topk = [int(k) for k in ks]
        self.keys = [f"precision@{k}" for k in self.topk]
        self.reset()

    def reset(self) -> None:
        """Zero the sums."""
        self.total = np.zeros(len(self.topk), dtype=np.float64)
        self.queries = np.zeros(1, dtype=np.int64)

    def update_ranked(self, ranked: np.ndarray) -> None:
        """Add one block of ranked queries."""
        self.total += np.array([ranked[:, :k].sum() / k for k in self.topk], dtype=np.float64)
        self.queries += ranked.shape[0]

    def state(self) -> Dict[str, np.ndarray]:
        """{"precision/sum": float64 [len(topk)], "precision/queries": int64 [1]}."""
        return {"precision/sum": self.total.copy(), "precision/queries": self.queries.copy()}

    def set_state(self, state: Dict[str, Any]) -> None:
        """Replace the sums with those of `state`."""
        self.total = np.asarray(state["precision/sum"], dtype=np.float64).reshape(-1).copy()
        self.queries = np.asarray(state["precision/queries"], dtype=np.int64).reshape(1).copy()

    def result_from_state(self, state: Dict[str, Any]) -> Dict[str, float]:
        """Precision@k from the sums in `state`."""
        n = int(np.asarray(state["precision/queries"]).reshape(-1)[0])
        total = np.asarray(state["precision/sum"]).reshape(-1)
        return {key: (float(t) / n if n else float("nan")) for key, t in zip(self.keys, total)}


def _check_descending(descending: Any, name: str) -> None:
    if descending is not True:
        raise ValueError(f"{name}.descending={descending!r} is not supported: the gallery is ranked by similarity, "
                         f"highest first; remove the key")


RETRIEVAL_METRICS: List[str] = ["Recallk", "mAP", "mINP", "Precisionk"]


def is_retrieval_metric(name: str) -> bool:
    """True for a metric scored on gallery rankings (Global.eval_mode: retrieval)."""
    return name in RETRIEVAL_METRICS
